"""``tune --plan``: a sweep's trials, rounds, wall and CPU time, computed by hand here."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnt_rllib.experiment.schema import load_experiment, parse_experiment
from dnt_rllib.tune import main
from dnt_rllib.tuning.plan import DRIVER_START_S, MEASURED, make_plan, trial_count
from dnt_rllib.twin.cache import cache_path
from dnt_rllib.validation import ConfigError

ROOT = Path(__file__).parents[2]
PAPER = MEASURED[0]  # U = 10, N = 6
#: A trial of ``sweep()`` beyond its 300 s: its start, then its policy on 100 evaluation
#: episodes and 20 curve episodes every 10 iterations: 300 s / (1.0 s × 10) = 30 points.
OVERHEAD = PAPER.trial_start_s + PAPER.policy_episode_s * (100 + 20 * 30)


def sweep(tmp_path: Path, **changes: object) -> dict:
    raw = {
        "algorithm": "SAC",
        "env": {"twin_cache_dir": str(tmp_path / "cache")},
        "search_space": {"seed": {"grid": [0, 1, 2, 3, 4]}},
        "stop": {"time_total_s": 300},
        "resources": {"num_env_runners": 0},
        "evaluation": {"episodes": 100, "curve_episodes": 20},
    }
    raw.update(changes)
    return raw


def test_the_shipped_sweeps_count_their_grids() -> None:
    assert trial_count(load_experiment(ROOT / "tune_configs" / "sweep.yaml")) == 4 * 2 * 2
    assert trial_count(load_experiment(ROOT / "tune_configs" / "sweep_cell.yaml")) == 16 * 3


def test_five_trials_on_two_nodes_of_two_cpus(tmp_path: Path) -> None:
    plan = make_plan(parse_experiment(sweep(tmp_path)), nodes=2, cpus=2)
    assert (plan.trials, plan.at_once, plan.rounds) == (5, 4, 2)
    trial = 300 + OVERHEAD
    # one network, nothing cached: the twin, then one fit and the curve references (20
    # episodes) as one wave of tasks; the 100 evaluation episodes' references beside the
    # first round (4 trials on 4 CPUs: none free, so before it)
    before = DRIVER_START_S + PAPER.twin_s + PAPER.fit_s + 20 * PAPER.reference_episode_s
    before += 100 * PAPER.reference_episode_s
    assert plan.wall_s == pytest.approx(before + 2 * trial)
    cpu = PAPER.twin_s + PAPER.fit_s + 120 * PAPER.reference_episode_s + 5 * trial
    assert plan.cpu_h == pytest.approx(cpu / 3600)


def test_a_free_cpu_plays_the_evaluation_references_beside_the_trials(tmp_path: Path) -> None:
    plan = make_plan(parse_experiment(sweep(tmp_path)), nodes=1, cpus=8)
    assert (plan.at_once, plan.rounds, plan.busy_nodes) == (8, 1, 1)
    before = DRIVER_START_S + PAPER.twin_s + PAPER.fit_s + 20 * PAPER.reference_episode_s
    assert plan.wall_s == pytest.approx(before + 300 + OVERHEAD)


def test_max_concurrent_trials_and_a_cached_twin(tmp_path: Path) -> None:
    exp = parse_experiment(sweep(tmp_path, resources={"max_concurrent_trials": 2}))
    path = cache_path(exp.env)
    path.parent.mkdir(parents=True)
    path.touch()  # the twin is in this machine's cache
    plan = make_plan(exp, nodes=4, cpus=16)
    assert (plan.at_once, plan.bound, plan.rounds) == (2, "resources.max_concurrent_trials", 3)
    twin = next(p for p in plan.parts if "twin" in p.what)
    assert (twin.count, twin.wall_s, twin.note) == (0, 0.0, "cached here")


def test_the_nearest_measured_size_prices_a_big_cell(tmp_path: Path) -> None:
    raw = sweep(tmp_path, env={"num_users": 200, "num_rbs": 100,
                               "twin_cache_dir": str(tmp_path / "cache")})  # fmt: skip
    plan = make_plan(parse_experiment(raw), nodes=8, cpus=16)
    trials = next(p for p in plan.parts if p.what.startswith("trials"))
    big = MEASURED[1]  # 300 s / (1.09 s × 10 iterations) = 27.5: 27 curve points of 20
    assert trials.each_s == pytest.approx(
        300 + big.trial_start_s + big.policy_episode_s * (100 + 20 * 27)
    )
    assert plan.sources == [MEASURED[1].source]


def test_a_plan_needs_a_time_budget_and_room_for_a_trial(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^experiment\.stop: --plan needs .*time_total_s"):
        make_plan(parse_experiment(sweep(tmp_path, stop={"training_iteration": 9})), 1, 4)
    exp = parse_experiment(sweep(tmp_path, resources={"num_env_runners": 2}))
    with pytest.raises(ConfigError, match=r"^--cpus 2: a trial needs 3 CPUs"):
        make_plan(exp, 1, 2)


def test_tune_plan_prints_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = ROOT / "tune_configs" / "sweep.yaml"
    assert main(["--config", str(config), "--plan", "--nodes", "8", "--cpus", "16"]) == 0
    out = capsys.readouterr().out
    assert "16 trials, 128 at a time (8 node(s) × 16): 1 round(s)" in out
    assert "| **the sweep** |" in out and "instance-hours" in out
    assert list(tmp_path.iterdir()) == []  # no results, no MLflow store, no twin
    assert main(["--config", str(config), "--plan", "--nodes", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --nodes = 0: must be an integer in [1, 10000]"
