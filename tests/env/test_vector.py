"""`DNTSyncVectorEnv` returns what gymnasium's SyncVectorEnv over `DNTSyncEnv` returns."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import dnt_rllib
from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.pipeline.rllib_env import INFO_KEYS, RLlibDNTEnv
from dnt_rllib.twin.data import Normalisation
from dnt_rllib.twin.inference import NumpyGRUTwin, weight_shapes

#: Short episodes, so that the rollouts below cross several auto-resets.
SMALL = {"num_users": 3, "num_rbs": 4, "episode_length": 7, "history": 4}


def random_gru(config: SystemConfig, hidden: int = 16) -> NumpyGRUTwin:
    """A GRU twin with random weights: batching must not change what it predicts."""
    rng = np.random.default_rng(0)
    shapes = weight_shapes(config.state_dim, hidden)
    weights = {name: rng.normal(0, 0.3, shape) for name, shape in shapes.items()}
    return NumpyGRUTwin(weights, Normalisation.from_config(config), config.history)


def rollout(env: gym.vector.VectorEnv, seed: int, steps: int) -> list:
    rng = np.random.default_rng(seed)
    out = [env.reset(seed=seed)]
    for _ in range(steps):
        out.append(env.step(rng.integers(0, 2, env.num_envs)))
    return out


def assert_same(a: object, b: object, tol: float) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key], tol)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y, tol)
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        if tol == 0 or a.dtype.kind in "biu":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(("twin", "tol"), [("hold", 0.0), ("gru", 1e-5)])
def test_matches_sync_vector_env(twin: str, tol: float) -> None:
    """Same observations, rewards, flags and infos, across auto-resets: bit for bit with the
    hold-last twin; with the GRU to its float32 rounding (a batch of 5 is not 5 batches of
    1 to BLAS), the tolerance the twin keeps against torch."""
    config = SystemConfig.from_dict({**SMALL, "twin": "hold"})
    predictor = random_gru(config) if twin == "gru" else None
    ours = DNTSyncVectorEnv(5, config, twin=predictor)
    reference = gym.vector.SyncVectorEnv(
        [lambda: DNTSyncEnv(config, twin=predictor) for _ in range(5)]
    )
    assert ours.single_observation_space == reference.single_observation_space
    assert ours.action_space == reference.action_space
    got, expected = rollout(ours, 3, 20), rollout(reference, 3, 20)
    assert any(step[3].any() for step in got[1:])  # episodes did end and auto-reset
    assert_same(got, expected, tol)


def test_make_vec_uses_it() -> None:
    envs = gym.make_vec(dnt_rllib.ENV_ID, num_envs=3, config={"twin": "hold"})
    assert isinstance(envs.unwrapped, DNTSyncVectorEnv) and envs.num_envs == 3


def test_rllib_env_seeds_never_collide() -> None:
    """Sub-env i of the runner reset with seed s: (trial seed, s, i) → distinct streams."""
    config = {**SMALL, "twin": "hold", "seed": 7, "num_envs": 3}
    first = [RLlibDNTEnv(config).reset(seed=s)[0] for s in (7, 8)]  # runners 0 and 1
    observations = np.concatenate(first)
    assert len({row.tobytes() for row in observations}) == 6
    again = RLlibDNTEnv(config).reset(seed=7)[0]
    np.testing.assert_array_equal(again, first[0])
    other_trial = RLlibDNTEnv({**config, "seed": 8}).reset(seed=8)[0]
    assert not np.array_equal(other_trial, first[1])


def test_rllib_env_passes_on_the_scalar_infos_only() -> None:
    envs = RLlibDNTEnv({**SMALL, "twin": "hold", "num_envs": 2})
    envs.reset(seed=0)
    info = envs.step(np.ones(2, dtype=np.int64))[4]
    assert set(info) == set(INFO_KEYS) | {f"_{key}" for key in INFO_KEYS}
    assert info["synced"].all() and (info["sync_error"] == 0).all()
