"""Eq. (1) mobility and eqs. (15)/(17) reward."""

import numpy as np
import pytest

from dnt_rllib.physics import mobility
from dnt_rllib.physics.reward import reward

LOW, HIGH = np.array([-50.0, -50.0]), np.array([50.0, 50.0])


def test_move_probs_are_distributions_within_the_stay_range() -> None:
    p = mobility.draw_move_probs(np.random.default_rng(0), 50, (0.2, 0.8))
    assert p.shape == (50, 5)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.all((p[:, 0] >= 0.2) & (p[:, 0] <= 0.8))


#: Eq. (1) with Δl = 2: stay, forward (+y), backward (−y), left (−x), right (+x).
PAPER_MOVES = [(0.0, 0.0), (0.0, 2.0), (0.0, -2.0), (-2.0, 0.0), (2.0, 0.0)]


def test_each_move_has_the_step_length_and_its_probability() -> None:
    probs = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]])
    cdf = np.cumsum(probs, axis=1)
    rng = np.random.default_rng(1)
    start = np.array([[5.0, -7.0]])
    moves = (
        np.array(
            [mobility.step_positions(rng, start, cdf, 2.0, LOW, HIGH)[0] for _ in range(40_000)]
        )
        - start[0]
    )
    seen = {tuple(m) for m in moves.tolist()}
    assert seen <= set(PAPER_MOVES)
    for (dx, dy), p in zip(PAPER_MOVES, probs[0], strict=True):
        freq = np.mean((moves[:, 0] == dx) & (moves[:, 1] == dy))
        assert freq == pytest.approx(p, abs=0.01)


def test_a_draw_picks_the_move_whose_cumulative_probability_first_exceeds_it() -> None:
    """CDF 0.1, 0.3, 0.6, 0.75, 1: draws 0.05, 0.2, 0.5, 0.7, 0.9 take moves 1 to 5 of
    eq. (1); users move independently, each by its own probabilities."""
    probs = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]] * 5 + [[0.0, 0.0, 0.0, 0.0, 1.0]])
    start = np.array([[5.0, -7.0]] * 6)
    draws = np.array([0.05, 0.2, 0.5, 0.7, 0.9, 0.05])
    out = mobility.move(start, draws, np.cumsum(probs, axis=1), 2.0, LOW, HIGH)
    assert out.tolist() == [[5, -7], [5, -5], [5, -9], [3, -7], [7, -7], [7, -7]]


def test_border_reflects_back_inside() -> None:
    out = mobility.reflect(np.array([[52.0, -53.0], [10.0, 49.0]]), LOW, HIGH)
    assert out.tolist() == [[48.0, -47.0], [10.0, 49.0]]


def test_move_moments_give_mean_and_variance() -> None:
    probs = np.array([[0.5, 0.5, 0.0, 0.0, 0.0]])  # stay or +y, step 2
    mean, var = mobility.move_moments(probs, 2.0)
    assert mean.tolist() == [[0.0, 1.0]]
    assert var.tolist() == [pytest.approx(1.0)]  # E‖m‖² = 2, ‖E m‖² = 1


def test_reward_matches_eqs_15_and_17() -> None:
    assert reward(10.0, 0.0, 0.9, 5) == pytest.approx(9.0)  # eq. (17): a sync
    assert reward(10.0, 50.0, 0.9, 5) == pytest.approx(9.0 - 0.1 / 5 * 50.0)  # eq. (15)
