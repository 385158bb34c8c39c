"""What a slot shows and scores, against numbers worked out by hand, in both envs.

Each test puts an env in a known state (positions, the twin's state through the hold-last
twin, slots since the last sync, interference, fading) after a reset, so nothing depends
on how many draws a reset makes, and checks `DNTSyncEnv` and a batch of one of
`DNTSyncVectorEnv` alike.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv


class Probe:
    """One episode of either env, set to a chosen slot and stepped."""

    def __init__(self, kind: str, config: dict[str, Any]) -> None:
        self.kind = kind
        cfg = SystemConfig.from_dict({**config, "twin": "hold"})
        self.env = DNTSyncEnv(cfg) if kind == "single" else DNTSyncVectorEnv(1, cfg)
        self.env.reset(seed=0)

    def set_slot(
        self,
        positions: list,
        twin_state: list,
        since_sync: int,
        interference: list,
        fading: list | None = None,
    ) -> np.ndarray:
        """Puts s_t, the DNT's last state (ŝ_t with the hold-last twin), k and I_n (and
        o_u) in place; returns the observation the env computes for that slot."""
        s = np.array(positions, dtype=np.float64)
        last = np.array(twin_state, dtype=np.float64).ravel()
        noise = np.array(interference, dtype=np.float64)
        if self.kind == "single":
            env = self.env
            env._positions = s
            env._history[0, -1] = last
            env._since_sync = since_sync
            env._interference = noise
            if fading is not None:
                env._fading = np.array(fading, dtype=np.float64)
            return env._observe()
        slots = self.env.slots
        slots.positions = s[None].copy()
        slots.history[0, -1] = last
        slots.since_sync[0] = since_sync
        slots.interference = noise[None].copy()
        if fading is not None:
            slots.fading = np.array(fading, dtype=np.float64)[None]
        return slots.observe()[0]

    def rates(self) -> np.ndarray:
        if self.kind == "single":
            return self.env.rate_matrix()
        return self.env.slots.rate_matrices()[0]

    def step(self, action: int) -> tuple[np.ndarray, float, dict[str, Any]]:
        if self.kind == "single":
            obs, r, _, _, info = self.env.step(action)
            return obs, r, info
        obs, r, _, _, info = self.env.step(np.array([action]))
        return obs[0], float(r[0]), {k: v[0] for k, v in info.items() if not k.startswith("_")}

    @property
    def since_sync(self) -> int:
        if self.kind == "single":
            return self.env.slots_since_sync
        return int(self.env.slots.since_sync[0])


ENVS = ["single", "vector"]

#: A BS away from the origin: the area is [−40, 60] × [−70, 30], half-side 50.
OFF_CENTRE = {
    "num_users": 2,
    "num_rbs": 3,
    "history": 3,
    "bs_position": (10.0, -20.0),
    "area_size": 100.0,
    "step_size": 6.0,  # offsets in units of 5 · 6 = 30 m
    "episode_length": 10,
    "interference": 1e-4,
}
POSITIONS = [[25.0, -10.0], [-30.0, -55.0]]
TWIN = [[31.0, -13.0], [-90.0, -40.0]]  # offsets (+6, −3) and (−60, +15)
INTERFERENCE = [0.0, 1e-4 * math.log(2.0), 1e-4 * math.log(5.0)]


@pytest.mark.parametrize("kind", ENVS)
def test_full_observation_is_each_segment_formula(kind: str) -> None:
    obs = Probe(kind, OFF_CENTRE).set_slot(POSITIONS, TWIN, 3, INTERFERENCE)
    positions = [
        (25 - 10) / 50, (-10 + 20) / 50,  # user 1: x, y  (s − centre) / half
        (-30 - 10) / 50, (-55 + 20) / 50,  # user 2
    ]  # fmt: skip
    assert positions == pytest.approx([0.3, 0.2, -0.8, -0.7])
    offsets = [6 / 30, -3 / 30, -1.0, 15 / 30]  # (ŝ − s) / 30; user 2's x, −2, is clipped
    since = [2 * 3 / 10 - 1]  # 2k/T − 1
    noise = [-1.0, 0.0, 0.6]  # 2(1 − exp(−I/mean)) − 1 at I/mean = 0, ln 2, ln 5
    assert obs.dtype == np.float32
    np.testing.assert_allclose(obs, positions + offsets + since + noise, atol=1e-6)


@pytest.mark.parametrize("kind", ENVS)
def test_observation_clips_and_has_no_noise_term_without_interference(kind: str) -> None:
    config = {**OFF_CENTRE, "interference": 0.0}
    obs = Probe(kind, config).set_slot(POSITIONS, POSITIONS, 25, [0.0, 0.0, 0.0])
    expected = [0.3, 0.2, -0.8, -0.7] + [0.0] * 4 + [1.0] + [-1.0] * 3  # 2·25/10 − 1 → 1
    np.testing.assert_allclose(obs, expected, atol=1e-6)


@pytest.mark.parametrize("kind", ENVS)
def test_paper_observation_is_the_centred_positions(kind: str) -> None:
    config = {**OFF_CENTRE, "observation_mode": "paper"}
    obs = Probe(kind, config).set_slot(POSITIONS, TWIN, 3, INTERFERENCE)
    np.testing.assert_allclose(obs, [0.3, 0.2, -0.8, -0.7], atol=1e-6)


#: B = 2, P = 3, N0 = 1e-3 (B N0 = 2e-3), path loss d^−2, BS at (10, −20).
LINK = {
    "num_users": 2,
    "num_rbs": 2,
    "bs_position": (10.0, -20.0),
    "bandwidth": 2.0,
    "tx_power": 3.0,
    "noise_psd": 1e-3,
    "rayleigh_fading": True,
}


@pytest.mark.parametrize("kind", ENVS)
def test_rates_and_allocation_use_this_slots_rayleigh_fading(kind: str) -> None:
    """User 1 at distance 5 with o = 2: P o d^−2 = 0.24; user 2 at distance 10 with
    o = 0.5: 0.015. Over I + B N0 = 0.002 and 0.006 the SINRs are 120, 40 and 7.5, 2.5."""
    probe = Probe(kind, LINK)
    users = [[13.0, -16.0], [16.0, -28.0]]  # offsets (3, 4) and (6, −8) from the BS
    probe.set_slot(users, users, 0, [0.0, 4e-3], fading=[2.0, 0.5])
    expected = [[2 * math.log2(121), 2 * math.log2(41)], [2 * math.log2(8.5), 2 * math.log2(3.5)]]
    np.testing.assert_allclose(probe.rates(), expected, rtol=1e-12)
    _, _, info = probe.step(0)
    # 121 · 3.5 = 423.5 beats 41 · 8.5 = 348.5: user 1 on RB 0, user 2 on RB 1
    assert info["allocation"].tolist() == [0, 1]
    assert info["sum_rate"] == pytest.approx(2 * math.log2(423.5), rel=1e-12)


@pytest.mark.parametrize("kind", ENVS)
def test_rayleigh_fading_is_drawn_each_slot_with_the_configured_mean(kind: str) -> None:
    probe = Probe(kind, {**LINK, "fading": 2.0})
    draws = []
    for _ in range(3000):
        probe.step(0)
        fading = probe.env._fading if kind == "single" else probe.env.slots.fading[0]
        draws.append(np.array(fading, copy=True))
    draws = np.array(draws)
    assert draws.shape == (3000, 2)
    assert draws.mean() == pytest.approx(2.0, rel=0.05)
    assert draws.std() == pytest.approx(2.0, rel=0.1)  # exponential: sd = mean


#: rb mode with γ = 0.03 on the default link (B = P = 1, N0 = 1e-5, cloud at (20, 20)).
RB_MODE = {"num_users": 2, "num_rbs": 3, "action_mode": "rb", "delay_bound": 0.03}


def cloud_delay(interference: float) -> float:
    """T^C = D / (B log2(1 + P h^C / (I + B N0))), h^C = 1 / |(20, 20)|² = 1/800."""
    return 0.1 / math.log2(1 + (1 / 800) / (interference + 1e-5))


@pytest.mark.parametrize("kind", ENVS)
def test_rb_mode_refuses_an_rb_that_misses_the_delay_bound(kind: str) -> None:
    """A sync on RB 1 (I = 1e-3, T^C ≈ 0.086 > γ) does not happen: the slot plays exactly
    as "no sync" (same score, allocation and next observation), flagged infeasible, and the
    slots-since-sync counter goes on. RB 0 (I = 0, T^C ≈ 0.014) syncs."""
    assert cloud_delay(1e-3) > 0.03 > cloud_delay(0.0)
    probe = Probe(kind, RB_MODE)
    users, twin = [[10.0, 5.0], [-20.0, 30.0]], [[13.0, 5.0], [-20.0, 26.0]]  # gap 9 + 16
    probe.set_slot(users, twin, 2, [0.0, 1e-3, 0.0])
    no_sync = copy.deepcopy(probe)
    synced = copy.deepcopy(probe)

    obs, r, info = probe.step(2)  # RB 1
    obs_0, r_0, info_0 = no_sync.step(0)
    assert not info["synced"] and info["infeasible_sync"] and info["sync_rb"] == -1
    assert not info_0["infeasible_sync"]
    assert info["sync_error"] == pytest.approx(25.0) == info_0["sync_error"]
    assert info["sum_rate"] == info_0["sum_rate"] and r == r_0
    assert info["allocation"].tolist() == info_0["allocation"].tolist()
    assert probe.since_sync == 3 == no_sync.since_sync
    np.testing.assert_array_equal(obs, obs_0)

    _, _, info_s = synced.step(1)  # RB 0
    assert info_s["synced"] and not info_s["infeasible_sync"] and info_s["sync_rb"] == 0
    assert info_s["sync_error"] == 0.0 and 0 not in info_s["allocation"].tolist()
    assert synced.since_sync == 0
