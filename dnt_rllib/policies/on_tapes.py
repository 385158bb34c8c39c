"""The non-learned rules of an evaluation, played on tapes in one batched replay.

A rule's decision in a slot needs only what a tape holds — the gap penalty, the rate a sync
costs, whether an RB meets γ — and, for ``periodic(k)``, its own count of slots since its
last sync. So ``never``, ``always``, ``periodic(k)``, ``greedy`` and ``threshold`` play
their E episodes as the rows of one :func:`~dnt_rllib.policies.rollout.rollout`: one twin
call per slot for all of them, and no allocation, instead of stepping the env policy by
policy and episode by episode. The returns are the env's to float rounding (the tests hold
every rule to the env's returns within 1e-9 and to its syncs and infeasible requests
exactly). The baselines sync on the paper's RB R (eq. 5e) and ``threshold`` on the RB its
action mode picks; they are the same RB (the feasible RB whose loss to the users is least
is the noisiest feasible one, which is R), so one tape serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from dnt_rllib.config import REPLAY_ROWS, SystemConfig
from dnt_rllib.policies.baselines import Periodic, Policy, always, greedy, never
from dnt_rllib.policies.rollout import Decide, rollout
from dnt_rllib.policies.tape import Tapes
from dnt_rllib.policies.threshold import ThresholdRule
from dnt_rllib.twin import Twin

#: A rule as a replay decision: ``decider(feasible (R, L))`` gives the rows' `Decide`.
TapeRule = Callable[[np.ndarray], Decide]


@dataclass(frozen=True)
class Played:
    """A rule's E episodes: returns (E,) and its per-slot means, as the env would log them."""

    returns: np.ndarray
    sum_rate: float  # mean Σ_u c_ut per slot: Σc withheld where it synced, Σc free elsewhere
    sync_gap: float  # mean ‖s_t − s'_t‖² per slot: 0 where it synced
    sync_fraction: float
    infeasible_syncs: int  # syncs asked for where no RB met γ


def _constant(value: bool) -> Callable[[np.ndarray], Decide]:
    return lambda feasible: lambda t, penalty, loss: np.full(len(penalty), value)


def _periodic(period: int) -> Callable[[np.ndarray], Decide]:
    def decider(feasible: np.ndarray) -> Decide:
        since = np.zeros(len(feasible), dtype=np.int64)  # an episode starts in sync

        def decide(t: int, penalty: np.ndarray, loss: np.ndarray) -> np.ndarray:
            nonlocal since
            want = since + 1 >= period
            since = np.where(want & feasible[:, t], 0, since + 1)
            return want

        return decide

    return decider


def _rule(a: float, b: float, strict: bool = False) -> Callable[[np.ndarray], Decide]:
    """Sync iff a·penalty ≥ loss + b (> with ``strict``), asked only where an RB meets γ,
    as `ThresholdRule` and `greedy` ask."""

    def decider(feasible: np.ndarray) -> Decide:
        def decide(t: int, penalty: np.ndarray, loss: np.ndarray) -> np.ndarray:
            gain = a * penalty
            return feasible[:, t] & (gain > loss + b if strict else gain >= loss + b)

        return decide

    return decider


def tape_rule(policy: Policy) -> TapeRule | None:
    """The replay form of ``policy``, or None for a policy that needs the env (a learned
    one, ``lookahead``, ``ceiling``)."""
    if policy is never or policy is always:
        return _constant(policy is always)
    if isinstance(policy, Periodic):
        return _periodic(policy.period)
    if policy is greedy:
        return _rule(1.0, 0.0, strict=True)
    if isinstance(policy, ThresholdRule):
        return _rule(policy.a, policy.b)
    return None


def play_rules(
    config: SystemConfig,
    twin: Twin,
    rules: Mapping[str, TapeRule],
    tapes: Tapes,
) -> dict[str, Played]:
    """Every rule on every taped episode, in replays of at most ``REPLAY_ROWS`` rows."""
    names = list(rules)
    episodes = tapes.states.shape[0]
    per_call = max(1, REPLAY_ROWS // episodes)
    out: dict[str, Played] = {}
    for lo in range(0, len(names), per_call):
        chunk = names[lo : lo + per_call]
        rows = np.tile(np.arange(episodes), len(chunk))
        rate_free, rate_sync = tapes.rate_free[rows], tapes.rate_sync[rows]
        feasible = ~np.isnan(rate_sync)
        blocks = [slice(i * episodes, (i + 1) * episodes) for i in range(len(chunk))]
        deciders = [rules[n](feasible[b]) for n, b in zip(chunk, blocks, strict=True)]

        def decide(
            t: int, penalty: np.ndarray, loss: np.ndarray, deciders=deciders, blocks=blocks
        ) -> np.ndarray:
            return np.concatenate(
                [d(t, penalty[b], loss[b]) for d, b in zip(deciders, blocks, strict=True)]
            )

        played = rollout(
            twin, tapes.history[rows], tapes.states[rows], rate_free, rate_sync,
            config.epsilon, config.num_users, decide, episodes=rows,
        )  # fmt: skip
        rates = np.where(played.synced, np.nan_to_num(rate_sync), rate_free)
        gaps = np.where(played.synced, 0.0, played.gaps)
        for name, b in zip(chunk, blocks, strict=True):
            out[name] = Played(
                returns=played.returns[b],
                sum_rate=float(rates[b].mean()),
                sync_gap=float(gaps[b].mean()),
                sync_fraction=float(played.synced[b].mean()),
                infeasible_syncs=int((played.requested[b] & ~played.synced[b]).sum()),
            )
    return out
