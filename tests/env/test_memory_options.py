"""The memory options in the env: Markov interference and Gauss–Markov users, as played.

Expected values come from the models' closed forms (`SystemConfig`'s docstring), not from
the code under test; sampled statistics are held to about four standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.env.observation import observation_dim

#: π = 0.25, r = 4, λ = 0.5: I_quiet = I / (0.75 + 1) = 4e-4 / 1.75, I_loud = 4 I_quiet;
#: p01 = π(1 − λ) = 0.125, p10 = (1 − π)(1 − λ) = 0.375.
MARKOV = {"interference_model": "markov", "interference": 4e-4, "interference_loud_share": 0.25,
          "interference_loud_ratio": 4.0, "interference_memory": 0.5}  # fmt: skip


def test_markov_interference_as_played_has_its_levels_share_and_transitions() -> None:
    cfg = SystemConfig.from_dict({**MARKOV, "twin": "hold", "num_users": 2, "num_rbs": 5})
    envs = DNTSyncVectorEnv(100, cfg)
    first = envs.reset(seed=3)[0]
    slots = []
    for _ in range(cfg.episode_length - 1):
        slots.append(envs.step(np.zeros(100, dtype=np.int64))[4]["interference"])
    noise = np.array(slots)  # (T − 1, B, N): slots 0 … T − 2
    quiet, loud_level = 4e-4 / 1.75, 16e-4 / 1.75
    loud = np.isclose(noise, loud_level, rtol=1e-12)
    assert np.all(loud | np.isclose(noise, quiet, rtol=1e-12))  # only the two levels
    now, after = loud[:-1], loud[1:]
    n_quiet, n_loud = (~now).sum(), now.sum()
    p01, p10 = (after & ~now).sum() / n_quiet, (~after & now).sum() / n_loud
    assert abs(p01 - 0.125) < 4 * np.sqrt(0.125 * 0.875 / n_quiet)
    assert abs(p10 - 0.375) < 4 * np.sqrt(0.375 * 0.625 / n_loud)
    # slot 0 is drawn from the stationary law π = 0.25, so every slot's mean level is I
    assert abs(noise.mean() / 4e-4 - 1) < 0.1
    # slot 0's state, read from the observation (quiet −0.13, loud 0.80), is π-distributed
    start = DNTSyncVectorEnv(2000, cfg).reset(seed=4)[0][:, -cfg.num_rbs :] > 0.3
    assert abs(start.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / start.size)
    # the observation's interference entries are 2(1 − e^{−I/mean}) − 1 of the level
    rbs = first[:, -cfg.num_rbs :]
    levels = np.where(loud[0], loud_level, quiet)
    np.testing.assert_allclose(rbs, 1 - 2 * np.exp(-levels / 4e-4), rtol=1e-6)


def test_markov_interference_leaves_the_random_walk_and_the_observation_size_alone() -> None:
    base = SystemConfig(twin="hold")
    cfg = base.replace(**MARKOV)
    assert observation_dim(cfg) == observation_dim(base) == 2 * 20 + 1 + 6
    a, b = DNTSyncEnv(base), DNTSyncEnv(cfg)
    a.reset(seed=4)
    b.reset(seed=4)
    for _ in range(5):  # moves are drawn first each slot, so users walk the same
        np.testing.assert_array_equal(
            a.step(0)[4]["user_positions"], b.step(0)[4]["user_positions"]
        )


GM = {"mobility_model": "gauss_markov", "mobility_memory": 0.7, "twin": "hold"}


def test_gauss_markov_users_keep_their_velocity_in_the_env() -> None:
    """In an area too large to reach a wall, the displacement d_t = s_t − s_{t−1} = v_t, so
    its regression on the last one has slope α = 0.7 (an AR(1) with coefficient α), and the
    observation ends with d_t / (3Δl), clipped."""
    cfg = SystemConfig.from_dict({**GM, "num_users": 4, "num_rbs": 2, "area_size": 1e6})
    d, dim = cfg.state_dim, observation_dim(cfg)
    assert dim == 2 * d + 1 + cfg.num_rbs + d
    envs = DNTSyncVectorEnv(300, cfg)
    obs = envs.reset(seed=8)[0]
    positions, shown = [], []
    for _ in range(cfg.episode_length - 1):
        obs, _, _, _, info = envs.step(np.ones(300, dtype=np.int64))
        positions.append(info["user_positions"].reshape(300, -1))
        shown.append(obs[:, -d:])
    s = np.array(positions)  # (T − 1, B, 2U): s_0 … s_{T−2}
    moves = np.diff(s, axis=0)  # d_1 … d_{T−2}
    x, y = moves[:-1].reshape(-1, d), moves[1:].reshape(-1, d)
    slopes = [np.polyfit(x[:, i], y[:, i], 1)[0] for i in range(d)]
    n = len(x)
    assert np.abs(np.array(slopes) - 0.7).max() < 4 * np.sqrt((1 - 0.7**2) / n)
    expected = np.clip(moves / (3 * cfg.step_size), -1, 1)
    np.testing.assert_allclose(np.array(shown)[:-1], expected, atol=1e-6)


def test_gauss_markov_users_stay_inside_and_move_about_a_step() -> None:
    cfg = SystemConfig.from_dict(GM)
    envs = DNTSyncVectorEnv(64, cfg)
    envs.reset(seed=1)
    s = np.array([envs.step(np.zeros(64, dtype=np.int64))[4]["user_positions"] for _ in range(29)])
    assert s.min() >= -50 and s.max() <= 50
    # away from walls, E‖v‖² = ‖μ‖² + 2σ² = Δl² (1 − p_u1): RMS speed between
    # Δl sqrt(0.2) and Δl sqrt(0.8) for stay probabilities in [0.2, 0.8]
    rms = np.sqrt((np.diff(s, axis=0) ** 2).sum(axis=-1).mean())
    assert 6 * np.sqrt(0.2) < rms < 6 * np.sqrt(0.8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"interference_model": "gilbert"}, "SystemConfig.interference_model = 'gilbert'"),
        ({"interference_loud_share": 1.0}, "SystemConfig.interference_loud_share = 1.0: must"),
        ({"interference_loud_ratio": 0.5}, "SystemConfig.interference_loud_ratio = 0.5: must"),
        ({"interference_memory": 1.0}, "SystemConfig.interference_memory = 1.0: must be a"),
        ({"mobility_model": "levy"}, "SystemConfig.mobility_model = 'levy': must be one of"),
        ({"mobility_memory": -0.1}, "SystemConfig.mobility_memory = -0.1: must be a number"),
    ],
)
def test_bad_memory_options_give_one_line(values: dict, message: str) -> None:
    from dnt_rllib import ConfigError

    with pytest.raises(ConfigError) as err:
        SystemConfig.from_dict(values)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
