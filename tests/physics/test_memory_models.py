"""The memory options' physics: Gilbert–Elliott interference and Gauss–Markov mobility.

Expected values come from the models' closed forms, worked out by hand here; sampled
statistics are held to about four standard errors.
"""

import numpy as np
import pytest

from dnt_rllib.physics import channel, mobility

LOW, HIGH = np.array([-50.0, -50.0]), np.array([50.0, 50.0])


def test_markov_levels_have_the_configured_mean_and_ratio() -> None:
    # π = 0.25, r = 5: I_quiet = I / (0.75 + 1.25) = I / 2, I_loud = 2.5 I.
    quiet, loud = channel.markov_levels(4e-4, 0.25, 5.0)
    assert quiet == pytest.approx(2e-4) and loud == pytest.approx(1e-3)
    assert 0.75 * quiet + 0.25 * loud == pytest.approx(4e-4)


def test_markov_chain_has_the_configured_stationary_share_and_transitions() -> None:
    """π = 0.3, λ = 0.6: p01 = π(1 − λ) = 0.12, p10 = (1 − π)(1 − λ) = 0.28, and
    p01 / (p01 + p10) = 0.3 = π; the first state is drawn from π."""
    rng = np.random.default_rng(5)
    chains, slots = 400, 250
    states = np.empty((slots, chains), dtype=bool)
    loud = None
    for t in range(slots):
        loud = channel.markov_loud(rng.random(chains), loud, 0.3, 0.6)
        states[t] = loud
    now, after = states[:-1], states[1:]
    n_quiet, n_loud = (~now).sum(), now.sum()
    p01 = (after & ~now).sum() / n_quiet
    p10 = (~after & now).sum() / n_loud
    assert abs(p01 - 0.12) < 4 * np.sqrt(0.12 * 0.88 / n_quiet)
    assert abs(p10 - 0.28) < 4 * np.sqrt(0.28 * 0.72 / n_loud)
    # the first state is drawn from π, and the long-run share is π too. Successive
    # states correlate (λ), so the standard error of the long-run share is inflated by
    # sqrt((1 + λ) / (1 − λ)) = 2.
    first = channel.markov_loud(rng.random(40_000), None, 0.3, 0.6)
    assert abs(first.mean() - 0.3) < 4 * np.sqrt(0.21 / first.size)
    assert abs(states.mean() - 0.3) < 4 * 2 * np.sqrt(0.21 / states.size)


def test_gauss_markov_params_match_the_random_walk_step() -> None:
    """p = (stay .5, +y .2, −y .1, −x .1, +x .1), Δl = 2: E m = 2·(0.1 − 0.1, 0.2 − 0.1)
    = (0, 0.2); E‖m‖² = 4·0.5 = 2, so 2σ² = 2 − 0.04 and σ² = 0.98."""
    mean, std = mobility.gauss_markov_params(np.array([[0.5, 0.2, 0.1, 0.1, 0.1]]), 2.0)
    assert mean.tolist() == [[0.0, pytest.approx(0.2)]]
    assert std**2 == pytest.approx([0.98])


def test_gauss_markov_one_step_moments_away_from_the_walls() -> None:
    """v' = αv + (1 − α)μ + sqrt(1 − α²)σw: given v, E v' = αv + (1 − α)μ and Var v' per axis
    = (1 − α²)σ², and s' = s + v'. α = 0.8, μ = (1, −0.5), σ = 2, v = (3, 1): E v' = (2.6,
    0.7), Var = 0.36·4 = 1.44."""
    n = 200_000
    rng = np.random.default_rng(11)
    start = np.zeros((n, 1, 2))
    velocity = np.broadcast_to(np.array([3.0, 1.0]), (n, 1, 2))
    mean, std = np.array([[1.0, -0.5]]), np.array([2.0])
    normals = rng.standard_normal((n, 1, 2))
    moved, new_velocity = mobility.gauss_markov_move(
        start, velocity, normals, mean, std, 0.8, LOW, HIGH
    )
    v = new_velocity[:, 0]
    np.testing.assert_array_equal(moved[:, 0], v)  # no wall within reach: s' = s + v'
    se_mean = np.sqrt(1.44 / n)
    assert np.abs(v.mean(axis=0) - [2.6, 0.7]).max() < 4 * se_mean
    se_var = 1.44 * np.sqrt(2.0 / (n - 1))
    assert np.abs(v.var(axis=0, ddof=1) - 1.44).max() < 4 * se_var
    assert abs(np.corrcoef(v[:, 0], v[:, 1])[0, 1]) < 4 / np.sqrt(n)  # independent axes


def test_gauss_markov_keeps_its_stationary_law() -> None:
    """Started from N(μ, σ²) the velocity stays N(μ, σ²): after k steps the mean is μ, the
    variance σ² and the lag-k correlation α^k. μ = (0.5, 0), σ = 1.5, α = 0.7, k = 3."""
    n, k = 100_000, 3
    rng = np.random.default_rng(12)
    mean, std = np.array([[0.5, 0.0]]), np.array([1.5])
    v0 = mobility.stationary_velocity(rng.standard_normal((n, 1, 2)), mean, std)
    pos, v = np.zeros((n, 1, 2)), v0
    for _ in range(k):
        pos, v = mobility.gauss_markov_move(
            pos, v, rng.standard_normal((n, 1, 2)), mean, std, 0.7, LOW * 100, HIGH * 100
        )
    assert np.abs(v[:, 0].mean(axis=0) - [0.5, 0.0]).max() < 4 * 1.5 / np.sqrt(n)
    assert np.abs(v[:, 0].var(axis=0) - 2.25).max() < 4 * 2.25 * np.sqrt(2.0 / n)
    corr = np.corrcoef(v0[:, 0, 0], v[:, 0, 0])[0, 1]
    assert corr == pytest.approx(0.7**3, abs=4 / np.sqrt(n))


def test_reflection_flips_the_velocity_component_that_crossed() -> None:
    """Width 100. x = 53 → 47 (one fold: flip v_x); y = −20 stays; x = −52 → −48 (flip);
    x = 160 is 210 past the low wall: two folds, 10 past low → −40, no flip."""
    pos = np.array([[53.0, -20.0], [-52.0, 49.0], [160.0, 0.0]])
    vel = np.array([[4.0, -1.0], [-3.0, 2.0], [9.0, 1.0]])
    out, v = mobility.reflect_velocity(pos, vel, LOW, HIGH)
    assert out.tolist() == [[47.0, -20.0], [-48.0, 49.0], [-40.0, 0.0]]
    assert v.tolist() == [[-4.0, -1.0], [3.0, 2.0], [9.0, 1.0]]


def test_bayes_one_step_is_the_conditional_mean() -> None:
    """By hand: s_{t−1} = (1, 1), s_t = (3, 0), α = 0.5, μ = (2, 2): s_t + α(s_t − s_{t−1})
    + (1 − α)μ = (3 + 1 + 1, 0 − 0.5 + 1) = (5, 0.5). Sampled: its squared error per axis
    is (1 − α²)σ², less than the random walk's best s_t + μ, and uncorrelated with the
    last displacement (the residual of a conditional mean is orthogonal to the data)."""
    history = np.array([[[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]])  # (1, 3 states, 2U = 2)
    got = mobility.bayes_one_step(history, np.array([[2.0, 2.0]]), 0.5)
    assert got.tolist() == [[5.0, 0.5]]

    alpha, n = 0.75, 200_000
    mean, std = np.array([[0.4, -0.2], [0.0, 1.0]]), np.array([1.0, 0.5])  # two users
    rng = np.random.default_rng(13)
    far_low, far_high = LOW * 1e4, HIGH * 1e4
    s0 = np.zeros((n, 2, 2))
    v = mobility.stationary_velocity(rng.standard_normal((n, 2, 2)), mean, std)
    s1, v = mobility.gauss_markov_move(s0, v, rng.standard_normal((n, 2, 2)), mean, std,
                                       alpha, far_low, far_high)  # fmt: skip
    s2, _ = mobility.gauss_markov_move(s1, v, rng.standard_normal((n, 2, 2)), mean, std,
                                       alpha, far_low, far_high)  # fmt: skip
    history = np.stack([s0.reshape(n, -1), s1.reshape(n, -1)], axis=1)
    err = (mobility.bayes_one_step(history, mean, alpha) - s2.reshape(n, -1)).reshape(n, 2, 2)
    expected = (1 - alpha**2) * std**2  # per user, per axis: 0.4375, 0.109375
    mse = (err**2).mean(axis=0)  # (U, 2)
    assert np.abs(mse / expected[:, None] - 1).max() < 4 * np.sqrt(2.0 / n)
    naive = ((s1 + mean - s2) ** 2).mean(axis=0)  # ignores the velocity: error σ²(2 − 2α)
    assert np.all(naive > 1.5 * mse)
    last = (s1 - s0).reshape(n, -1)
    for i in range(4):
        assert abs(np.corrcoef(err.reshape(n, -1)[:, i], last[:, i])[0, 1]) < 4 / np.sqrt(n)
