"""`threshold`: the two-parameter rule a learned policy must beat (SPEC "References").

Sync iff a·(1 − ε)/U ‖s_t − ŝ_t‖² ≥ ε (Σc with every RB − Σc with the sync RB withheld) + b:
the gap penalty the sync avoids this slot (eq. 15), weighed against the rate it costs
(eqs. 14, 16). ``greedy`` is a = 1, b = 0; a > 1 or b < 0 sync earlier, paying for the gaps
of the slots after this one that a sync also shortens.

(a, b) are fitted per config on tuning episodes (:data:`TUNING_SEEDS`, which no evaluation
may use) by a grid search with common random numbers: every candidate plays the same
tuning episodes, so the search compares candidates without episode noise. A grid, not
``scipy.optimize``: the mean return is piecewise constant in (a, b) (decisions flip at
thresholds), which stalls gradient and simplex methods, while 9 × 9 coarse points and a
5 × 5 refinement around the best cost ~2 × 10⁴ batched episode replays (seconds). The fit is
cached beside the twin, keyed by every config field that can change it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dnt_rllib.common import load_or_write_json, short_hash
from dnt_rllib.config import REPLAY_ROWS, SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.physics.sync import NO_RB
from dnt_rllib.policies.rollout import rollout
from dnt_rllib.policies.tape import Tapes, record_tapes, slot_rates
from dnt_rllib.twin import Twin, make_twin

#: Seeds of the episodes the rule is fitted on; every evaluation refuses them.
TUNING_SEEDS = range(900_000, 900_300)
#: Rows of one batched replay while fitting (bounds its memory; config.memory_estimate counts it).
MAX_ROWS = REPLAY_ROWS
#: Bump when the fit changes, so cached fits are redone.
FIT_VERSION = 1


def sync_choice(env: DNTSyncEnv) -> tuple[int, float, float]:
    """(sync RB or −1, Σc with every RB, Σc with it withheld) of the env's current slot,
    as :func:`~dnt_rllib.policies.tape.slot_rates` chooses the RB."""
    cfg = env.config
    gain, scale = env.channel_terms()
    free, withheld, rb = slot_rates(
        gain[None], scale[None], cfg.bandwidth, env.interference[None],
        env.network.max_sync_interference, cfg.action_mode,
    )  # fmt: skip
    return int(rb[0]), float(free[0]), float(withheld[0])


def action_for(env: DNTSyncEnv, rb: int) -> int:
    """The action that syncs on ``rb`` (binary mode: 1, the paper's RB)."""
    return 1 if env.config.action_mode == "binary" else rb + 1


@dataclass(frozen=True)
class ThresholdRule:
    """Sync iff a · penalty ≥ loss + b (module doc); a `Policy`."""

    a: float
    b: float

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        cfg = env.config
        rb, free, withheld = sync_choice(env)
        if rb == NO_RB:
            return 0
        gap = env.user_positions.ravel() - env.twin_prediction
        penalty = (1.0 - cfg.epsilon) / cfg.num_users * float(gap @ gap)
        loss = cfg.epsilon * (free - withheld)
        return action_for(env, rb) if self.a * penalty >= loss + self.b else 0


@dataclass(frozen=True)
class ThresholdFit:
    """A fitted rule and where it came from."""

    a: float
    b: float
    tuning_seeds: tuple[int, int]  # first, last
    tuning_return: float  # mean return of the rule on the tuning episodes
    greedy_return: float  # greedy's (a = 1, b = 0) on the same episodes
    path: str = ""

    @property
    def rule(self) -> ThresholdRule:
        return ThresholdRule(self.a, self.b)

    def describe(self) -> str:
        return (
            f"threshold rule: a = {self.a:.3f}, b = {self.b:+.3f} (fitted on tuning episodes "
            f"{self.tuning_seeds[0]}–{self.tuning_seeds[1]}: {self.tuning_return:.2f} vs greedy "
            f"{self.greedy_return:.2f})"
        )


def rule_returns(
    twin: Twin, tapes: Tapes, config: SystemConfig, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Returns (C, E) of C rules (a, b) on E taped episodes, in batched replays of at most
    :data:`MAX_ROWS` episode rows."""
    episodes = tapes.states.shape[0]
    per_call = max(1, MAX_ROWS // episodes)
    out = []
    for lo in range(0, len(a), per_call):
        count = len(a[lo : lo + per_call])
        rows = np.tile(np.arange(episodes), count)
        a_rows = np.repeat(a[lo : lo + per_call], episodes)
        b_rows = np.repeat(b[lo : lo + per_call], episodes)
        played = rollout(
            twin,
            tapes.history[rows],
            tapes.states[rows],
            tapes.rate_free[rows],
            tapes.rate_sync[rows],
            config.epsilon,
            config.num_users,
            lambda t, penalty, loss, a_rows=a_rows, b_rows=b_rows: (
                a_rows * penalty >= loss + b_rows
            ),
            episodes=rows,
        )
        out.append(played.returns.reshape(count, episodes))
    return np.concatenate(out)


def fit_threshold(config: SystemConfig, twin: Twin, seeds: range = TUNING_SEEDS) -> ThresholdFit:
    """Grid-search (a, b) on the tuning episodes (module doc)."""
    tapes = record_tapes(config, seeds)
    feasible = tapes.feasible
    scale = config.epsilon * float(
        np.mean((tapes.rate_free - np.nan_to_num(tapes.rate_sync))[feasible])
    ) if feasible.any() else 1.0  # fmt: skip

    def best(a_grid: np.ndarray, b_grid: np.ndarray) -> tuple[float, float, float]:
        a, b = (g.ravel() for g in np.meshgrid(a_grid, b_grid, indexing="ij"))
        means = rule_returns(twin, tapes, config, a, b).mean(axis=1)
        i = int(np.argmax(means))
        return float(a[i]), float(b[i]), float(means[i])

    a0, b0, _ = best(np.geomspace(0.25, 4.0, 9), scale * np.linspace(-1.0, 1.0, 9))
    a1, b1, value = best(
        a0 * np.exp2(np.linspace(-0.25, 0.25, 5)), b0 + scale * np.linspace(-0.125, 0.125, 5)
    )
    greedy_value = float(rule_returns(twin, tapes, config, np.ones(1), np.zeros(1)).mean())
    return ThresholdFit(a1, b1, (seeds[0], seeds[-1]), value, greedy_value)


def fit_key(config: SystemConfig) -> str:
    """16 hex digits over every config field but the cache folder (the memory options only
    where they differ from their defaults: `SystemConfig.key_fields`), and the fit version."""
    fields = config.key_fields()
    return short_hash({"config": fields, "version": FIT_VERSION})


def fit_path(config: SystemConfig) -> Path:
    """Where the fit for ``config`` is cached: ``<twin cache dir>/threshold-<key>.json``."""
    return (Path(config.twin_cache_dir) / f"threshold-{fit_key(config)}.json").resolve()


def load_or_fit(config: SystemConfig, twin: Twin | None = None) -> ThresholdFit:
    """The cached fit for ``config`` (:func:`fit_path`), fitted once under a file lock if
    missing."""
    path = fit_path(config)

    def fit() -> dict[str, object]:
        found = fit_threshold(config, twin if twin is not None else make_twin(config))
        return {**asdict(found), "config": config.to_dict()}

    values = load_or_write_json(path, fit)
    return ThresholdFit(
        a=float(values["a"]),
        b=float(values["b"]),
        tuning_seeds=(int(values["tuning_seeds"][0]), int(values["tuning_seeds"][1])),
        tuning_return=float(values["tuning_return"]),
        greedy_return=float(values["greedy_return"]),
        path=str(path),
    )
