"""Optimal RB allocation to users by the Hungarian algorithm, eqs. (14) and (16).

Each user gets at most one RB and each RB at most one user (5a, 5b); when the BS syncs, the
sync RB R is withheld from the users (16a). ``scipy.optimize.linear_sum_assignment`` solves
the rectangular assignment exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from dnt_rllib.physics.sync import NO_RB, select_sync_rb


def allocate(rate_matrix: np.ndarray, blocked_rb: int = NO_RB) -> tuple[np.ndarray, float]:
    """Maximise Σ_u c_u over assignments; return (RB of each user or −1, sum rate).

    ``rate_matrix`` is U×N (eq. 2); ``blocked_rb`` is the sync RB R, or −1 for none.
    """
    num_users, num_rbs = rate_matrix.shape
    columns = _open_rbs(num_rbs, blocked_rb)
    if blocked_rb != NO_RB:
        rate_matrix = rate_matrix[:, columns]
    users, cols = linear_sum_assignment(rate_matrix, maximize=True)
    allocation = np.full(num_users, NO_RB, dtype=np.int64)
    allocation[users] = columns[cols]
    return allocation, float(rate_matrix[users, cols].sum())


@lru_cache(maxsize=256)
def _open_rbs(num_rbs: int, blocked_rb: int) -> np.ndarray:
    """Indices of the RBs users may get (all but ``blocked_rb``), cached read-only."""
    columns = (
        np.delete(np.arange(num_rbs), blocked_rb) if blocked_rb != NO_RB else np.arange(num_rbs)
    )
    columns.flags.writeable = False
    return columns


def allocate_batch(
    rate_matrices: np.ndarray, blocked_rbs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`allocate` for B episodes at once: B×U×N rates and (B,) sync RBs or −1.

    Returns the (B, U) allocation and the (B,) sum rates that `allocate` would return
    episode by episode. One assignment per episode still, but R's column is zeroed instead
    of cut out, and U more zero columns stand for "no RB", so that every user gets a
    column: rates are positive, so an optimal assignment puts a user on a zero column only
    when users outnumber the open RBs, and that user, like the one left out when R is cut,
    gets no RB. Everything but the assignments is then a few operations for the batch.
    """
    num_episodes, num_users, num_rbs = rate_matrices.shape
    costs = np.zeros((num_episodes, num_users, num_rbs + num_users))
    np.negative(rate_matrices, out=costs[:, :, :num_rbs])  # maximise rates = minimise costs
    blocked = np.flatnonzero(blocked_rbs != NO_RB)
    costs[blocked, :, blocked_rbs[blocked]] = 0.0
    # users come back as 0..U−1, so each assignment is just its columns
    allocation = np.array([linear_sum_assignment(cost)[1] for cost in costs])
    rows = np.arange(num_episodes)[:, None]
    sum_rate = -costs[rows, np.arange(num_users), allocation].sum(axis=1)
    allocation[(allocation >= num_rbs) | (allocation == blocked_rbs[:, None])] = NO_RB
    return allocation, sum_rate


def slot_rates(
    rates: np.ndarray, interference: np.ndarray, max_interference: float, action_mode: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Σ c with every RB, Σ c with the sync RB withheld, the sync RB) of B slots.

    ``rates`` (B, U, N), ``interference`` (B, N). The sync RB is the paper's R (eq. 5e) in
    ``binary`` mode and, in ``rb`` mode, the feasible RB whose loss to the users is least.
    Where no RB meets γ the withheld rate is NaN and the RB is −1.
    """
    b, _, num_rbs = rates.shape
    free = allocate_batch(rates, np.full(b, NO_RB))[1]
    if action_mode == "binary":
        rb = np.asarray(select_sync_rb(interference, max_interference))
        withheld = allocate_batch(rates, rb)[1]
    else:
        feasible = interference <= max_interference
        per_rb = np.stack([allocate_batch(rates, np.full(b, n))[1] for n in range(num_rbs)], 1)
        per_rb[~feasible] = -np.inf
        rb = np.where(feasible.any(axis=1), per_rb.argmax(axis=1), NO_RB)
        withheld = per_rb[np.arange(b), np.maximum(rb, 0)]
    return free, np.where(rb != NO_RB, withheld, np.nan), rb
