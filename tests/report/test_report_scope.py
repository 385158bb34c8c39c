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
        client.log_metric(run.info.run_id, "eval/return", 1.0)
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


def test_bad_report_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """issue 25 (low): stores that are files or unknown schemes, an unreachable server, an
    --out under a file, a name that leaves reports/, an experiment with no finished run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    for name in ("running", "../../x"):
        run = client.create_run(client.create_experiment(name), tags={"algorithm": "SAC"})
        if name != "running":
            client.set_terminated(run.info.run_id)
    (tmp_path / "file").write_text("x")
    capsys.readouterr()  # MLflow's lines while the store was made
    cases = [
        (["--experiment", "running", "--out", str(tmp_path / "r")],
         "--experiment 'running': no run has finished yet (1 RUNNING)"),
        (["--experiment", "../../x"], "not one folder name, so reports/EXPERIMENT would leave"),
        (["--experiment", "sac", "--tracking-uri", str(tmp_path / "file")],
         "is a file; a file store is a folder"),
        (["--experiment", "sac", "--tracking-uri", f"sqlite:///{tmp_path / 'file'}"],
         "is not a SQLite database"),
        (["--experiment", "sac", "--tracking-uri", "foo://bar"], "unknown scheme foo://"),
        (["--experiment", "sac", "--tracking-uri", "http://127.0.0.1:9"],
         "no MLflow server answers there"),
        (["--experiment", "running", "--out", str(tmp_path / "file" / "r")],
         "is a file, so no folder can be made there"),
    ]  # fmt: skip
    for argv, says in cases:
        full = argv if "--tracking-uri" in argv else [*argv, "--tracking-uri", uri]
        code = report_main(full)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
        assert says in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mlflow.db"]
