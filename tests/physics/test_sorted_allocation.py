"""The sorted assignment (eqs. 14, 16) against scipy's Hungarian on the same rates.

Random and network-drawn instances (Rayleigh fading on and off), fewer, as many and more
users than RBs, ties, a withheld RB; the batched call against one slot at a time; the
withheld sums of every RB against one Hungarian per RB.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics import channel
from dnt_rllib.physics.allocation import assign, slot_rates, withheld_sums
from dnt_rllib.physics.network import Network
from dnt_rllib.physics.sync import NO_RB, select_sync_rb

SIZES = [(3, 6), (5, 6), (6, 6), (7, 6), (12, 5), (1, 4), (4, 1), (1, 1), (40, 25), (25, 40)]


def rate_matrix(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """c_un = B log2(1 + x_u y_n), eq. (2), written out."""
    return bandwidth * np.log2(1.0 + np.outer(x, y))


def hungarian(rates: np.ndarray, blocked: int = NO_RB) -> float:
    """Σ c of the best assignment by scipy's Hungarian, the blocked RB's column cut out."""
    open_rbs = [n for n in range(rates.shape[1]) if n != blocked]
    if not open_rbs:
        return 0.0
    cut = rates[:, open_rbs]
    rows, cols = linear_sum_assignment(cut, maximize=True)
    return float(cut[rows, cols].sum())


def check_assignment(
    allocation: np.ndarray, total: float, rates: np.ndarray, blocked: int = NO_RB
) -> None:
    """A matching (5a, 5b) that serves min(U, open RBs) users, never the blocked RB (16a),
    and whose rates add up to ``total``."""
    users, rbs = rates.shape
    served = allocation[allocation != NO_RB]
    assert len(set(served.tolist())) == len(served)
    assert blocked not in served.tolist()
    assert ((served >= 0) & (served < rbs)).all()
    assert len(served) == min(users, rbs - (blocked != NO_RB))
    users_served = np.flatnonzero(allocation != NO_RB)
    assert total == pytest.approx(rates[users_served, served].sum(), rel=1e-12, abs=1e-12)


def draw(rng: np.random.Generator, users: int, rbs: int) -> tuple[np.ndarray, np.ndarray]:
    """Gains over five decades and per-RB SINR factors P / (I_n + B N0), default link."""
    x = rng.exponential(1.0, users) * 10.0 ** rng.uniform(-4.0, 1.0, users)
    y = 1.0 / (rng.exponential(1e-4, rbs) + 1e-5)
    return x, y


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("users", "rbs"), SIZES)
def test_sorted_assignment_matches_the_hungarian(seed: int, users: int, rbs: int) -> None:
    """Same Σ c as the Hungarian with every RB open and with each RB withheld, B = 2."""
    rng = np.random.default_rng(seed)
    x, y = draw(rng, users, rbs)
    rates = rate_matrix(x, y, 2.0)
    for blocked in [NO_RB, *range(rbs)]:
        allocation, total = assign(x, y, 2.0, blocked)
        assert total == pytest.approx(hungarian(rates, blocked), rel=1e-12, abs=1e-12)
        check_assignment(allocation, float(total), rates, blocked)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("users", "rbs"), [(3, 6), (6, 6), (9, 4), (20, 20)])
def test_ties_give_the_hungarians_sum_and_a_matching(seed: int, users: int, rbs: int) -> None:
    """Equal gains and equal interference (three levels each, and all equal): the sum
    rates match; the allocations may differ but stay matchings."""
    rng = np.random.default_rng(seed)
    for x, y in [
        (rng.choice([0.01, 0.1, 1.0], users), rng.choice([1e3, 5e3, 1e4], rbs)),
        (np.full(users, 0.3), np.full(rbs, 2e3)),
    ]:
        rates = rate_matrix(x, y, 1.0)
        for blocked in [NO_RB, int(rng.integers(rbs))]:
            allocation, total = assign(x, y, 1.0, blocked)
            assert total == pytest.approx(hungarian(rates, blocked), rel=1e-12)
            check_assignment(allocation, float(total), rates, blocked)


@pytest.mark.parametrize("rayleigh", [False, True])
@pytest.mark.parametrize(("users", "rbs"), [(10, 6), (4, 9), (30, 12)])
def test_network_drawn_slots_match_the_hungarian(rayleigh: bool, users: int, rbs: int) -> None:
    """Slots the network draws (positions, i.i.d. and Markov interference, Rayleigh o_u per
    user and slot), the sync RB the paper's R: the rate matrix of `channel.rates`."""
    for model in ["iid", "markov"]:
        cfg = SystemConfig(num_users=users, num_rbs=rbs, rayleigh_fading=rayleigh,
                           interference_model=model, twin="hold")  # fmt: skip
        net, rng = Network.from_config(cfg), np.random.default_rng(users + rbs)
        positions, loud = net.initial_positions(rng), None
        for _ in range(20):
            positions = net.step(rng, positions)
            noise, loud = net.draw_interference(rng, loud)
            fading = channel.draw_fading(rng, cfg.fading, users) if rayleigh else cfg.fading
            gain = channel.channel_gain(
                positions, net.bs_position, fading, cfg.pathloss_exponent, cfg.min_distance
            )
            link = (cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
            rates = channel.rates(gain, noise, *link)
            scale = channel.sinr_per_gain(noise, *link)
            np.testing.assert_array_equal(channel.pair_rates(gain[:, None], scale, 1.0), rates)
            rb = int(select_sync_rb(noise, net.max_sync_interference))
            for blocked in {NO_RB, rb}:
                allocation, total = assign(gain, scale, cfg.bandwidth, blocked)
                assert total == pytest.approx(hungarian(rates, blocked), rel=1e-12)
                check_assignment(allocation, float(total), rates, blocked)


@pytest.mark.parametrize(("users", "rbs"), SIZES)
def test_a_batch_is_assigned_as_slot_by_slot(users: int, rbs: int) -> None:
    """(B, U) and (B, N) with a withheld RB or none per slot: each row is what one slot's
    call gives, bit for bit."""
    rng = np.random.default_rng(users * rbs)
    x = np.stack([draw(rng, users, rbs)[0] for _ in range(7)])
    y = np.stack([draw(rng, users, rbs)[1] for _ in range(7)])
    x[3] = x[3, 0]  # a slot of ties
    blocked = rng.integers(NO_RB, rbs, size=7)
    allocation, total = assign(x, y, 1.5, blocked)
    assert allocation.shape == (7, users) and total.shape == (7,)
    for i in range(7):
        one, one_total = assign(x[i], y[i], 1.5, int(blocked[i]))
        np.testing.assert_array_equal(allocation[i], one)
        assert total[i] == one_total


@pytest.mark.parametrize(("users", "rbs"), SIZES)
def test_withheld_sums_are_the_hungarian_without_each_rb(users: int, rbs: int) -> None:
    """The prefix/suffix sums give every RB's withheld Σ c, with ties in slot 2."""
    rng = np.random.default_rng(users + 7 * rbs)
    x = np.stack([draw(rng, users, rbs)[0] for _ in range(4)])
    y = np.stack([draw(rng, users, rbs)[1] for _ in range(4)])
    x[2], y[2, ::2] = x[2, 0], y[2, 0]
    free, per_rb = withheld_sums(x, y, 2.0)
    for i in range(4):
        rates = rate_matrix(x[i], y[i], 2.0)
        assert free[i] == pytest.approx(hungarian(rates), rel=1e-12)
        for n in range(rbs):
            assert per_rb[i, n] == pytest.approx(hungarian(rates, n), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
@pytest.mark.parametrize(("users", "rbs"), [(3, 6), (6, 6), (9, 4), (1, 1)])
def test_slot_rates_choose_the_rb_and_its_withheld_sum(
    action_mode: str, users: int, rbs: int
) -> None:
    """binary: the paper's R (eq. 5e) and the Hungarian without it; rb: the feasible RB
    whose Hungarian loss is least; NaN and −1 where no RB meets the bound."""
    rng = np.random.default_rng(3)
    x = np.stack([draw(rng, users, rbs)[0] for _ in range(30)])
    noise = rng.exponential(1e-4, (30, rbs))
    y = 1.0 / (noise + 1e-5)
    bound = 1e-5  # about 1 RB in 10 meets it
    free, withheld, rb = slot_rates(x, y, 1.0, noise, bound, action_mode)
    assert (rb == NO_RB).any() and (rb != NO_RB).any()
    for i in range(30):
        rates = rate_matrix(x[i], y[i], 1.0)
        assert free[i] == pytest.approx(hungarian(rates), rel=1e-12)
        feasible = [n for n in range(rbs) if noise[i, n] <= bound]
        if not feasible:
            assert rb[i] == NO_RB and np.isnan(withheld[i])
            continue
        best = max(hungarian(rates, n) for n in feasible)
        if action_mode == "binary":
            assert rb[i] == select_sync_rb(noise[i], bound)
        assert rb[i] in feasible
        assert withheld[i] == pytest.approx(hungarian(rates, int(rb[i])), rel=1e-12, abs=1e-12)
        if action_mode == "rb":
            assert withheld[i] == pytest.approx(best, rel=1e-12, abs=1e-12)
