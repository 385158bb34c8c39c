"""The envs' sorted assignment plays what the Hungarian played: sum rates, the `decision`
observation's rate cost, and the rates recomputed from an info alone (Rayleigh fading on)."""

from __future__ import annotations

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.physics import channel
from dnt_rllib.physics.allocation import allocate
from dnt_rllib.physics.sync import NO_RB

VARIANTS = {
    "default": {},
    "rayleigh": {"rayleigh_fading": True},
    "rb-gamma": {"action_mode": "rb", "delay_bound": 0.03},
    "large-markov-rayleigh": {"num_users": 30, "num_rbs": 12, "rayleigh_fading": True,
                              "interference_model": "markov"},
    "few-users": {"num_users": 3, "num_rbs": 8},
}  # fmt: skip


def hungarian(rates: np.ndarray, blocked: int = NO_RB) -> float:
    return allocate(rates, int(blocked))[1]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_envs_play_the_hungarians_sum_rates(variant: str) -> None:
    """Three seeded episodes of the single env and one vector batch of 4, random actions:
    every slot's Σ c equals the Hungarian's on the slot's rate matrix with the played
    sync RB withheld (float tolerance), and its allocation is a matching with that sum."""
    cfg = SystemConfig.from_dict({"twin": "hold", **VARIANTS[variant]})
    env = DNTSyncEnv(cfg)
    rng = np.random.default_rng(0)
    synced = 0
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(cfg.episode_length):
            rates = env.rate_matrix()
            _, _, _, _, info = env.step(int(rng.integers(env.action_space.n)))
            synced += info["synced"]
            assert info["sum_rate"] == pytest.approx(hungarian(rates, info["sync_rb"]), rel=1e-12)
            users = np.flatnonzero(info["allocation"] != NO_RB)
            served = info["allocation"][users]
            assert len(set(served.tolist())) == len(served) and info["sync_rb"] not in served
            assert rates[users, served].sum() == pytest.approx(info["sum_rate"], rel=1e-12)
    assert synced > 0
    envs = DNTSyncVectorEnv(4, cfg)
    envs.reset(seed=7)
    for _ in range(cfg.episode_length):
        rates = envs.slots.rate_matrices()
        _, _, _, _, info = envs.step(rng.integers(envs.single_action_space.n, size=4))
        for i in range(4):
            want = hungarian(rates[i], info["sync_rb"][i])
            assert info["sum_rate"][i] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("vector", [False, True])
def test_rates_follow_from_the_info_alone_with_rayleigh_fading(vector: bool) -> None:
    """``info['fading']`` is the slot's o_u: with the positions, interference and
    allocation in the info it gives back the slot's Σ c (eq. 2), which is also the
    Hungarian's on the rate matrix rebuilt from the info."""
    cfg = SystemConfig(twin="hold", rayleigh_fading=True, num_users=12, num_rbs=7)
    link = (cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
    env = DNTSyncVectorEnv(2, cfg) if vector else DNTSyncEnv(cfg)
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    for _ in range(cfg.episode_length):
        if vector:
            _, _, _, _, info = env.step(rng.integers(2, size=2))
            slots = [{k: v[i] for k, v in info.items() if not k.startswith("_")} for i in range(2)]
        else:
            slots = [env.step(int(rng.integers(2)))[4]]
        for slot in slots:
            assert slot["fading"].shape == (cfg.num_users,)
            gain = channel.channel_gain(
                slot["user_positions"], np.array(cfg.bs_position), slot["fading"],
                cfg.pathloss_exponent, cfg.min_distance,
            )  # fmt: skip
            rates = channel.rates(gain, slot["interference"], *link)
            users = np.flatnonzero(slot["allocation"] != NO_RB)
            total = rates[users, slot["allocation"][users]].sum()
            assert total == pytest.approx(slot["sum_rate"], rel=1e-12)
            assert hungarian(rates, slot["sync_rb"]) == pytest.approx(total, rel=1e-12)
    plain = DNTSyncEnv(cfg.replace(rayleigh_fading=False))
    plain.reset(seed=0)
    assert "fading" not in plain.step(0)[4]


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
def test_decision_cost_is_the_hungarians_without_a_second_assignment(action_mode: str) -> None:
    """The `decision` observation's rate cost ε (Σc_all − Σc_withheld): the Hungarian with
    every RB and without the paper's R (binary) or without the feasible RB that costs least
    (rb), ∞ (the top of the range) where no RB meets γ (γ = 0.02: in about 1 slot in 6)."""
    cfg = SystemConfig(twin="hold", observation_mode="decision", action_mode=action_mode,
                       delay_bound=0.02, rayleigh_fading=True)  # fmt: skip
    env = DNTSyncEnv(cfg)
    obs, _ = env.reset(seed=11)
    blocked = 0
    for _ in range(3 * cfg.episode_length):
        rates = env.rate_matrix()
        feasible = np.flatnonzero(env.interference <= env.network.max_sync_interference)
        if action_mode == "binary":
            rb = env.paper_sync_rb()
            withheld = hungarian(rates, rb) if rb != NO_RB else -np.inf
        else:
            withheld = max((hungarian(rates, n) for n in feasible), default=-np.inf)
        cost = cfg.epsilon * (hungarian(rates) - withheld)
        blocked += not np.isfinite(cost)
        assert obs[-1] == pytest.approx(1 - 2 * np.exp(-cost / 2), abs=1e-6)
        obs, _, terminated, _, _ = env.step(0)
        if terminated:
            obs, _ = env.reset()
    assert 0 < blocked < 3 * cfg.episode_length
