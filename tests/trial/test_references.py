"""The references a trial compares with are played once per network and seed range, cached,
and give the trial the same evaluation as playing everything in the trial."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.policies import (
    TRIAL_PERIODS,
    ThresholdFit,
    ThresholdRule,
    baseline_policies,
    reference_policies,
)
from dnt_rllib.scoring import evaluate_policies, run_policy
from dnt_rllib.trial import references as references_module
from dnt_rllib.trial import trainable
from dnt_rllib.trial.references import load_or_play, references_path
from dnt_rllib.trial.spec import EvaluationSpec, TrialSpec


@pytest.fixture
def env(tmp_path: Path) -> DNTSyncEnv:
    return DNTSyncEnv(SystemConfig(twin="hold", num_users=4, num_rbs=3, episode_length=8,
                                   twin_cache_dir=str(tmp_path)))  # fmt: skip


FIT = ThresholdFit(a=2.0, b=0.1, tuning_seeds=(0, 9), tuning_return=0.0, greedy_return=0.0)
SEEDS = range(500, 512)


def refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("played again")


def test_cached_references_are_the_rules_played_in_the_env(
    env: DNTSyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = load_or_play(env, FIT, SEEDS)
    assert references_path(env.config, FIT, SEEDS).is_file()
    by_name = {s.policy: s for s in cached.summaries}
    expected_names = {"never", "always", "greedy", "threshold", "ceiling", "free_sync",
                      *(f"periodic({k})" for k in TRIAL_PERIODS)}  # fmt: skip
    assert set(by_name) == expected_names
    rules = {**baseline_policies([3, 7]), "threshold": ThresholdRule(FIT.a, FIT.b)}
    for name, rule in rules.items():  # stepped in the env, one slot at a time
        played = run_policy(env, rule, name, SEEDS)
        np.testing.assert_allclose(by_name[name].returns, played.returns, rtol=0, atol=1e-9)
        assert by_name[name].infeasible_syncs == played.infeasible_syncs
    ceiling = np.asarray(by_name["ceiling"].returns)
    for name in rules:
        assert np.all(ceiling >= np.asarray(by_name[name].returns) - 1e-9)
    assert all(math.isnan(s.paired_diff) for s in cached.summaries)  # stored uncompared
    assert cached.notes and cached.notes[0].startswith("ceiling: planned − replayed")

    monkeypatch.setattr(references_module, "play_policies", refuse)
    again = load_or_play(env, FIT, SEEDS)  # from the file: nothing played
    assert again == cached
    with pytest.raises(AssertionError, match="played again"):
        load_or_play(env, FIT, range(500, 513))  # other seeds: another entry
    other_rule = ThresholdFit(a=2.5, b=0.1, tuning_seeds=(0, 9), tuning_return=0.0,
                              greedy_return=0.0)  # fmt: skip
    with pytest.raises(AssertionError, match="played again"):
        load_or_play(env, other_rule, SEEDS)  # another rule: another entry
    network = DNTSyncEnv(env.config.replace(epsilon=0.9))
    with pytest.raises(AssertionError, match="played again"):
        load_or_play(network, FIT, SEEDS)  # another network: another entry


def test_a_trials_evaluation_from_the_cache_equals_playing_everything(
    env: DNTSyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = ThresholdRule(0.7, -0.2)  # stands in for the trained module's greedy policy
    monkeypatch.setattr(trainable, "greedy_policy", lambda module: policy)
    spec = TrialSpec.make(env.config, evaluation=EvaluationSpec(episodes=len(SEEDS),
                                                                seed=SEEDS.start))  # fmt: skip
    load_or_play(env, FIT, SEEDS)  # as the driver does before the trial starts
    monkeypatch.setattr(references_module, "play_policies", refuse)
    metrics, record = trainable.evaluate_policy(None, spec, env, FIT)

    everything = evaluate_policies(
        env, {"policy": policy, **reference_policies(env, TRIAL_PERIODS, FIT)}, SEEDS
    ).by_name()
    threshold = np.asarray(everything["threshold"].returns)
    for label in ("policy", "never", "always", "ceiling"):
        s = everything[label]
        prefix = "" if label == "policy" else f"ref/{label}/"  # a reference's: for its run
        assert metrics[f"{prefix}eval/return"] == pytest.approx(s.mean_return, abs=1e-9)
        assert metrics[f"{prefix}eval/share"] == pytest.approx(s.share, abs=1e-9)
        diff = float(np.mean(np.asarray(s.returns) - threshold))
        assert metrics[f"{prefix}eval/diff_threshold"] == pytest.approx(diff, abs=1e-9)
    assert record["summaries"][0]["policy"] == "policy"
