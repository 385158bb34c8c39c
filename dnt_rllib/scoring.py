"""Run policies on the same seeded episodes, summarise them and compare them paired.

Actions never touch the env's random stream (mobility, interference and fading are drawn
whatever the BS does), so episode i has the same physical trajectory under every policy:
comparisons use common random numbers. An episode's return swings by ~100 with where the
users happen to be, but the difference between two policies on the same episode does not,
so every comparison is the t-interval of the per-episode differences (paired), and every
policy's place is its share of the range from ``never`` to the perfect-foresight
``ceiling``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.baselines import Policy
from dnt_rllib.policies.ceiling import CeilingPolicy, free_sync_returns
from dnt_rllib.policies.on_tapes import play_rules, tape_rule
from dnt_rllib.policies.tape import record_tapes
from dnt_rllib.policies.threshold import TUNING_SEEDS
from dnt_rllib.validation import ConfigError, short

#: Non-learned policies a BS can run (the default reference is the best of them).
RULES = ("never", "always", "greedy", "threshold", "lookahead")
#: Not policies but bounds: the ends of "share closed" are ``never`` and ``ceiling``.
BOUNDS = ("ceiling", "free_sync")


def is_rule(name: str) -> bool:
    """A non-learned policy a BS can play (not a bound, not a learned policy)."""
    return name in RULES or name.startswith("periodic(")


@dataclass(frozen=True)
class Summary:
    """A policy's result over the evaluation episodes, and how it compares.

    ``returns`` holds every episode's return in seed order; ``paired_diff`` and
    ``paired_ci95`` are the mean and 95 % t-interval half-width of the per-episode
    difference to the reference policy, ``share`` the fraction of the ``never`` →
    ``ceiling`` range its mean return closes (NaN until :func:`compare` fills them).
    """

    policy: str
    episodes: int
    mean_return: float
    ci95: float  # half-width of the 95 % t-interval of the mean return
    sum_rate: float  # mean Σ_u c_ut per slot
    sync_gap: float  # mean ‖s_t − s'_t‖² per slot
    sync_fraction: float  # fraction of slots with a sync
    infeasible_syncs: int  # requested syncs that no RB could carry within γ
    returns: tuple[float, ...] = ()
    paired_diff: float = math.nan
    paired_ci95: float = math.nan
    share: float = math.nan

    def to_dict(self) -> dict[str, float | int | str | list[float]]:
        out = asdict(self)
        out["returns"] = list(self.returns)
        return out


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval of the mean (NaN with one value)."""
    a = np.asarray(values, dtype=float)
    n = len(a)
    if n < 2:
        return float(a.mean()), math.nan
    return float(a.mean()), float(stats.t.ppf(0.975, n - 1) * a.std(ddof=1) / math.sqrt(n))


def summary_of(
    name: str,
    returns: Sequence[float],
    sum_rate: float,
    sync_gap: float,
    sync_fraction: float,
    infeasible_syncs: int = 0,
) -> Summary:
    mean, ci = mean_ci95(returns)
    return Summary(
        policy=name,
        episodes=len(returns),
        mean_return=mean,
        ci95=ci,
        sum_rate=sum_rate,
        sync_gap=sync_gap,
        sync_fraction=sync_fraction,
        infeasible_syncs=int(infeasible_syncs),
        returns=tuple(float(r) for r in returns),
    )


def run_policy(
    env: DNTSyncEnv,
    policy: Policy,
    name: str,
    seeds: Iterable[int],
    on_episode: Callable[[], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Roll ``policy`` out on one episode per seed and summarise; ``on_step`` sees each
    slot's ``info``, ``on_episode`` is called after each episode.

    A policy with a ``start_episode(seed)`` method (one that plans with the episode's
    future, such as ``ceiling``) is told each seed before its episode.
    """
    start = getattr(policy, "start_episode", None)
    returns, rates, gaps, syncs, infeasible = [], [], [], 0, 0
    slots = 0
    for seed in seeds:
        if start is not None:
            start(int(seed))
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(policy(env, obs))
            total += r
            rates.append(info["sum_rate"])
            gaps.append(info["sync_error"])
            syncs += info["synced"]
            infeasible += info["infeasible_sync"]
            slots += 1
            if on_step is not None:
                on_step(info)
            done = terminated or truncated
        returns.append(total)
        if on_episode is not None:
            on_episode()
    return summary_of(
        name, returns, float(np.mean(rates)), float(np.mean(gaps)), syncs / slots, infeasible
    )


def paired(returns: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mean and 95 % half-width of the per-episode differences ``returns − reference``."""
    if len(returns) != len(reference):
        raise ValueError("paired comparison needs the same episodes")
    return mean_ci95(np.asarray(returns, dtype=float) - np.asarray(reference, dtype=float))


def difference_ci95(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """mean(a) − mean(b) and the half-width of its 95 % Welch interval (independent
    samples, e.g. seeds of two algorithms; NaN when either has one value)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return diff, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se2 = vx + vy
    if se2 == 0:
        return diff, 0.0
    dof = se2**2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return diff, float(stats.t.ppf(0.975, dof) * math.sqrt(se2))


def share_closed(mean_return: float, never: float, ceiling: float) -> float:
    """The fraction of the ``never`` → ``ceiling`` range a mean return closes."""
    span = ceiling - never
    return (mean_return - never) / span if span > 0 else math.nan


def best_rule(summaries: Iterable[Summary]) -> Summary:
    """The non-learned policy (not a bound) with the highest mean return."""
    rules = [s for s in summaries if is_rule(s.policy)]
    if not rules:
        raise ValueError("no non-learned policy to compare with")
    return max(rules, key=lambda s: s.mean_return)


def compare(
    summaries: Sequence[Summary], reference: str | None = None
) -> tuple[list[Summary], str]:
    """Fill every summary's paired difference to ``reference`` (default: the best
    non-learned policy) and its share of ``never`` → ``ceiling`` (when both ran); return
    them and the reference's name."""
    by_name = {s.policy: s for s in summaries}
    if reference is not None and reference not in by_name:
        raise ConfigError(
            f"--reference {short(reference)}: not evaluated; have {', '.join(by_name)}"
        )
    ref = by_name[reference] if reference is not None else best_rule(summaries)
    never, ceiling = by_name.get("never"), by_name.get("ceiling")
    out = []
    for s in summaries:
        diff, ci = paired(s.returns, ref.returns)
        share = (
            share_closed(s.mean_return, never.mean_return, ceiling.mean_return)
            if never is not None and ceiling is not None
            else math.nan
        )
        out.append(replace(s, paired_diff=diff, paired_ci95=ci, share=share))
    return out, ref.policy


@dataclass(frozen=True)
class Evaluation:
    """Summaries compared to ``reference``, and notes worth printing under the table."""

    summaries: list[Summary]
    reference: str
    notes: list[str]

    def by_name(self) -> dict[str, Summary]:
        return {s.policy: s for s in self.summaries}

    def table(self) -> str:
        return format_table(self.summaries, self.reference)


def check_seeds(seeds: range, owner: str = "--seed") -> None:
    """Refuse evaluation seeds that overlap the threshold rule's tuning seeds."""
    if seeds and seeds[0] <= TUNING_SEEDS[-1] and TUNING_SEEDS[0] <= seeds[-1]:
        raise ConfigError(
            f"{owner}: evaluation episodes {seeds[0]}–{seeds[-1]} overlap the tuning episodes "
            f"{TUNING_SEEDS[0]}–{TUNING_SEEDS[-1]} the threshold rule is fitted on; "
            "choose seeds outside them"
        )


def evaluate_policies(
    env: DNTSyncEnv,
    policies: dict[str, Policy],
    seeds: range,
    reference: str | None = None,
    on_episode: Callable[[], None] | None = None,
) -> Evaluation:
    """Every policy on the same seeded episodes (:func:`play_policies`), compared paired
    (:func:`judge`)."""
    return judge(*play_policies(env, policies, seeds, on_episode), reference)


def play_policies(
    env: DNTSyncEnv,
    policies: dict[str, Policy],
    seeds: range,
    on_episode: Callable[[], None] | None = None,
) -> tuple[list[Summary], list[str]]:
    """Every policy on the same seeded episodes, ``free_sync`` beside them when ``ceiling``
    runs: their summaries (not yet compared) and notes on the ceiling's replay.

    The non-learned rules play on the episodes' tapes in one batched replay
    (:mod:`~dnt_rllib.policies.on_tapes`); the ceiling is planned on the same tapes; a
    learned policy, ``lookahead`` and the ceiling's schedule play in ``env``.
    """
    cfg, seed_list = env.config, [int(k) for k in seeds]
    rules = {name: r for name, p in policies.items() if (r := tape_rule(p)) is not None}
    ceiling = policies.get("ceiling")
    planned = isinstance(ceiling, CeilingPolicy)
    tapes = record_tapes(cfg, seed_list) if rules or planned else None
    played = play_rules(cfg, env.twin, rules, tapes) if rules else {}
    summaries = []
    for name, policy in policies.items():
        if name in played:
            p = played[name]
            summaries.append(summary_of(name, p.returns, p.sum_rate, p.sync_gap,
                                        p.sync_fraction, p.infeasible_syncs))  # fmt: skip
            for _ in seed_list if on_episode is not None else ():
                on_episode()
            continue
        if name == "ceiling" and planned:
            ceiling.plan(tapes, seed_list)
        summaries.append(run_policy(env, policy, name, seeds, on_episode))
    notes = []
    if planned:
        returns, rates = free_sync_returns(tapes, cfg.epsilon)
        summaries.append(summary_of("free_sync", returns, float(rates.mean()), 0.0, 1.0))
        played_ceiling = next(s for s in summaries if s.policy == "ceiling").returns
        error = np.array([ceiling.planned[k] for k in seed_list]) - np.asarray(played_ceiling)
        notes.append(
            f"ceiling: planned − replayed return per episode: mean {error.mean():+.4f}, "
            f"largest |·| {np.abs(error).max():.4f}"
        )
    return summaries, notes


def judge(
    summaries: Sequence[Summary], notes: Sequence[str], reference: str | None = None
) -> Evaluation:
    """Summaries of one set of episodes compared paired (:func:`compare`), with a warning
    when ``ceiling`` ran and is not on top (:func:`ceiling_warnings`)."""
    warnings = ceiling_warnings(summaries) if any(s.policy == "ceiling" for s in summaries) else []
    compared, ref = compare(summaries, reference)
    return Evaluation(compared, ref, [*notes, *warnings])


def ceiling_warnings(summaries: Sequence[Summary]) -> list[str]:
    """A warning when the replayed ``ceiling`` schedule does not top every other policy: with
    the GRU its DP keeps only the best history per key (``policies.ceiling``), an
    approximation that would then have cost more than the room above the rule, and the
    shares of never → ceiling would mean nothing."""
    means = {s.policy: s.mean_return for s in summaries}
    others = {k: v for k, v in means.items() if k not in ("ceiling", "free_sync")}
    best = max(others, key=others.__getitem__, default=None)
    if best is None or means["ceiling"] >= others[best]:
        return []
    return [
        f"WARNING: ceiling ({means['ceiling']:.2f}) is below {best} ({others[best]:.2f}): its "
        "DP's merge of twin histories missed better schedules here, so it is no ceiling and "
        "the shares of never → ceiling are not meaningful"
    ]


def best_periodic(summaries: Iterable[Summary]) -> Summary | None:
    """The periodic(k) summary with the highest mean return."""
    periodic = [s for s in summaries if s.policy.startswith("periodic(")]
    return max(periodic, key=lambda s: s.mean_return, default=None)


def format_table(summaries: Iterable[Summary], reference: str = "") -> str:
    """A markdown table of summaries, with the paired difference to ``reference``."""
    ref = reference or "reference"
    lines = [
        f"| policy | return (95% CI) | Δ vs {ref} (paired 95% CI) | share never→ceiling "
        "| sum rate | sync gap | sync frac | infeasible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        diff = "–" if math.isnan(s.paired_diff) else f"{s.paired_diff:+.2f} ± {s.paired_ci95:.2f}"
        share = "–" if math.isnan(s.share) else f"{100 * s.share:.1f} %"
        lines.append(
            f"| {s.policy} | {s.mean_return:.2f} ± {s.ci95:.2f} | {diff} | {share} | "
            f"{s.sum_rate:.3f} | {s.sync_gap:.2f} | {s.sync_fraction:.3f} | {s.infeasible_syncs} |"
        )
    return "\n".join(lines)
