"""The ``'set'`` and ``'set_memory'`` observations: their layout, and each entry from the
env's state by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env.vector import DNTSyncVectorEnv


def test_set_entries_by_hand() -> None:
    """U = 3, N = 2, random walk: 2 + 4 + 3·5 + 2·2 = 25 entries; the globals are
    ``'decision'``'s slots-since, slots-left and the rule's two numbers; the users'
    positions and offsets as ``'full'`` scales them; h_u = d_u^−2 (no fading, d ≥ 1) as
    1 − 2 ln d_u / ln(100/√2); y_n = 1 / (I_n + 10^−5) as
    2 ln((10^−5 + 10^−3) / (I_n + 10^−5)) / ln(101) − 1."""
    kwargs = {"twin": "hold", "num_users": 3, "num_rbs": 2, "episode_length": 6}
    env = DNTSyncEnv(SystemConfig(observation_mode="set", **kwargs))
    full = DNTSyncEnv(SystemConfig(observation_mode="decision", **kwargs))
    obs, ref = env.reset(seed=4)[0], full.reset(seed=4)[0]
    for _ in range(2):
        obs, ref = env.step(0)[0], full.step(0)[0]
    assert obs.shape == (25,)
    assert obs[0] == np.float32(3 / 65536) and obs[1] == np.float32(2 / 65536)
    # decision: positions 0:6, offsets 6:12, since 12, I_n 13:15, left 15, rule 16:18
    np.testing.assert_array_equal(obs[2:6], [ref[12], ref[15], ref[16], ref[17]])
    users = obs[6:21].reshape(3, 5)
    np.testing.assert_allclose(users[:, 0:2].ravel(), ref[0:6], atol=1e-6)
    np.testing.assert_allclose(users[:, 2:4].ravel(), ref[6:12], atol=1e-6)
    d = np.maximum(np.linalg.norm(env.user_positions, axis=1), 1.0)
    np.testing.assert_allclose(users[:, 4], np.clip(1 - 2 * np.log(d) / np.log(100 / np.sqrt(2)),
                                                    -1, 1), atol=1e-6)  # fmt: skip
    rbs = obs[21:25].reshape(2, 2)
    np.testing.assert_allclose(rbs[:, 0], ref[13:15], atol=1e-6)
    y = 2 * np.log((1e-5 + 1e-3) / (env.interference + 1e-5)) / np.log(101) - 1
    np.testing.assert_allclose(rbs[:, 1], np.clip(y, -1, 1), atol=1e-6)
    assert np.all(np.abs(obs) <= 1)


def test_set_memory_adds_the_flags_and_the_displacement() -> None:
    """Gauss–Markov, M = 3: G = 4 + 1 + 3, F_u = 7 (the displacement after the offset);
    the flags are ``'memory'``'s, the displacement ``'memory'``'s for each user."""
    kwargs = {"twin": "hold", "num_users": 2, "num_rbs": 3, "episode_length": 6, "history": 3,
              "mobility_model": "gauss_markov"}  # fmt: skip
    env = DNTSyncEnv(SystemConfig(observation_mode="set_memory", **kwargs))
    mem = DNTSyncEnv(SystemConfig(observation_mode="memory", **kwargs))
    obs, ref = env.reset(seed=2)[0], mem.reset(seed=2)[0]
    for a in (1, 0, 0):
        obs, ref = env.step(a)[0], mem.step(a)[0]
    assert obs.shape == (2 + 8 + 2 * 7 + 3 * 2,)
    # memory: pos 0:4, offsets 4:8, since 8, I 9:12, displacement 12:16, left 16, rule 17:19,
    # request 19, flags 20:23
    np.testing.assert_array_equal(obs[6:10], ref[19:23])
    users = obs[10:24].reshape(2, 7)
    np.testing.assert_allclose(users[:, 4:6].ravel(), ref[12:16], atol=1e-6)


@pytest.mark.parametrize("mode", ["set", "set_memory"])
def test_the_vector_env_gives_the_single_envs_rows(mode: str) -> None:
    cfg = SystemConfig(twin="hold", num_users=4, num_rbs=3, episode_length=5,
                       observation_mode=mode, mobility_model="gauss_markov")  # fmt: skip
    vec, one = DNTSyncVectorEnv(1, cfg), DNTSyncEnv(cfg)
    a, b = vec.reset(seed=7)[0][0], one.reset(seed=7)[0]
    np.testing.assert_array_equal(a, b)
    for act in (1, 0, 1):
        np.testing.assert_array_equal(vec.step(np.array([act]))[0][0], one.step(act)[0])
