"""Replaying sync decisions on tapes, many episodes at once, with the twin alone.

The reward of a slot (eqs. 15, 17) needs only the two sum rates on the tape and the gap
‖s_t − ŝ_t‖², and ŝ_t needs only the DNT's last M states (eq. 4), so a batch of R rows —
episodes, or the same episode under several rules — plays in one twin call per slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dnt_rllib.twin import Twin

#: decide(slot, penalty (R,), loss (R,)) → sync wanted (R,); infeasible slots never sync.
Decide = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Rollout:
    """Per row and slot: the reward, whether a sync was asked for and whether it happened
    (no RB may meet γ), and the gap ‖s_t − ŝ_t‖² it would have had without a sync (R, L)."""

    rewards: np.ndarray
    synced: np.ndarray
    gaps: np.ndarray
    requested: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        return self.rewards.sum(axis=1)


def rollout(
    twin: Twin,
    history: np.ndarray,
    states: np.ndarray,
    rate_free: np.ndarray,
    rate_sync: np.ndarray,
    epsilon: float,
    num_users: int,
    decide: Decide,
    episodes: np.ndarray | None = None,
) -> Rollout:
    """Play L slots of R rows from the DNT histories (R, M, 2U): s_t (R, L, 2U), rates (R, L).

    Each slot: ŝ_t from the history, penalty (1 − ε)/U ‖s_t − ŝ_t‖² and loss
    ε (Σc free − Σc withheld); a sync scores ε Σc withheld (eq. 17) and puts s_t in the
    history, no sync scores ε Σc free − penalty (eq. 15) and puts ŝ_t there.

    ``episodes`` (R,) marks rows that replay the same taped episode (the same history and
    tape). Rows of one episode that have made the same decisions so far hold the same DNT
    history, so they share one twin prediction: candidate rules mostly agree, and the
    twin, the cost of a replay, then runs on far fewer rows than R.
    """
    rows, length, _ = states.shape
    group = None if episodes is None else np.unique(episodes, return_inverse=True)[1]
    weight = (1.0 - epsilon) / num_users
    history = np.array(history, dtype=np.float64)
    rewards = np.empty((rows, length))
    synced = np.empty((rows, length), dtype=bool)
    requested = np.empty((rows, length), dtype=bool)
    gaps = np.empty((rows, length))
    for t in range(length):
        state = states[:, t]
        if group is None:  # no `episodes` (lookahead's futures): every row its own
            prediction = twin.predict(history)
        else:  # rows of one episode that decided alike so far share one prediction
            _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
            shared = len(first) < rows
            prediction = twin.predict(history[first])[inverse] if shared else twin.predict(history)
        diff = state - prediction
        gaps[:, t] = np.einsum("ri,ri->r", diff, diff)
        penalty = weight * gaps[:, t]
        feasible = ~np.isnan(rate_sync[:, t])
        loss = epsilon * (rate_free[:, t] - np.where(feasible, rate_sync[:, t], 0.0))
        requested[:, t] = decide(t, penalty, loss)
        sync = feasible & requested[:, t]
        synced[:, t] = sync
        rewards[:, t] = np.where(
            sync, epsilon * np.nan_to_num(rate_sync[:, t]), epsilon * rate_free[:, t] - penalty
        )
        history[:, :-1] = history[:, 1:]
        history[:, -1] = np.where(sync[:, None], state, prediction)
        if group is not None:
            group = np.unique(2 * group + sync, return_inverse=True)[1]
    return Rollout(rewards, synced, gaps, requested)
