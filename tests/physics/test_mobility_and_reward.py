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


def test_each_move_has_the_step_length_and_its_probability() -> None:
    probs = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]])
    cdf = np.cumsum(probs, axis=1)
    rng = np.random.default_rng(1)
    start = np.zeros((1, 2))
    moves = np.array(
        [mobility.step_positions(rng, start, cdf, 2.0, LOW, HIGH)[0] for _ in range(40_000)]
    )
    for k, unit in enumerate(mobility.MOVES):
        freq = np.mean(np.all(moves == 2.0 * unit, axis=1))
        assert freq == pytest.approx(probs[0, k], abs=0.01)


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
