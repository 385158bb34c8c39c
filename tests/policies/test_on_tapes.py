"""The rules an evaluation plays on tapes give what stepping them in the env gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.policies import CeilingPolicy, ThresholdRule, baseline_policies
from dnt_rllib.scoring import evaluate_policies, run_policy

NETWORKS = {
    "paper": {},
    "rb-actions": {"action_mode": "rb"},
    # γ so tight that many slots have no RB for a sync: always/periodic ask in vain there
    "markov-tight-gamma": {"interference_model": "markov", "delay_bound": 0.02},
    "gauss-markov-rayleigh": {"mobility_model": "gauss_markov", "rayleigh_fading": True},
    "rb-actions-tight-gamma": {"action_mode": "rb", "delay_bound": 0.02},
}


def rules() -> dict:
    # "eager" asks for every sync an RB can carry: never in vain, unlike always
    return {**baseline_policies([2, 3, 5]), "threshold": ThresholdRule(2.5, 0.3),
            "eager": ThresholdRule(1.0, -1e6)}  # fmt: skip


def assert_same_as_the_env(env: DNTSyncEnv, seeds: range, atol: float) -> dict:
    batched = evaluate_policies(env, rules(), seeds).by_name()
    for name, policy in rules().items():
        stepped = run_policy(env, policy, name, seeds)
        got = batched[name]
        np.testing.assert_allclose(got.returns, stepped.returns, rtol=0, atol=atol, err_msg=name)
        assert got.sync_fraction == stepped.sync_fraction, name
        assert got.infeasible_syncs == stepped.infeasible_syncs, name
        assert got.sum_rate == pytest.approx(stepped.sum_rate, rel=1e-12, abs=atol), name
        assert got.sync_gap == pytest.approx(stepped.sync_gap, rel=1e-9, abs=atol), name
    return batched


@pytest.mark.parametrize("network", list(NETWORKS))
def test_rules_on_tapes_play_as_in_the_env(network: str) -> None:
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=12, **NETWORKS[network]))
    batched = assert_same_as_the_env(env, range(30, 46), atol=1e-9)
    if "tight" in network:  # the case the counters of syncs asked for in vain must get right
        assert batched["always"].infeasible_syncs > 0
        assert batched["periodic(3)"].infeasible_syncs > 0
    assert batched["eager"].infeasible_syncs == batched["greedy"].infeasible_syncs == 0


def test_rules_on_tapes_with_the_gru_twin(tmp_path: Path) -> None:
    cfg = SystemConfig(num_users=4, num_rbs=3, gru_hidden=16, twin_trajectories=60,
                       twin_max_epochs=2, twin_cache_dir=str(tmp_path))  # fmt: skip
    # the float32 twin's rounding differs with the batch size, by ~1e-6 of a return
    assert_same_as_the_env(DNTSyncEnv(cfg), range(12), atol=1e-4)


def test_the_ceiling_planned_from_the_shared_tapes_replays_its_plan() -> None:
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=10, action_mode="rb"))
    seeds = range(5)
    result = evaluate_policies(env, {"ceiling": CeilingPolicy(env), **rules()}, seeds)
    by_name = result.by_name()
    alone = CeilingPolicy(env)  # each episode recorded and planned on its own
    assert by_name["ceiling"].returns == run_policy(env, alone, "ceiling", seeds).returns
    assert "largest |·| 0.0000" in result.notes[0]
    best = max(by_name[n].mean_return for n in rules())
    assert by_name["ceiling"].mean_return >= best
