"""Optimal RB allocation to users, eqs. (14) and (16): best users on the quietest RBs.

Each user gets at most one RB and each RB at most one user (5a, 5b); when the BS syncs, the
sync RB R is withheld from the users (16a). Every rate of eq. (2) has the product form

    c_un = B f(x_u y_n),   f(z) = log2(1 + z),   x_u = h_u = o_u d_u^(−a),
    y_n = P / (I_n + B N0):

one factor per user (its path loss and fading, Rayleigh or fixed, which is drawn per user
and slot) and one per RB (its interference, i.i.d. or Markov). Since
∂²/∂x∂y log(1 + xy) = 1/(1 + xy)² > 0 for x, y ≥ 0, the sum rate is supermodular: for
x ≥ x′ and y ≥ y′, f(xy) + f(x′y′) ≥ f(xy′) + f(x′y) (integrate the cross derivative over
[x′, x] × [y′, y]). Hence the *sorted* (assortative) assignment is optimal:

1. an optimal assignment serves k = min(U, N_open) users, as every rate is ≥ 0;
2. they are the k largest x and their RBs the k largest y: a served user with a smaller x
   than an unserved one (an RB used with a smaller y than an unused one) can hand its RB
   over (be swapped) without lowering the sum, as f grows;
3. among those, two users whose order in x is the reverse of their RBs' order in y can
   swap RBs without lowering the sum (supermodularity); each swap removes an inversion, so
   the sorted pairing, i-th best user on the i-th quietest RB, is optimal. Ties in x or y
   leave the sum unchanged whichever way they are broken (allocations may differ).

It costs two sorts, O(U log U + N log N), where the Hungarian costs O(U N min(U, N)), and a
slot needs x (U) and y (N), never the U×N rate matrix. The withheld RB R is dropped from the
sorted RB list. Withholding the RB of rank j (of all N, best first) leaves users i < j on
their RBs and moves users j ≤ i < k′ = min(U, N − 1) one RB down the list:

    W_j = Σ_{i<j} c(x_i, y_i) + Σ_{j≤i<k′} c(x_i, y_{i+1}),   j capped at k′,

a prefix sum of the sorted pairing plus a suffix sum of the pairing shifted by one, so all
N withheld sums cost O(N) after the sorts and none needs a second assignment.

`allocate` (scipy's rectangular Hungarian on any U×N rate matrix) is kept as the reference
the tests hold the sorted assignment to, and for rates without the product form; no
option of `SystemConfig` has such rates.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from dnt_rllib.physics.channel import pair_rates
from dnt_rllib.physics.sync import NO_RB, select_sync_rb


def assign(
    gain: np.ndarray, scale: np.ndarray, bandwidth: float, blocked_rb: np.ndarray | int = NO_RB
) -> tuple[np.ndarray, np.ndarray]:
    """The optimal assignment of eq. (14), or (16) with R withheld, by sorting (module doc).

    One slot: ``gain`` x_u (U,), ``scale`` y_n (N,), ``blocked_rb`` R or −1 for none; or B
    slots: (B, U), (B, N) and (B,) (or one R for all). Returns the RB of each user or −1
    ((U,) or (B, U)) and Σ_u c_u (a numpy float or (B,)); a batch's rows are bit for bit the
    single calls. Ties go to the lower user and RB index.
    """
    if gain.ndim == 1:
        return _assign_one(gain, scale, bandwidth, int(blocked_rb))
    num_envs, num_users = gain.shape
    num_rbs = scale.shape[-1]
    k = min(num_users, num_rbs)
    blocked = np.broadcast_to(blocked_rb, (num_envs,))[:, None]
    key = -scale  # quietest first, R last: its key +inf
    withhold = (blocked != NO_RB).any()
    if withhold:
        key = np.where(np.arange(num_rbs) == blocked, np.inf, key)
    rows = np.arange(num_envs)[:, None]
    users = np.argsort(-gain, axis=-1, kind="stable")[:, :k]
    rbs = np.argsort(key, axis=-1, kind="stable")[:, :k]
    rate = pair_rates(gain[rows, users], scale[rows, rbs], bandwidth)
    if withhold and k == num_rbs:  # R was reached (U ≥ N): its user goes without
        served = rbs != blocked
        rate = np.where(served, rate, 0.0)
        rbs = np.where(served, rbs, NO_RB)
    allocation = np.full((num_envs, num_users), NO_RB, dtype=np.int64)
    allocation[rows, users] = rbs
    return allocation, rate.sum(axis=-1)


def _assign_one(
    gain: np.ndarray, scale: np.ndarray, bandwidth: float, blocked_rb: int
) -> tuple[np.ndarray, np.ndarray]:
    """`assign` of one slot: the same pairs and the same sum, in fewer numpy calls."""
    num_users, num_rbs = gain.shape[0], scale.shape[0]
    k = min(num_users, num_rbs)
    users = np.argsort(-gain, kind="stable")[:k]
    rbs = np.argsort(-scale, kind="stable")
    if blocked_rb != NO_RB:  # R last, as `assign`'s key puts it
        rbs = np.append(rbs[rbs != blocked_rb], blocked_rb)
    rbs = rbs[:k]
    rate = pair_rates(gain[users], scale[rbs], bandwidth)
    allocation = np.full(num_users, NO_RB, dtype=np.int64)
    allocation[users] = rbs
    if blocked_rb != NO_RB and k == num_rbs:  # R was reached (U ≥ N)
        rate[-1] = 0.0
        allocation[users[-1]] = NO_RB
    return allocation, rate.sum()


def withheld_sums(
    gain: np.ndarray, scale: np.ndarray, bandwidth: float
) -> tuple[np.ndarray, np.ndarray]:
    """(Σc with every RB (B,), Σc with RB n withheld (B, N)) of B slots, eqs. (14), (16):
    one sorted pairing and the prefix/suffix sums W_j of the module doc; ``gain`` (B, U),
    ``scale`` (B, N)."""
    num_envs, num_users = gain.shape
    num_rbs = scale.shape[-1]
    k, k1 = min(num_users, num_rbs), min(num_users, num_rbs - 1)
    rows = np.arange(num_envs)[:, None]
    x = gain[rows, np.argsort(-gain, axis=-1, kind="stable")[:, :k]]
    rbs = np.argsort(-scale, axis=-1, kind="stable")
    y = scale[rows, rbs]
    prefix = np.zeros((num_envs, k + 1))  # Σ_{i<j} c(x_i, y_i)
    np.cumsum(pair_rates(x, y[:, :k], bandwidth), axis=-1, out=prefix[:, 1:])
    suffix = np.zeros((num_envs, k1 + 1))  # Σ_{j≤i<k′} c(x_i, y_{i+1})
    shifted = pair_rates(x[:, :k1], y[:, 1 : k1 + 1], bandwidth)
    suffix[:, :k1] = np.cumsum(shifted[:, ::-1], axis=-1)[:, ::-1]
    rank = np.empty_like(rbs)  # each RB's place in the sorted list, capped at k′
    rank[rows, rbs] = np.minimum(np.arange(num_rbs), k1)
    return prefix[:, k], prefix[rows, rank] + suffix[rows, rank]


def slot_rates(
    gain: np.ndarray,
    scale: np.ndarray,
    bandwidth: float,
    interference: np.ndarray,
    max_interference: float,
    action_mode: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Σ c with every RB, Σ c with the sync RB withheld, the sync RB) of B slots.

    ``gain`` x_u (B, U), ``scale`` y_n (B, N), ``interference`` (B, N). The sync RB is the
    paper's R (eq. 5e) in ``binary`` mode and, in ``rb`` mode, the feasible RB whose loss
    to the users is least (ties: the lowest index). Where no RB meets γ the withheld rate
    is NaN and the RB is −1. One sorted pairing serves both sums (`withheld_sums`).
    """
    free, per_rb = withheld_sums(gain, scale, bandwidth)
    if action_mode == "binary":
        rb = np.asarray(select_sync_rb(interference, max_interference))
    else:
        feasible = interference <= max_interference
        per_rb = np.where(feasible, per_rb, -np.inf)
        rb = np.where(feasible.any(axis=1), per_rb.argmax(axis=1), NO_RB)
    withheld = per_rb[np.arange(len(rb)), np.maximum(rb, 0)]
    return free, np.where(rb != NO_RB, withheld, np.nan), rb


def allocate(rate_matrix: np.ndarray, blocked_rb: int = NO_RB) -> tuple[np.ndarray, float]:
    """The reference: maximise Σ_u c_u over assignments of any U×N ``rate_matrix`` by
    scipy's rectangular Hungarian; return (RB of each user or −1, sum rate).

    ``blocked_rb`` is the sync RB R, or −1 for none. For the rates of eq. (2) `assign`
    gives the same sum rate (module doc) in O(U log U + N log N).
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
