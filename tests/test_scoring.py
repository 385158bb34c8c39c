"""The evaluation's statistics against independent computations, and the evaluate CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.evaluate import main as evaluate_main
from dnt_rllib.policies import baseline_policies
from dnt_rllib.scoring import (
    Summary,
    ceiling_warnings,
    check_seeds,
    compare,
    difference_ci95,
    format_table,
    mean_ci95,
    paired,
    run_policy,
    summary_of,
)
from dnt_rllib.validation import ConfigError


def test_mean_ci95_is_the_t_interval_of_the_mean() -> None:
    values = [3.0, 5.0, 4.0, 8.0]  # mean 5, sample sd sqrt(14/3), t(0.975, 3) = 3.182446
    mean, half = mean_ci95(values)
    assert mean == 5.0
    assert half == pytest.approx(3.182446305 * math.sqrt(14 / 3) / 2, rel=1e-8)
    assert math.isnan(mean_ci95([1.0])[1])


def test_paired_difference_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(700, 100, 50)  # a large common swing, a small real difference
    a, b = base + rng.normal(2.0, 1.0, 50), base + rng.normal(0.0, 1.0, 50)
    diff, half = paired(a, b)
    low, high = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert diff == pytest.approx((low + high) / 2, rel=1e-10)
    assert half == pytest.approx((high - low) / 2, rel=1e-10)
    assert half < 0.05 * mean_ci95(a)[1]  # pairing removes the common swing
    with pytest.raises(ValueError, match="same episodes"):
        paired(a, b[:-1])


def test_difference_ci95_is_welchs_interval() -> None:
    a, b = [1.0, 2.5, 2.0, 3.1], [0.2, 0.9, 0.4]
    diff, half = difference_ci95(a, b)
    low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (diff, half) == (pytest.approx((low + high) / 2), pytest.approx((high - low) / 2))


def test_compare_fills_paired_differences_and_shares() -> None:
    # never 10, threshold 20, ceiling 30 on 3 episodes: shares 0, 0.5, 1; reference = threshold
    summaries = [
        summary_of("never", [9.0, 10.0, 11.0], 1.0, 5.0, 0.0),
        summary_of("threshold", [19.0, 21.0, 20.0], 1.0, 1.0, 0.2),
        summary_of("ceiling", [29.0, 31.0, 30.0], 1.0, 1.0, 0.2),
        summary_of("SAC (seed 0)", [24.0, 26.0, 25.0], 1.0, 1.0, 0.2),
    ]
    out, reference = compare(summaries)
    assert reference == "threshold"  # the best rule; ceiling is a bound, SAC is learned
    by = {s.policy: s for s in out}
    assert [by[n].share for n in ("never", "threshold", "ceiling")] == [0.0, 0.5, 1.0]
    assert by["SAC (seed 0)"].share == pytest.approx(0.75)
    assert by["SAC (seed 0)"].paired_diff == pytest.approx(5.0)
    assert by["SAC (seed 0)"].paired_ci95 == pytest.approx(0.0, abs=1e-12)
    assert by["never"].paired_diff == pytest.approx(-10.0)
    out, reference = compare(summaries, reference="never")
    assert reference == "never" and out[1].paired_diff == pytest.approx(10.0)
    table = format_table(out, reference)
    assert "Δ vs never" in table and "| +10.00 ± " in table and "50.0 %" in table


def test_run_policy_keeps_each_episode_and_the_per_slot_means() -> None:
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=4))
    summary = run_policy(env, baseline_policies([2])["periodic(2)"], "p", [7, 8])
    returns, rates, syncs = [], [], 0
    for seed in (7, 8):
        env.reset(seed=seed)
        total = 0.0
        for t in range(4):
            _, r, _, _, info = env.step(1 if t % 2 == 1 else 0)
            total += r
            rates.append(info["sum_rate"])
            syncs += info["synced"]
        returns.append(total)
    assert summary.returns == tuple(returns)
    assert summary.sum_rate == pytest.approx(np.mean(rates))  # per slot, not per episode
    assert summary.sync_fraction == syncs / 8 == 0.5
    assert summary.infeasible_syncs == 0


def test_evaluate_cli_writes_paired_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(f"twin: hold\nepisode_length: 6\ntwin_cache_dir: {tmp_path / 'cache'}\n")
    out = tmp_path / "out.json"
    code = evaluate_main(["--config", str(net), "--episodes", "5", "--seed", "3",
                          "--periods", "2-3", "--json", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "threshold rule: a = " in printed and "ceiling: planned − replayed" in printed
    payload = json.loads(out.read_text())
    by = {s["policy"]: s for s in payload["summaries"]}
    assert list(by) == ["never", "always", "periodic(2)", "periodic(3)", "greedy", "threshold",
                        "ceiling", "free_sync"]  # fmt: skip
    rules = [n for n in by if n not in ("ceiling", "free_sync")]
    assert payload["reference"] == max(rules, key=lambda n: by[n]["mean_return"])
    ref = by[payload["reference"]]["returns"]
    for s in by.values():
        assert len(s["returns"]) == 5
        assert s["mean_return"] == pytest.approx(np.mean(s["returns"]))
        assert s["paired_diff"] == pytest.approx(np.mean(np.subtract(s["returns"], ref)))
    never, ceiling = by["never"]["mean_return"], by["ceiling"]["mean_return"]
    for s in by.values():
        assert s["share"] == pytest.approx((s["mean_return"] - never) / (ceiling - never))
    assert all(c >= t - 1e-9 for c, t in zip(by["ceiling"]["returns"], by["threshold"]["returns"],
                                              strict=True))  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["--episodes", "1"], "--episodes = 1: must be an integer in [2, 100000]"),
        (["--seed", "-1"], "--seed = -1: must be an integer >= 0"),
        (["--seed", "899990", "--episodes", "20"], "overlap the tuning episodes"),
        (["--periods", "1-3"], "--periods = '1-3': periods must be integers >= 2"),
        (["--lookahead", "-2"], "--lookahead = -2: must be an integer in [0, 256]"),
        (["--reference", "oracle"], "--reference 'oracle': must be one of"),
        (["--config", "missing.yaml"], "missing.yaml"),
    ],
)
def test_evaluate_cli_refuses_bad_input_in_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    if args[0] == "--reference":  # a cheap network, so that only the reference is wrong
        (tmp_path / "net.yaml").write_text("twin: hold\nepisode_length: 3\n")
        args = [*args, "--config", "net.yaml", "--episodes", "2"]
    assert evaluate_main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_a_ceiling_below_another_policy_is_flagged() -> None:
    """The replayed DP schedule must top every other policy (free_sync is a looser bound
    and does not count); otherwise the evaluation says it is no ceiling."""

    def made(name: str, returns: list[float]) -> Summary:
        return summary_of(name, returns, 1.0, 0.0, 0.5)

    fine = [made("threshold", [10.0, 12.0]), made("ceiling", [11.0, 12.0]),
            made("free_sync", [20.0, 20.0])]  # fmt: skip
    assert ceiling_warnings(fine) == []
    broken = [made("threshold", [10.0, 12.0]), made("ceiling", [9.0, 10.0]),
              made("never", [1.0, 2.0])]  # fmt: skip
    (warning,) = ceiling_warnings(broken)
    assert warning.startswith("WARNING: ceiling (9.50) is below threshold (11.00)")


def test_the_default_reference_can_be_a_periodic_rule() -> None:
    """periodic(3) has the best mean of the rules (25 > threshold 22 > greedy 20 > never 10);
    ceiling and free_sync are bounds and SAC is learned, so periodic(3) is the reference and
    SAC's paired difference is 28 − 25 = 3 on every episode."""
    made = [
        summary_of("never", [9.0, 11.0], 1.0, 5.0, 0.0),
        summary_of("greedy", [19.0, 21.0], 1.0, 1.0, 0.2),
        summary_of("periodic(3)", [24.0, 26.0], 1.0, 1.0, 0.33),
        summary_of("threshold", [21.0, 23.0], 1.0, 1.0, 0.2),
        summary_of("ceiling", [29.0, 31.0], 1.0, 1.0, 0.2),
        summary_of("free_sync", [39.0, 41.0], 1.0, 0.0, 1.0),
        summary_of("SAC (seed 0)", [27.0, 29.0], 1.0, 1.0, 0.2),
    ]
    out, reference = compare(made)
    assert reference == "periodic(3)"
    assert {s.policy: s.paired_diff for s in out}["SAC (seed 0)"] == pytest.approx(3.0)


#: The tuning seeds written out: 900,000 … 900,299.
TUNING = set(range(900_000, 900_300))


@pytest.mark.parametrize(
    ("first", "count"),
    [
        (900_100, 20),  # starts inside
        (900_010, 5),  # lies inside
        (900_299, 3),  # starts at the last
        (899_990, 11),  # ends at the first
        (899_000, 2_000),  # holds them all
        (899_980, 20),  # ends just before
        (900_300, 50),  # starts just after
        (0, 1_000),
    ],
)
def test_seed_ranges_that_share_a_seed_with_the_tuning_episodes_are_refused(
    first: int, count: int
) -> None:
    """Refused iff some evaluation seed is a tuning seed, checked seed by seed."""
    seeds = range(first, first + count)
    if any(seed in TUNING for seed in seeds):
        with pytest.raises(ConfigError, match="overlap the tuning episodes"):
            check_seeds(seeds)
    else:
        check_seeds(seeds)
