"""``frame_stack`` = k: the observation is the last k observations, oldest first, padded at
a reset with the reset observation, as gymnasium's ``FrameStackObservation`` (then
flattened) gives them; the vector env stacks each env's the same way."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import FlattenObservation, FrameStackObservation

from dnt_rllib import ConfigError, DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv

SMALL = {"twin": "hold", "num_users": 2, "num_rbs": 2, "history": 3, "episode_length": 5,
         "observation_mode": "memory", "delay_bound": 0.03}  # fmt: skip
ACTIONS = [1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0]  # two episodes of 5 slots, and a third begun


def single_frames(config: SystemConfig, seed: int) -> list[list[np.ndarray]]:
    """Per episode, the unstacked observations o_0 … of ``ACTIONS`` played from ``seed``."""
    env = DNTSyncEnv(config.replace(frame_stack=1))
    episodes = [[env.reset(seed=seed)[0]]]
    for a in ACTIONS:
        obs, _, terminated, truncated, _ = env.step(a)
        episodes[-1].append(obs)
        if terminated or truncated:
            episodes.append([env.reset()[0]])
    return episodes


def by_hand(frames: list[np.ndarray], t: int, k: int) -> np.ndarray:
    """o_{t−k+1} … o_t side by side, o_0 standing in for the slots before the reset."""
    return np.concatenate([frames[max(s, 0)] for s in range(t - k + 1, t + 1)])


@pytest.mark.parametrize("k", [2, 3])
def test_the_stack_is_the_last_k_observations_padded_with_the_reset_one(k: int) -> None:
    cfg = SystemConfig.from_dict({**SMALL, "frame_stack": k})
    dim = DNTSyncEnv.spaces(cfg.replace(frame_stack=1))[0].shape[0]
    env = DNTSyncEnv(cfg)
    assert env.observation_space.shape == (k * dim,)
    episodes = single_frames(cfg, seed=4)
    got = [[env.reset(seed=4)[0]]]
    for a in ACTIONS:
        obs, _, terminated, truncated, _ = env.step(a)
        got[-1].append(obs)
        if terminated or truncated:
            got.append([env.reset()[0]])
    assert [len(e) for e in got] == [6, 6, 3]
    for frames, stacked in zip(episodes, got, strict=True):
        # at the reset: k copies of o_0; one slot on: k − 1 copies of o_0, then o_1
        np.testing.assert_array_equal(stacked[0], np.tile(frames[0], k))
        np.testing.assert_array_equal(stacked[1], np.concatenate([*[frames[0]] * (k - 1),
                                                                  frames[1]]))  # fmt: skip
        for t, obs in enumerate(stacked):
            np.testing.assert_array_equal(obs, by_hand(frames, t, k))
            assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_gymnasiums_wrapper_gives_the_same_observations() -> None:
    """The reference: ``FlattenObservation(FrameStackObservation(env, k))`` over the
    unstacked env (its default padding, 'reset'), across a reset."""
    cfg = SystemConfig.from_dict({**SMALL, "frame_stack": 3})
    ours = DNTSyncEnv(cfg)
    reference = FlattenObservation(FrameStackObservation(DNTSyncEnv(cfg.replace(frame_stack=1)), 3))
    assert ours.observation_space == reference.observation_space
    for seed in (0, 1):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0], reference.reset(seed=seed)[0])
        for a in ACTIONS[:5]:
            a_ours, a_ref = ours.step(a), reference.step(a)
            np.testing.assert_array_equal(a_ours[0], a_ref[0])
            assert a_ours[1:4] == a_ref[1:4]
    check_env(DNTSyncEnv(cfg), skip_render_check=True)


def test_the_vector_env_stacks_each_envs_own_frames_across_auto_resets() -> None:
    """3 envs stacked by 3 against the same 3 envs unstacked (same seed, so the same draws),
    stacked here by hand; the auto-reset step starts new stacks."""
    cfg = SystemConfig.from_dict({**SMALL, "frame_stack": 3})
    stacked, plain = DNTSyncVectorEnv(3, cfg), DNTSyncVectorEnv(3, cfg.replace(frame_stack=1))
    assert stacked.single_observation_space.shape == (3 * plain.single_observation_space.shape[0],)
    history = [plain.reset(seed=9)[0]]
    np.testing.assert_array_equal(stacked.reset(seed=9)[0], np.tile(history[0], 3))
    start, resets = 0, 0
    rng = np.random.default_rng(0)
    for _ in range(14):
        actions = rng.integers(0, 2, 3)
        obs = stacked.step(actions)[0]
        new = plain.step(actions)[0]
        history.append(new)
        if len(history) - 1 - start > SMALL["episode_length"]:  # the auto-reset step
            start, resets = len(history) - 1, resets + 1
        t = len(history) - 1
        frames = [history[max(s, start)] for s in (t - 2, t - 1, t)]
        np.testing.assert_array_equal(obs, np.concatenate(frames, axis=1))
    assert resets == 2


def test_a_batch_of_one_stacks_as_the_single_env() -> None:
    cfg = SystemConfig.from_dict({**SMALL, "frame_stack": 2, "action_mode": "rb"})
    ours = DNTSyncVectorEnv(1, cfg)
    reference = gym.vector.SyncVectorEnv([lambda: DNTSyncEnv(cfg)])
    assert ours.single_observation_space == reference.single_observation_space
    np.testing.assert_array_equal(ours.reset(seed=2)[0], reference.reset(seed=2)[0])
    rng = np.random.default_rng(1)
    for _ in range(13):  # two auto-resets
        actions = rng.integers(0, 3, 1)
        got, expected = ours.step(actions), reference.step(actions)
        for a, b in zip(got[:4], expected[:4], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [0, -1, 6, 2.5, True, "2", None])
def test_a_bad_frame_stack_gives_one_line_naming_the_range(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        SystemConfig.from_dict({**SMALL, "frame_stack": value})
    message = str(err.value)
    assert message.startswith(f"SystemConfig.frame_stack = {value!r}: must be an integer in "
                              "[1, 5]") and "\n" not in message  # fmt: skip
