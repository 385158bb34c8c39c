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


def select_sync_rb(delays: np.ndarray, delay_bound: float) -> np.ndarray:
    """R = argmax_n {T^C_n : T^C_n ≤ γ} of each row of ``delays`` (…, N), or ``NO_RB`` (−1)
    where no RB meets the bound; an int array of shape (…). Any key that grows with T^C_n
    and its bound give the same R (the interference I_n and `interference_bound`)."""
    feasible = delays <= delay_bound
    slowest = np.argmax(np.where(feasible, delays, -np.inf), axis=-1)
    return np.where(feasible.any(axis=-1), slowest, NO_RB)


def interference_bound(
    cloud_gain: float,
    data_size: float,
    delay_bound: float,
    tx_power: float,
    bandwidth: float,
    noise_psd: float,
) -> float:
    """I^max = P h^C / (2^(D/(Bγ)) − 1) − B N0: eq. (3) solved for I_n, so that
    T^C_n ≤ γ ⟺ I_n ≤ I^max.

    T^C_n grows with I_n, so ``select_sync_rb(interference, I^max)`` is the paper's R,
    found without computing a rate (negative when even an RB free of interference misses γ).
    """
    with np.errstate(over="ignore"):
        return float(
            tx_power * cloud_gain / np.expm1(np.log(2.0) * data_size / (bandwidth * delay_bound))
            - bandwidth * noise_psd
        )
