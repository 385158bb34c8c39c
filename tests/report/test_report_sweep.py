"""The sweep's report: one table row per (γ, N, U) point and heatmaps with a row per γ, from a store
of hand-set runs (a sweep plus two extra seeds of its default point, a second Tune
experiment in the same MLflow experiment)."""

from __future__ import annotations

import itertools
from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy import stats

from dnt_rllib.report import load_runs
from dnt_rllib.report import main as report_main
from dnt_rllib.report.figures import _cells
from dnt_rllib.validation import ConfigError
from tests.report.store import log_evaluation

GAMMAS, RBS, USERS = ("0.02", "2.5"), ("4", "6"), ("6", "10")
SWEEP, EXTRA = "/x/ray_results/sweep", "/x/ray_results/sweep_default_seeds"
#: The default point's three seeds: (Δ vs threshold, its CI over episodes, share closed).
DEFAULT = [(-4.0, 0.3, 0.90), (-6.0, 0.4, 0.85), (-2.5, 0.2, 0.95)]


def values(gamma: str, rbs: str, users: str) -> tuple[float, float, float]:
    """A grid point's (Δ vs threshold, its CI, share closed), distinct at every point."""
    i = GAMMAS.index(gamma) * 4 + RBS.index(rbs) * 2 + USERS.index(users)
    return -1.0 + 0.5 * i, 0.1 + 0.01 * i, 0.80 + 0.02 * i


def log_run(client: mlflow.MlflowClient, exp: str, folder: str, seed: int,
            point: tuple[str, str, str], diff: float, ci: float, share: float) -> None:  # fmt: skip
    run = client.create_run(exp, tags={"algorithm": "SAC", "tune_experiment": folder})
    run_id = run.info.run_id
    gamma, rbs, users = point
    params = {"seed": seed, "env.delay_bound": gamma, "env.num_rbs": rbs,
              "env.num_users": users, "env.epsilon": 0.987, "evaluation_episodes": 100}  # fmt: skip
    for key, value in params.items():
        client.log_param(run_id, key, value)
    metrics = {
        "policy/return": 700.0 + diff, "policy/diff_threshold": diff,
        "policy/diff_threshold_ci95": ci, "policy/share": share,
        "policy/sync_fraction": 0.2, "policy/infeasible_syncs": 50,
        "threshold/return": 700.0, "threshold/diff_threshold": 0.0,
        "threshold/share": 0.97, "threshold/sync_fraction": 0.25,
        "threshold/infeasible_syncs": 0,
        "best_periodic/return": 698.0, "best_periodic/diff_threshold": -2.0,
        "best_periodic/best_period": 4, "greedy/return": 695.0,
        "greedy/diff_threshold": -5.0, "ceiling/return": 701.5,
        "ceiling/diff_threshold": 1.5, "never/return": 640.0,
    }  # fmt: skip
    log_evaluation(client, run_id, metrics)
    client.set_terminated(run_id)


def write_store(uri: str) -> None:
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("sweep")
    for point in itertools.product(GAMMAS, RBS, USERS):
        diff, ci, share = DEFAULT[0] if point == ("2.5", "6", "10") else values(*point)
        log_run(client, exp, SWEEP, 0, point, diff, ci, share)
    for seed, (diff, ci, share) in enumerate(DEFAULT[1:], 1):
        log_run(client, exp, EXTRA, seed, ("2.5", "6", "10"), diff, ci, share)


def test_one_row_per_grid_point_and_a_heatmap_row_per_gamma(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri)
    out = tmp_path / "report"
    args = ["--experiment", "sweep", "--tracking-uri", uri, "--out", str(out),
            "--tune-experiment", SWEEP, "--tune-experiment", EXTRA]  # fmt: skip
    assert report_main(args) == 0
    assert (out / "sweep_heatmaps.png").stat().st_size > 10_000  # a row per γ
    text = (out / "results.md").read_text()
    grid = text.split("## Grid points", 1)[1].split("## Every policy", 1)[0]
    rows = [line for line in grid.splitlines() if line.startswith("| ") and "SAC" in line]
    assert len(rows) == 8
    assert "| γ | N | U | algorithm | seeds |" in grid
    for point in itertools.product(GAMMAS, RBS, USERS):
        (row,) = [r for r in rows if r.startswith(f"| {' | '.join(point)} | SAC |")]
        if point == ("2.5", "6", "10"):
            diffs = [d for d, _, _ in DEFAULT]
            half = stats.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
            share = 100 * np.mean([s for _, _, s in DEFAULT])
            assert "| SAC | 3 |" in row and f"| {np.mean(diffs):+.2f} ± {half:.2f} |" in row
        else:
            diff, ci, share = values(*point)
            share *= 100
            assert "| SAC | 1 |" in row and f"| {diff:+.2f} ± {ci:.2f} (ep.) |" in row
        assert f"| {share:.1f} / 97.0 % | 0.200 / 0.250 | 0.50 / 0.00 | 700.00 |" in row
        assert row.endswith("| k = 4, -2.00 | -5.00 | +1.50 |")


def test_heatmap_cells_are_means_over_seeds(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri)
    runs = load_runs(mlflow.MlflowClient(uri), "sweep", [SWEEP, EXTRA])
    chosen = [r for r in runs if r.params["env.delay_bound"] == "2.5"]
    mean, ci, count = _cells(chosen, list(RBS), list(USERS),
                             lambda r: r.final("policy", "diff_threshold"))  # fmt: skip
    assert count.tolist() == [[1, 1], [1, 3]]
    assert mean[1, 1] == pytest.approx(np.mean([d for d, _, _ in DEFAULT]))
    assert mean[0, 1] == pytest.approx(values("2.5", "4", "10")[0])
    assert np.isnan(ci[0, 0]) and ci[1, 1] > 0


def test_pooling_needs_every_folder_named(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri)
    client = mlflow.MlflowClient(uri)
    with pytest.raises(ConfigError, match="2 Tune experiments"):
        load_runs(client, "sweep")
    assert len(load_runs(client, "sweep", SWEEP)) == 8
    with pytest.raises(ConfigError, match="/x/ray_results/other: no run"):
        load_runs(client, "sweep", [SWEEP, "/x/ray_results/other"])
