"""The sync decision's physics: cloud-link delay and the choice of the sync RB (eqs. 3, 5e).

The report of size D needs T^C_n = D / c^C_n on RB n; it is feasible only if T^C_n ≤ γ.
The paper picks R = argmax_n {T^C_n : T^C_n ≤ γ}: the slowest RB that still meets the bound,
which leaves the best RBs to the users.
"""

from __future__ import annotations

import numpy as np

NO_RB = -1


def sync_delays(cloud_rates: np.ndarray, data_size: float) -> np.ndarray:
    """T^C_n = D / c^C_n for each RB (inf where the rate is 0)."""
    with np.errstate(divide="ignore"):
        return data_size / cloud_rates


def select_sync_rb(delays: np.ndarray, delay_bound: float) -> int:
    """R = argmax_n {T^C_n : T^C_n ≤ γ}, or ``NO_RB`` (−1) if no RB meets the bound."""
    feasible = delays <= delay_bound
    if not feasible.any():
        return NO_RB
    return int(np.argmax(np.where(feasible, delays, -np.inf)))


def is_feasible(delays: np.ndarray, rb: int, delay_bound: float) -> bool:
    """Whether RB ``rb`` can carry the sync within the delay bound (eq. 5e)."""
    return bool(delays[rb] <= delay_bound)
