"""End to end: the real CLI runs Tune with RLlib SAC and DQN and tracks trials in MLflow."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from dnt_rllib.names import (
    FIGURES_ARTIFACTS,
    PARENT_RUN_TAG,
    PARENT_TAG,
    REFERENCE_RUNS,
    REFERENCE_TAG,
    RESULTS_ARTIFACT,
)
from tests.conftest import SMOKE, SmokeRun, run_tune

pytestmark = pytest.mark.e2e


def runs_of(cwd: Path, experiment: str) -> tuple[mlflow.MlflowClient, list]:
    """The experiment's trained runs (not its reference policies' runs)."""
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id])
    return client, [r for r in runs if "algorithm" in r.data.tags]


def references_of(client: mlflow.MlflowClient, experiment: str) -> list[str]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return sorted(r.data.tags[REFERENCE_TAG] for r in runs if REFERENCE_TAG in r.data.tags)


def test_smoke_runs_sac_and_dqn_into_mlflow(smoke_run: SmokeRun) -> None:
    proc, tmp_path = smoke_run.proc, smoke_run.cwd
    client, runs = runs_of(tmp_path, "smoke")
    assert sorted(r.data.tags["algorithm"] for r in runs) == ["DQN", "SAC"]
    assert references_of(client, "smoke") == sorted(REFERENCE_RUNS)  # one network: once
    for run in runs:
        assert run.info.status == "FINISHED"
        # Tune's "total time (s)" counts the training seconds, as the budget does
        total = client.get_metric_history(run.info.run_id, "time_total_s")
        trained = client.get_metric_history(run.info.run_id, "wall_time_s")
        assert max(m.value for m in total) == pytest.approx(max(m.value for m in trained))
        assert run.data.params["algorithm"] == run.data.tags["algorithm"]
        assert run.data.params["env.epsilon"] == "0.987"
        assert run.data.tags["git_commit"] and run.data.tags["config_file"].endswith("smoke.yaml")
        history = client.get_metric_history(run.info.run_id, "episode_return_mean")
        assert sorted(m.step for m in history) == [1, 2, 3]
        # the env's episode-end infos reached the callback: real rates and sync fractions
        rates = [m.value for m in client.get_metric_history(run.info.run_id, "sum_rate")]
        assert any(math.isfinite(v) and v > 0 for v in rates)
        fractions = [m.value for m in client.get_metric_history(run.info.run_id, "sync_fraction")]
        assert all(0 <= v <= 1 for v in fractions if math.isfinite(v))
        assert "eval/return" in run.data.metrics
        assert "ref/greedy/eval/return" not in run.data.metrics
        assert Path(run.data.tags["best_checkpoint"]).is_dir()
        assert (Path(run.data.tags["best_checkpoint"]) / "policy_weights.pt").is_file()
        # the scored policy is the run's MLflow model (tests/tracking/test_policy_model.py)
        models = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
        )
        assert [m.name for m in models] == ["policy"]
        assert f"models:/{models[0].model_id}" in proc.stdout
    assert "| SAC |" in proc.stdout and "| DQN |" in proc.stdout
    # The run names the checkpoints it scored (the tagged ones), keeps num_to_keep of them
    # and leaves the known-harmless Ray lines out of the log.
    for run in runs:
        tagged = Path(run.data.tags["best_checkpoint"])
        assert tagged.is_absolute() and f": {tagged}\n" in proc.stdout
        assert (tagged / "evaluation.json").is_file()  # the final, scored checkpoint
        assert len(list(tagged.parent.glob("checkpoint_*"))) == 2  # smoke.yaml: num_to_keep 2
    assert "python -m dnt_rllib.evaluate --checkpoint /" in proc.stdout
    # one parent run for the invocation: the trials and the reference runs are its children,
    # and it holds the final table as printed and the report's figures
    exp = client.get_experiment_by_name("smoke")
    everything = client.search_runs([exp.experiment_id])
    parents = [r for r in everything if PARENT_TAG in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    children = [r for r in everything if r.data.tags.get(PARENT_RUN_TAG) == parent]
    assert len(children) == len(everything) - 1 == 2 + len(REFERENCE_RUNS)
    table = Path(client.download_artifacts(parent, RESULTS_ARTIFACT, str(tmp_path)))
    assert "| SAC |" in table.read_text() and "| DQN |" in table.read_text()
    figures = [f.path for f in client.list_artifacts(parent, FIGURES_ARTIFACTS)]
    assert f"{FIGURES_ARTIFACTS}/fig3_reward.png" in figures
    log = proc.stdout + proc.stderr
    assert "Checkpoint successfully created" not in log
    assert "on the new API stack" not in log
    assert "RLModuleConfig object" not in log and "Install gputil" not in log
    assert "tensorboard --logdir" not in log

    # The trained policy evaluates through the evaluation CLI from its checkpoint.
    checkpoint = runs[0].data.tags["best_checkpoint"]
    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnt_rllib.evaluate",
            "--checkpoint",
            checkpoint,
            "--episodes",
            "4",
            "--periods",
            "2-3",
            "--no-progress",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert f"| {runs[0].data.tags['algorithm']} (seed 0) |" in ev.stdout
    assert "| greedy |" in ev.stdout


def test_trials_leave_no_result_folders_in_home(smoke_run: SmokeRun) -> None:
    # An RLlib Algorithm built without a log location makes ~/ray_results/<timestamp> (empty)
    # on the trial's node; the trials keep everything in their own folder under storage_path.
    stray = smoke_run.home / "ray_results"
    assert not stray.exists(), sorted(p.name for p in stray.iterdir())
    assert sorted(p.name for p in (smoke_run.cwd / "ray_results").iterdir()) == ["smoke"]


def test_bad_config_is_refused_before_ray_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: SAC\nenv: {epsilon: 1.5}\n")
    proc = run_tune(tmp_path, "--config", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: experiment.env: SystemConfig.epsilon = 1.5: must be a number in (0, 1)"
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


def test_resume_after_sigkill_continues_without_duplicating_mlflow(tmp_path: Path) -> None:
    config = yaml.safe_load(SMOKE.read_text())
    config.update(name="resume", search_space={}, stop={"training_iteration": 8})
    del config["training"]["DQN"]  # SAC only: a DQN section no trial reads is refused
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnt_rllib.tune", "--config", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    storage = tmp_path / "ray_results" / "resume"
    deadline = time.time() + 300
    while time.time() < deadline and not list(storage.glob("*/checkpoint_000002")):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(storage.glob("*/checkpoint_000002")), "no checkpoint before the kill"

    again = run_tune(tmp_path, "--config", str(path))
    assert again.returncode == 2 and "--resume" in again.stderr  # nothing overwritten

    resumed = run_tune(tmp_path, "--config", str(path), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client, runs = runs_of(tmp_path, "resume")
    assert len(runs) == 1
    assert references_of(client, "resume") == sorted(REFERENCE_RUNS)  # not twice
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "iteration")]
    assert sorted(steps) == list(range(1, 9))  # every iteration once, none lost or doubled
    assert runs[0].info.status == "FINISHED"
