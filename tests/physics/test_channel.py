"""Eqs. (2)-(3): gains and rates against hand-computed values."""

import math

import numpy as np
import pytest

from dnt_rllib.physics import channel


def test_gain_is_inverse_square_of_distance() -> None:
    gain = channel.channel_gain(np.array([[3.0, 4.0]]), np.zeros(2), 1.0, 2.0, 1.0)
    assert gain == pytest.approx([1 / 25])


def test_gain_floors_the_distance() -> None:
    gain = channel.channel_gain(np.array([[0.1, 0.0]]), np.zeros(2), 2.0, 2.0, 1.0)
    assert gain == pytest.approx([2.0])


def test_rate_of_a_user_at_known_distance_matches_eq2() -> None:
    # d = 10 → h = 0.01; SINR = P h / (I + B N0) = 0.01 / (1e-3 + 1e-5).
    gain = channel.channel_gain(np.array([[6.0, 8.0]]), np.zeros(2), 1.0, 2.0, 1.0)
    c = channel.rates(gain, np.array([1e-3, 0.0]), tx_power=1.0, bandwidth=1.0, noise_psd=1e-5)
    assert c.shape == (1, 2)
    assert c[0, 0] == pytest.approx(math.log2(1 + 0.01 / 1.01e-3))
    assert c[0, 1] == pytest.approx(math.log2(1 + 0.01 / 1e-5))


def test_bandwidth_scales_rate_and_noise() -> None:
    c = channel.rates(np.array([1.0]), np.array([0.0]), tx_power=1.0, bandwidth=2.0, noise_psd=0.5)
    assert c[0, 0] == pytest.approx(2.0 * math.log2(1 + 1.0 / 1.0))


def test_interference_is_exponential_with_the_configured_mean() -> None:
    rng = np.random.default_rng(0)
    draws = np.concatenate([channel.draw_interference(rng, 2e-4, 6) for _ in range(20_000)])
    assert draws.mean() == pytest.approx(2e-4, rel=0.03)
    assert np.all(channel.draw_interference(rng, 0.0, 3) == 0)
