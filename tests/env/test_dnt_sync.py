"""The gymnasium env: API, spaces, info, determinism, both action and observation modes."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dnt_rllib
from dnt_rllib import DNTSyncEnv, SystemConfig

HOLD = {"twin": "hold"}
INFO_KEYS = {
    "user_positions",
    "twin_positions",
    "interference",
    "synced",
    "sync_rb",
    "allocation",
    "sum_rate",
    "sync_error",
}


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
@pytest.mark.parametrize("observation_mode", ["full", "paper"])
def test_env_checker_passes(action_mode: str, observation_mode: str) -> None:
    env = gym.make(
        dnt_rllib.ENV_ID,
        config={**HOLD, "action_mode": action_mode, "observation_mode": observation_mode},
    )
    check_env(env.unwrapped, skip_render_check=True)
    u = env.unwrapped.config.num_users
    n = env.unwrapped.config.num_rbs
    assert env.action_space.n == (2 if action_mode == "binary" else n + 1)
    assert env.observation_space.shape == (
        (4 * u + 1 + n,) if observation_mode == "full" else (2 * u,)
    )


def test_public_attributes_and_info_keys() -> None:
    env = gym.make(dnt_rllib.ENV_ID, config=SystemConfig(twin="hold", num_users=3, num_rbs=2))
    assert isinstance(env.unwrapped.config, SystemConfig)
    assert env.unwrapped.move_probs.shape == (3, 5)
    history = np.zeros((4, 5, 6))
    assert env.unwrapped.twin.predict(history).shape == (4, 6)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(1)
    assert set(info) >= INFO_KEYS
    assert info["user_positions"].shape == (3, 2) and info["twin_positions"].shape == (3, 2)
    assert info["interference"].shape == (2,) and info["allocation"].shape == (3,)
    assert info["synced"] and info["sync_rb"] in (0, 1) and info["sync_error"] == 0.0
    assert info["sync_rb"] not in info["allocation"].tolist()
    assert not terminated


def rollout(env: DNTSyncEnv, seed: int, actions: list[int]) -> list:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, r, _, _, info = env.step(a)
        out += [obs, r, info["sum_rate"], info["sync_error"], info["user_positions"]]
    return out


def test_same_seed_same_episode_bit_for_bit() -> None:
    actions = [0, 1, 0, 0, 1] * 6
    a = rollout(DNTSyncEnv(HOLD), 7, actions)
    b = rollout(DNTSyncEnv(HOLD), 7, actions)
    c = rollout(DNTSyncEnv(HOLD), 8, actions)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_actions_do_not_change_the_physical_trajectory() -> None:
    env = DNTSyncEnv(HOLD)
    a = rollout(env, 3, [0] * 30)[5::5]
    b = rollout(env, 3, [1] * 30)[5::5]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_env_pickles_and_keeps_its_state() -> None:
    env = DNTSyncEnv(HOLD)
    env.reset(seed=4)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    assert np.array_equal(env.step(1)[0], clone.step(1)[0])


def test_episode_truncates_after_episode_length() -> None:
    env = DNTSyncEnv({**HOLD, "episode_length": 4})
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(4)]
    assert flags == [False, False, False, True]


def test_twin_rolls_forward_between_syncs_and_resets_on_sync() -> None:
    env = DNTSyncEnv(HOLD)
    env.reset(seed=1)
    _, _, _, _, first = env.step(1)
    frozen = first["user_positions"]
    for _ in range(3):
        _, _, _, _, info = env.step(0)
        assert np.array_equal(info["twin_positions"], frozen)  # hold-last: twin stays put
    assert info["sync_error"] == pytest.approx(((info["user_positions"] - frozen) ** 2).sum())
    assert env.slots_since_sync == 3
    assert env.step(1)[4]["sync_error"] == 0.0


def test_infeasible_sync_is_scored_as_no_sync() -> None:
    env = DNTSyncEnv({**HOLD, "delay_bound": 1e-6})
    env.reset(seed=0)
    env.step(0)
    _, _, _, _, info = env.step(1)
    assert not info["synced"] and info["sync_rb"] == -1 and info["infeasible_sync"]
    assert info["sync_error"] > 0


def test_rb_mode_syncs_on_the_chosen_rb() -> None:
    env = DNTSyncEnv({**HOLD, "action_mode": "rb"})
    env.reset(seed=0)
    _, _, _, _, info = env.step(3)
    assert info["synced"] and info["sync_rb"] == 2 and 2 not in info["allocation"].tolist()


def test_reward_is_eq15_from_info() -> None:
    cfg = SystemConfig(twin="hold")
    env = DNTSyncEnv(cfg)
    env.reset(seed=2)
    env.step(1)
    _, r, _, _, info = env.step(0)
    expected = (
        cfg.epsilon * info["sum_rate"] - (1 - cfg.epsilon) / cfg.num_users * info["sync_error"]
    )
    assert r == pytest.approx(expected)


def test_envs_sharing_one_gru_twin_keep_their_own_predictions(tmp_path) -> None:
    cfg = SystemConfig(
        num_users=3,
        num_rbs=2,
        gru_hidden=8,
        twin_trajectories=20,
        twin_max_epochs=1,
        twin_cache_dir=str(tmp_path),
    )
    a, b = DNTSyncEnv(cfg), DNTSyncEnv(cfg)
    assert a.twin is b.twin  # loaded once per process, as in a vectorised env runner
    a.reset(seed=1)
    before = a.twin_prediction.copy()
    b.reset(seed=2)
    b.step(0)
    assert np.array_equal(before, a.twin_prediction)


def test_slot_0_is_scored_like_every_other_slot() -> None:
    # With the hold-last twin and no sync, ŝ_t = s_{−1}, so the gap at slot t is the squared
    # displacement of t + 1 steps: (t + 1) Σ_u Δl² (1 − p_u,stay) away from the walls, the
    # moves being independent with mean drift ≪ Δl. Slot 0 must be one step's worth, not 0.
    cfg = SystemConfig(twin="hold", area_size=10_000.0)  # walls never reached
    env = gym.make(dnt_rllib.ENV_ID, config=cfg)
    one_step = cfg.step_size**2 * (1.0 - env.unwrapped.move_probs[:, 0]).sum()
    gaps = np.zeros(2)
    episodes = 2000
    for seed in range(episodes):
        env.reset(seed=seed)
        for t in range(2):
            gaps[t] += env.step(0)[4]["sync_error"] / episodes
    assert gaps[0] == pytest.approx(one_step, rel=0.06)
    assert gaps[1] == pytest.approx(2 * one_step, rel=0.06)
