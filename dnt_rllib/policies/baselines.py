"""Non-learned sync policies every learned policy is judged against (SPEC "Baselines").

A policy maps the env (what the BS knows: s_t, this slot's interference, and its own copy
of the twin, hence ŝ_t) and the observation to an action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.physics.allocation import slot_rates
from dnt_rllib.physics.sync import NO_RB

Policy = Callable[[DNTSyncEnv, np.ndarray], int]


def sync_action(env: DNTSyncEnv) -> int:
    """The action that asks for a sync on the paper's RB (RB 0 if none is feasible)."""
    if env.config.action_mode == "binary":
        return 1
    return max(env.paper_sync_rb(), 0) + 1


def never(env: DNTSyncEnv, obs: np.ndarray) -> int:
    """Never sync: the twin runs on its own predictions."""
    return 0


def always(env: DNTSyncEnv, obs: np.ndarray) -> int:
    """Sync every slot."""
    return sync_action(env)


@dataclass(frozen=True)
class Periodic:
    """Sync when ``period`` slots have passed since the last sync (a requested sync that no
    RB could carry does not count as one)."""

    period: int

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        return sync_action(env) if env.slots_since_sync + 1 >= self.period else 0


def periodic(period: int) -> Policy:
    """Sync once every ``period`` slots."""
    return Periodic(period)


def greedy(env: DNTSyncEnv, obs: np.ndarray) -> int:
    """Sync when the one-slot gap penalty it avoids exceeds the weighted rate it loses.

    Penalty avoided: (1 − ε)/U ‖s_t − ŝ_t‖² (eq. 15); rate lost: ε (Σc without sync − Σc
    with the sync RB withheld), both by the optimal allocation (eqs. 14, 16).
    """
    cfg = env.config
    rb = env.paper_sync_rb()
    if rb == NO_RB:
        return 0
    gap = env.user_positions.ravel() - env.twin_prediction
    penalty = (1.0 - cfg.epsilon) / cfg.num_users * float(gap @ gap)
    gain, scale = env.channel_terms()
    free, withheld, _ = slot_rates(
        gain[None], scale[None], cfg.bandwidth, env.interference[None],
        env.network.max_sync_interference, "binary",
    )  # fmt: skip
    loss = cfg.epsilon * float(free[0] - withheld[0])
    return sync_action(env) if penalty > loss else 0


def baseline_policies(periods: range | list[int]) -> dict[str, Policy]:
    """never, always, periodic(k) for each k, greedy — by name."""
    policies: dict[str, Policy] = {"never": never, "always": always}
    policies.update({f"periodic({k})": periodic(k) for k in periods})
    policies["greedy"] = greedy
    return policies
