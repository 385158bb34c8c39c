"""The 'timed' and 'decision' layouts against each entry written out from what the env
played: the Gauss–Markov displacement beside the countdown, and a slot without a feasible
RB."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.physics.allocation import allocate


def squash(x: float) -> float:
    """The decision entries' 2(1 − exp(−x / 2)) − 1 (∞ → 1)."""
    return 1.0 - 2.0 * np.exp(-x / 2.0)


def by_hand(env: DNTSyncEnv, last: dict[str, Any], slot: int) -> np.ndarray:
    """Slot ``slot``'s observation from the env's s_t and I_n and the last step's info (s_{t−1},
    and the DNT's s'_{t−1}, which the hold twin predicts as ŝ_t), no sync since the reset:
    positions, offsets, slots since the sync, interference, displacement, slots left,
    then (decision) the gap penalty and the sync's rate cost (top of the range where no RB
    meets γ)."""
    cfg = env.config
    s = env.user_positions.ravel()
    guess = last["twin_positions"].ravel()
    moved = s - last["user_positions"].ravel()
    parts = [
        (s - np.tile(cfg.bs_position, cfg.num_users)) / (cfg.area_size / 2),
        (guess - s) / (5 * cfg.step_size),
        [2 * slot / cfg.episode_length - 1],
        2 * (1 - np.exp(-env.interference / cfg.interference)) - 1,
    ]
    if cfg.mobility_model == "gauss_markov":
        parts.append(moved / (3 * cfg.step_size))
    parts.append([2 * (cfg.episode_length - slot) / cfg.episode_length - 1])
    if cfg.observation_mode == "decision":
        penalty = (1 - cfg.epsilon) / cfg.num_users * float(np.sum((guess - s) ** 2))
        rates, rb = env.rate_matrix(), env.paper_sync_rb()
        cost = cfg.epsilon * (allocate(rates)[1] - allocate(rates, rb)[1]) if rb >= 0 else np.inf
        parts.append([squash(penalty), squash(cost)])
    return np.clip(np.concatenate([np.ravel(p) for p in parts]), -1.0, 1.0)


def played(config: dict[str, Any], slots: int) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(observation, by hand, whether an RB meets γ) at slots 1 … ``slots`` of an episode
    without syncs."""
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=slots + 1, **config))
    env.reset(seed=0)
    out = []
    for t in range(1, slots + 1):
        obs, _, _, _, info = env.step(0)
        out.append((obs, by_hand(env, info, t), env.paper_sync_rb() >= 0))
    return out


@pytest.mark.parametrize("mode", ["timed", "decision"])
def test_the_countdown_follows_the_gauss_markov_displacement(mode: str) -> None:
    config = {"observation_mode": mode, "mobility_model": "gauss_markov", "num_users": 3}
    moved = []
    for obs, expected, _ in played(config, 6):
        np.testing.assert_allclose(obs, expected, atol=1e-6)
        moved.append(obs[2 * 6 + 1 + 6])  # user 0's x-displacement (2U = 6, N = 6)
    assert len(set(moved)) > 1  # a displacement, not a countdown or a constant


def test_a_slot_without_a_feasible_rb_shows_the_top_sync_cost() -> None:
    """γ = 0.02 leaves some slots with no RB meeting the bound: their cost entry is 1."""
    infeasible = 0
    config = {"observation_mode": "decision", "delay_bound": 0.02}
    for obs, expected, feasible in played(config, 20):
        np.testing.assert_allclose(obs, expected, atol=1e-6)
        if not feasible:
            infeasible += 1
            assert obs[-1] == 1.0
    assert 0 < infeasible < 20


def compact_by_hand(env: DNTSyncEnv, last: dict[str, Any], slot: int) -> np.ndarray:
    """``'compact'`` at slot ``slot`` of an episode without syncs, from the env's s_t, I_n and
    the last step's twin positions: the gap penalty and the sync's rate cost (the Hungarian
    allocation), the slots since the sync and left, the users' offsets ‖ŝ_u − s_u‖ / 5Δl
    (≤ 1) as 2·mean − 1 and 2·max − 1, and the RBs' 1 − 2 exp(−I_n / I) by mean, min, max."""
    cfg = env.config
    s = env.user_positions.reshape(cfg.num_users, 2)
    guess = last["twin_positions"].reshape(cfg.num_users, 2)
    gap = guess - s
    penalty = (1 - cfg.epsilon) / cfg.num_users * float(np.sum(gap**2))
    rates, rb = env.rate_matrix(), env.paper_sync_rb()
    cost = cfg.epsilon * (allocate(rates)[1] - allocate(rates, rb)[1]) if rb >= 0 else np.inf
    offsets = [min(float(np.hypot(*g)) / (5 * cfg.step_size), 1.0) for g in gap]
    noise = [1 - 2 * np.exp(-i / cfg.interference) for i in env.interference]
    values = [squash(penalty), squash(cost), 2 * slot / cfg.episode_length - 1,
              2 * (cfg.episode_length - slot) / cfg.episode_length - 1,
              2 * np.mean(offsets) - 1, 2 * max(offsets) - 1,
              np.mean(noise), min(noise), max(noise)]  # fmt: skip
    return np.clip(values, -1.0, 1.0)


@pytest.mark.parametrize(("users", "rbs"), [(3, 4), (40, 25)])
def test_the_compact_observation_by_hand_at_two_cell_sizes(users: int, rbs: int) -> None:
    cfg = SystemConfig(twin="hold", observation_mode="compact", num_users=users, num_rbs=rbs,
                       episode_length=8)  # fmt: skip
    env = DNTSyncEnv(cfg)
    assert env.observation_space.shape == (9,)
    env.reset(seed=1)
    offsets = set()
    for t in range(1, 7):
        obs, _, _, _, info = env.step(0)
        np.testing.assert_allclose(obs, compact_by_hand(env, info, t), atol=1e-6)
        offsets.add(float(obs[4]))
    assert len(offsets) > 1  # the offsets grow without syncs: not a constant


def test_compact_memory_is_compact_and_the_memory_flags() -> None:
    kwargs = {"twin": "hold", "num_users": 5, "history": 4, "episode_length": 8}
    plain = DNTSyncEnv(SystemConfig(observation_mode="compact", **kwargs))
    memory = DNTSyncEnv(SystemConfig(observation_mode="compact_memory", **kwargs))
    assert memory.observation_space.shape == (9 + 1 + 4,)
    plain.reset(seed=2)
    memory.reset(seed=2)
    for action in (1, 0, 0, 1):  # actions never touch the random stream
        a, *_ = plain.step(action)
        b, *_ = memory.step(action)
        np.testing.assert_array_equal(b[:9], a)
        assert b[9] == (1.0 if action else -1.0)  # this slot's request
    assert set(b[10:].tolist()) <= {-1.0, 1.0}
