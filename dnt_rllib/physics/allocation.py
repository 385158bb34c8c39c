"""Optimal RB allocation to users by the Hungarian algorithm, eqs. (14) and (16).

Each user gets at most one RB and each RB at most one user (5a, 5b); when the BS syncs, the
sync RB R is withheld from the users (16a). ``scipy.optimize.linear_sum_assignment`` solves
the rectangular assignment exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from dnt_rllib.physics.sync import NO_RB


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
