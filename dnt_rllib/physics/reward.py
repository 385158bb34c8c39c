"""The per-slot reward, eqs. (15) and (17)."""

from __future__ import annotations


def reward(sum_rate: float, sync_error: float, epsilon: float, num_users: int) -> float:
    """r_t = ε Σ_u c_ut − (1 − ε)/U · ‖s_t − s'_t‖².

    With a sync the gap is 0 and this is eq. (17); without, eq. (15).
    """
    return epsilon * sum_rate - (1.0 - epsilon) / num_users * sync_error
