"""The baselines on the default network: neither extreme is best (SPEC)."""

import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.baselines import baseline_policies
from dnt_rllib.evaluation import best_periodic, run_policy


@pytest.fixture(scope="module")
def summaries() -> dict:
    env = DNTSyncEnv(SystemConfig(twin="hold"))
    policies = baseline_policies(range(2, 9))
    return {n: run_policy(env, p, n, range(100, 300)) for n, p in policies.items()}


def test_sync_fractions_are_what_the_policies_say(summaries: dict) -> None:
    assert summaries["never"].sync_fraction == 0.0
    assert summaries["always"].sync_fraction == 1.0
    assert summaries["periodic(3)"].sync_fraction == pytest.approx(1 / 3, abs=0.01)
    assert summaries["always"].sync_gap == 0.0
    assert 0.0 < summaries["greedy"].sync_fraction < 1.0


def test_best_periodic_and_greedy_beat_both_extremes(summaries: dict) -> None:
    best = best_periodic(summaries.values())
    extremes = [summaries["never"], summaries["always"]]
    for policy in (best, summaries["greedy"]):
        for other in extremes:
            assert policy.mean_return - policy.ci95 > other.mean_return + other.ci95, (
                policy.policy,
                other.policy,
            )
