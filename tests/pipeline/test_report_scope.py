"""A report covers one Tune experiment: runs of the same MLflow experiment name written under
another storage path are never merged into it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from dnt_rllib.report import load_runs
from dnt_rllib.report import main as report_main
from dnt_rllib.validation import ConfigError


def store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("sac")
    for folder in ("/a/ray_results/sac", "/b/ray_results/sac"):
        run = client.create_run(exp, tags={"algorithm": "SAC", "tune_experiment": folder})
        client.log_param(run.info.run_id, "seed", "0")
        client.log_metric(run.info.run_id, "eval/policy/mean_return", 1.0)
        client.set_terminated(run.info.run_id)
    return uri


def test_runs_of_two_tune_experiments_are_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = store(tmp_path)
    client = mlflow.MlflowClient(uri)
    with pytest.raises(ConfigError, match=r"2 Tune experiments .*--tune-experiment"):
        load_runs(client, "sac")
    runs = load_runs(client, "sac", "/a/ray_results/sac")
    assert len(runs) == 1
    code = report_main(["--experiment", "sac", "--tracking-uri", uri, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert "--tune-experiment" in errors[0]
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="no run of MLflow experiment 'sac' comes from it"):
        load_runs(client, "sac", "/c/ray_results/sac")
