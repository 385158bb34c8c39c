"""Sync-RB rule (eq. 3, 5e) and the Hungarian allocation (eqs. 14, 16), the reference that
tests/physics/test_sorted_allocation.py holds the sorted assignment to."""

import itertools
import math

import numpy as np
import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics import channel
from dnt_rllib.physics.allocation import allocate
from dnt_rllib.physics.network import Network
from dnt_rllib.physics.sync import NO_RB, interference_bound, select_sync_rb, sync_delays


def test_sync_rb_is_the_slowest_feasible_one() -> None:
    delays = np.array([0.5, 2.4, 3.0, 1.0])
    assert select_sync_rb(delays, delay_bound=2.5) == 1


def test_no_feasible_rb_means_no_sync() -> None:
    assert select_sync_rb(np.array([3.0, 4.0]), delay_bound=2.5) == NO_RB


def test_rows_are_selected_independently() -> None:
    delays = np.array([[0.5, 2.4, 3.0], [3.0, 4.0, 5.0], [1.0, 0.2, 2.5]])
    assert select_sync_rb(delays, delay_bound=2.5).tolist() == [1, NO_RB, 2]


@pytest.mark.parametrize("delay_bound", [0.01, 0.02, 0.03, 2.5])
def test_interference_bound_picks_the_paper_rb(delay_bound: float) -> None:
    """I_n ≤ I^max ⟺ T^C_n ≤ γ, so both keys pick the same R (eqs. 3, 5e); on the
    default network, from no RB feasible (γ = 0.01) to every RB (γ = 2.5)."""
    cfg = SystemConfig()
    gain = Network.from_config(cfg).cloud_gain
    interference = np.random.default_rng(0).exponential(cfg.interference, size=(2000, 6))
    link = (cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
    delays = sync_delays(channel.rates(gain, interference, *link), cfg.data_size)
    bound = interference_bound(gain, cfg.data_size, delay_bound, *link)
    np.testing.assert_array_equal(interference <= bound, delays <= delay_bound)
    np.testing.assert_array_equal(
        select_sync_rb(interference, bound), select_sync_rb(delays, delay_bound)
    )


@pytest.mark.parametrize(
    ("delay_bound", "expected"),
    [
        (0.5, 0.03 / 1 - 0.002),  # D/(Bγ) = 1: 2^1 − 1 = 1
        (0.25, 0.03 / 3 - 0.002),  # D/(Bγ) = 2: 2^2 − 1 = 3
    ],
)
def test_interference_bound_at_b_and_p_not_one_is_the_delay_rule(
    delay_bound: float, expected: float
) -> None:
    """B = 2, P = 3, h^C = 0.01, D = 1, N0 = 1e-3 (P h = 0.03, B N0 = 0.002): the delay
    rule T = D / (B log2(1 + P h / (I + B N0))) ≤ γ holds exactly up to I^max."""
    h, size, power, band, n0 = 0.01, 1.0, 3.0, 2.0, 1e-3
    bound = interference_bound(h, size, delay_bound, power, band, n0)
    assert bound == pytest.approx(expected, rel=1e-12)

    def delay(i: float) -> float:
        return size / (band * math.log2(1 + power * h / (i + band * n0)))

    assert delay(bound) == pytest.approx(delay_bound, rel=1e-12)
    assert delay(0.99 * bound) < delay_bound < delay(1.01 * bound)


def test_delay_is_size_over_rate_and_inf_at_zero_rate() -> None:
    d = sync_delays(np.array([0.5, 0.0]), data_size=0.1)
    assert d[0] == pytest.approx(0.2)
    assert np.isinf(d[1])


def test_two_by_two_allocation_picks_the_visible_optimum() -> None:
    rates = np.array([[5.0, 4.0], [4.5, 1.0]])  # diagonal 6.0 < anti-diagonal 8.5
    allocation, total = allocate(rates)
    assert allocation.tolist() == [1, 0]
    assert total == pytest.approx(8.5)


def test_blocked_rb_is_never_given_to_a_user() -> None:
    rates = np.array([[5.0, 4.0, 1.0], [4.5, 1.0, 2.0]])
    allocation, total = allocate(rates, blocked_rb=0)
    assert 0 not in allocation.tolist()
    assert allocation.tolist() == [1, 2]
    assert total == pytest.approx(6.0)


def test_more_users_than_rbs_leaves_users_unserved() -> None:
    rates = np.array([[1.0], [3.0], [2.0]])
    allocation, total = allocate(rates)
    assert allocation.tolist() == [-1, 0, -1]
    assert total == 3.0


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("users", "rbs"), [(4, 3), (3, 3), (2, 4)])
def test_hungarian_matches_brute_force(seed: int, users: int, rbs: int) -> None:
    """Against every assignment of the open RBs, with more, as many and fewer users."""
    rng = np.random.default_rng(seed)
    rates = rng.random((users, rbs))
    blocked = int(rng.integers(-1, rbs))
    allocation, total = allocate(rates, blocked)
    open_rbs = [n for n in range(rbs) if n != blocked]
    served = min(users, len(open_rbs))
    best = max(
        sum(rates[u, n] for u, n in zip(chosen, rbs_, strict=True))
        for chosen in itertools.permutations(range(users), served)
        for rbs_ in itertools.permutations(open_rbs, served)
    )
    assert total == pytest.approx(best)
    assert blocked == NO_RB or blocked not in allocation.tolist()
    assert (allocation != NO_RB).sum() == served
