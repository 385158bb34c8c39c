"""Sync-RB rule (eq. 3, 5e) and the Hungarian allocation (eqs. 14, 16)."""

import itertools

import numpy as np
import pytest

from dnt_rllib.physics.allocation import allocate
from dnt_rllib.physics.sync import NO_RB, select_sync_rb, sync_delays


def test_sync_rb_is_the_slowest_feasible_one() -> None:
    delays = np.array([0.5, 2.4, 3.0, 1.0])
    assert select_sync_rb(delays, delay_bound=2.5) == 1


def test_no_feasible_rb_means_no_sync() -> None:
    assert select_sync_rb(np.array([3.0, 4.0]), delay_bound=2.5) == NO_RB


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
def test_hungarian_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rates = rng.random((4, 3))
    blocked = int(rng.integers(-1, 3))
    _, total = allocate(rates, blocked)
    open_rbs = [n for n in range(3) if n != blocked]
    best = max(
        sum(rates[u, n] for u, n in zip(users, open_rbs, strict=True))
        for users in itertools.permutations(range(4), len(open_rbs))
    )
    assert total == pytest.approx(best)
