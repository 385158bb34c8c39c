"""`DNTSyncVectorEnv` returns what gymnasium's SyncVectorEnv over `DNTSyncEnv` returns."""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest

import dnt_rllib
from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.rllib_ext.rllib_env import EPISODE_METRICS, RLlibDNTEnv
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
    """Uniformly random actions over the whole action space (sync RBs too in rb mode)."""
    rng = np.random.default_rng(seed)
    out = [env.reset(seed=seed)]
    for _ in range(steps):
        out.append(env.step(rng.integers(0, env.single_action_space.n, env.num_envs)))
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


#: Options that change what a slot draws or decides; γ = 0.03 refuses about a quarter of
#: the RBs on the default network (I^max ≈ 1.28 × the mean interference).
VARIANTS = {
    "binary": {},
    "rb": {"action_mode": "rb"},
    "rayleigh": {"rayleigh_fading": True},
    "binding-gamma": {"delay_bound": 0.03},
    "rb-gamma-rayleigh": {"action_mode": "rb", "delay_bound": 0.03, "rayleigh_fading": True},
    "no-interference": {"interference": 0.0},
    # the memory options: their state (loud RBs, velocities) lives in the env and draws in
    # the same order; γ = 0.03 refuses the loud level (I^max ≈ 1.28 × the mean I, between
    # I_quiet = I / 2.8 and I_loud = 10 I / 2.8) but never the quiet one
    "markov": {"interference_model": "markov"},
    "gauss-markov": {"mobility_model": "gauss_markov"},
    "rb-gamma-markov-gauss-markov-rayleigh": {
        "action_mode": "rb", "delay_bound": 0.03, "rayleigh_fading": True,
        "interference_model": "markov", "mobility_model": "gauss_markov",
    },
    # what the BS remembers (requests, true states; infeasible requests at γ = 0.03), and
    # the last k observations stacked
    "memory": {"observation_mode": "memory"},
    # the compact observations (statistics over users and RBs, with the memory flags)
    "compact-memory-gamma": {"observation_mode": "compact_memory", "delay_bound": 0.03},
    "rb-gamma-memory-gauss-markov-stack3": {
        "action_mode": "rb", "delay_bound": 0.03, "observation_mode": "memory",
        "mobility_model": "gauss_markov", "frame_stack": 3,
    },
}  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("twin", "tol"), [("hold", 0.0), ("gru", 1e-5)])
def test_a_batch_of_one_plays_the_single_env(twin: str, tol: float, variant: str) -> None:
    """Same observations, rewards, flags and infos as gymnasium's SyncVectorEnv over one
    `DNTSyncEnv` (whose code is separate), across auto-resets: bit for bit with the
    hold-last twin; with the GRU to the float32 rounding the twin keeps against torch."""
    config = SystemConfig.from_dict({**SMALL, "twin": "hold", **VARIANTS[variant]})
    predictor = random_gru(config) if twin == "gru" else None
    ours = DNTSyncVectorEnv(1, config, twin=predictor)
    reference = gym.vector.SyncVectorEnv([lambda: DNTSyncEnv(config, twin=predictor)])
    assert ours.single_observation_space == reference.single_observation_space
    assert ours.single_action_space == reference.single_action_space
    got, expected = rollout(ours, 3, 40), rollout(reference, 3, 40)
    # episodes did end (truncated, or terminated where the slots left are observed)
    assert any(step[2].any() or step[3].any() for step in got[1:])
    infos = [step[4] for step in got[1:] if step[4]]
    assert any(info["synced"].any() for info in infos)
    if config.action_mode == "rb" and config.delay_bound < 1:  # the bound refused some RBs
        assert any(info["infeasible_sync"].any() for info in infos)
    assert_same(got, expected, tol)


def paper_rates(cfg: SystemConfig, positions: np.ndarray, interference: np.ndarray) -> list:
    """Eq. (2) user by user and RB by RB: B log2(1 + P o d^−a / (I_n + B N0))."""
    bs_x, bs_y = cfg.bs_position
    rates = []
    for x, y in positions:
        d = max(math.hypot(x - bs_x, y - bs_y), cfg.min_distance)
        h = cfg.fading * d ** (-cfg.pathloss_exponent)
        sinrs = [cfg.tx_power * h / (i + cfg.bandwidth * cfg.noise_psd) for i in interference]
        rates.append([cfg.bandwidth * math.log2(1 + sinr) for sinr in sinrs])
    return rates


def paper_sync_delays(cfg: SystemConfig, interference: np.ndarray) -> list[float]:
    """T^C_n = D / c^C_n with eq. (3)'s cloud rate, the cloud at distance |l^C − l^N|."""
    (bx, by), (cx, cy) = cfg.bs_position, cfg.cloud_position
    h = cfg.fading * max(math.hypot(cx - bx, cy - by), cfg.min_distance) ** (-cfg.pathloss_exponent)
    return [
        cfg.data_size
        / (cfg.bandwidth * math.log2(1 + cfg.tx_power * h / (i + cfg.bandwidth * cfg.noise_psd)))
        for i in interference
    ]


def best_assignment(rates: list, blocked: int) -> tuple[list[int], float]:
    """Eqs. (14)/(16) by brute force: every injective map of users to open RBs (users left
    over when RBs run out get none, −1)."""
    users, rbs = len(rates), len(rates[0])
    open_rbs = [n for n in range(rbs) if n != blocked]
    best: tuple[float, list[int]] = (-1.0, [])
    for chosen in itertools.permutations(range(users), min(users, len(open_rbs))):
        for rbs_ in itertools.permutations(open_rbs, len(chosen)):
            total = sum(rates[u][n] for u, n in zip(chosen, rbs_, strict=True))
            if total > best[0]:
                allocation = [-1] * users
                for u, n in zip(chosen, rbs_, strict=True):
                    allocation[u] = n
                best = (total, allocation)
    return best[1], best[0]


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
def test_every_env_of_a_batch_follows_its_own_physics(action_mode: str) -> None:
    """Each stepped env's info against the paper's equations written out here from its own
    positions, interference and twin state: eq. (2) rates, eq. (3) delays and the sync RB
    R = the slowest RB with T^C ≤ γ (5e) or the chosen RB if it meets γ, the brute-force
    best assignment (14)/(16), and the reward (15)/(17). At B = 2, P = 3 (so that a formula
    that drops either still fails) γ = 0.01 refuses about a third of the RBs."""
    link = {"bandwidth": 2.0, "tx_power": 3.0, "delay_bound": 0.01}
    cfg = SystemConfig.from_dict({**SMALL, **link, "twin": "hold", "action_mode": action_mode})
    envs = DNTSyncVectorEnv(4, cfg)
    rng = np.random.default_rng(1)
    envs.reset(seed=2)
    checked, refused = 0, 0
    for _ in range(24):
        actions = rng.integers(0, envs.single_action_space.n, 4)
        _, rewards, _, _, info = envs.step(actions)
        for i in np.flatnonzero(info.get("_sum_rate", [])):
            positions, interference = info["user_positions"][i], info["interference"][i]
            delays = paper_sync_delays(cfg, interference)
            feasible = [n for n, t in enumerate(delays) if t <= cfg.delay_bound]
            if actions[i] == 0:
                rb = -1
            elif action_mode == "binary":
                rb = max(feasible, key=lambda n: delays[n]) if feasible else -1
            else:
                rb = int(actions[i] - 1) if actions[i] - 1 in feasible else -1
            refused += bool(actions[i]) and rb == -1
            allocation, sum_rate = best_assignment(paper_rates(cfg, positions, interference), rb)
            gap = float(((positions - info["twin_positions"][i]) ** 2).sum())
            assert info["sync_rb"][i] == rb and info["synced"][i] == (rb != -1)
            assert info["infeasible_sync"][i] == (actions[i] != 0 and rb == -1)
            assert info["allocation"][i].tolist() == allocation
            assert info["sum_rate"][i] == pytest.approx(sum_rate, rel=1e-12)
            assert info["sync_error"][i] == pytest.approx(gap, rel=1e-12)
            eps = cfg.epsilon
            assert rewards[i] == pytest.approx(eps * sum_rate - (1 - eps) / cfg.num_users * gap)
            checked += 1
    assert checked > 80  # 24 steps × 4 envs, less the reset steps
    assert refused > 0  # the bound did refuse syncs
    assert len({row.tobytes() for row in envs.reset(seed=5)[0]}) == 4  # envs differ


def test_make_vec_uses_it() -> None:
    envs = gym.make_vec(dnt_rllib.ENV_ID, num_envs=3, config={"twin": "hold"})
    assert isinstance(envs.unwrapped, DNTSyncVectorEnv) and envs.num_envs == 3


def test_rllib_env_seeds_never_collide() -> None:
    """The runner's env reset with seed s draws from (trial seed, s): distinct streams."""
    config = {**SMALL, "twin": "hold", "seed": 7, "num_envs": 3}
    first = [RLlibDNTEnv(config).reset(seed=s)[0] for s in (7, 8)]  # runners 0 and 1
    observations = np.concatenate(first)
    assert len({row.tobytes() for row in observations}) == 6
    again = RLlibDNTEnv(config).reset(seed=7)[0]
    np.testing.assert_array_equal(again, first[0])
    other_trial = RLlibDNTEnv({**config, "seed": 8}).reset(seed=8)[0]
    assert not np.array_equal(other_trial, first[1])


def test_rllib_env_reports_each_episode_means_at_its_end() -> None:
    """The last step's info of each episode holds the means of that episode's per-step
    infos (from the plain vector env on the same seeds); every other step's info is empty."""
    config = {**SMALL, "twin": "hold"}
    ours, full = RLlibDNTEnv({**config, "num_envs": 3}), DNTSyncVectorEnv(3, config)
    for envs in (ours, full):  # the same draws in both
        envs.slots.rng = np.random.default_rng(11)
        envs.reset()
    slots: list[list[dict]] = [[], [], []]
    rng, ended = np.random.default_rng(0), 0
    for _ in range(32):
        actions = rng.integers(0, 2, 3)
        truncated, info = ours.step(actions)[3:]
        full_info = full.step(actions)[4]
        if not truncated.any():
            assert info == {}
        for i in range(3):
            if full_info and full_info["_sum_rate"][i]:
                slots[i].append({key: full_info[key][i] for key in full_info})
            if not truncated[i]:
                assert not (info and info["_sum_rate"][i])
                continue
            expected = {
                "sum_rate": np.mean([s["sum_rate"] for s in slots[i]]),
                "sync_gap": np.mean([s["sync_error"] for s in slots[i]]),
                "sync_fraction": np.mean([s["synced"] for s in slots[i]]),
                "infeasible_syncs": sum(s["infeasible_sync"] for s in slots[i]),
            }
            assert len(slots[i]) == SMALL["episode_length"]
            for key in EPISODE_METRICS:
                assert info[f"_{key}"][i]
                assert info[key][i] == pytest.approx(expected[key])
            slots[i], ended = [], ended + 1
    assert ended == 12  # per env: 4 × (7 slots + the reset step) = 32 steps
