"""The end of ``tune``: where each scored checkpoint is, the command that evaluates it again,
and the ``best_checkpoint`` tag on the checkpoint that was scored."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

import dnt_rllib.tracking.mlflow_runs as tracking_module
import dnt_rllib.tuning.summary as summary_module
from dnt_rllib.experiment.schema import load_experiment
from dnt_rllib.rllib_ext.quiet import quiet_ray_logs
from dnt_rllib.tuning.summary import summarise
from tests.conftest import SMOKE


def trial_config(algorithm: str) -> dict[str, Any]:
    """A smoke trial's ``config`` as Tune's results hold it (seed 0)."""
    return load_experiment(SMOKE).trial_spec(algorithm).to_params()


@dataclass
class FakeCheckpoint:
    path: str


@dataclass
class FakeResult:
    path: str
    metrics: dict[str, Any]
    config: dict[str, Any] | None
    checkpoint: FakeCheckpoint | None
    error: Exception | None = None
    best_checkpoints: list = field(default_factory=list)

    def get_best_checkpoint(self, metric: str, mode: str) -> FakeCheckpoint:
        return FakeCheckpoint(self.path + "/checkpoint_000000")  # best by training return


class FakeTracking:
    tags: ClassVar[dict[tuple[str, str], str]] = {}
    experiment_id = "7"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_tag(self, trial_id: str, key: str, value: str) -> None:
        FakeTracking.tags[(trial_id, key)] = value

    def log_model(self, trial_id: str, checkpoint: Path) -> str:
        FakeTracking.tags[(trial_id, "model")] = str(checkpoint)
        return f"models:/m-{trial_id}"

    def parent_id(self) -> str:
        return "p1"

    def set_results_view(self, params: Any) -> None:
        FakeTracking.tags[("view", "columns")] = ",".join(params)

    def finish_parent(self, table: str, figures: Path | None, status: str) -> None:
        FakeTracking.tags[("p1", "table")] = table
        FakeTracking.tags[("p1", "status")] = status


@pytest.fixture(autouse=True)
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's figures need a real store; the summary is tested without them."""
    monkeypatch.setattr(summary_module, "report_figures", lambda exp, out: None)


def test_summary_prints_and_tags_the_scored_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(tracking_module, "MLflowTracking", FakeTracking)
    trial = tmp_path / "smoke" / "SAC_s0_1"
    final = trial / "checkpoint_000002"
    result = FakeResult(
        str(trial),
        {"trial_id": "t1", "eval/return": 1.0},
        trial_config("SAC"),
        FakeCheckpoint(str(final)),
        best_checkpoints=[(FakeCheckpoint(str(trial / "checkpoint_000000")), {})],
    )
    exp = load_experiment(SMOKE)
    assert summarise([result], exp) == 0
    out = capsys.readouterr().out
    assert f"  t1: {final}" in out
    # the smoke run's 5 evaluation episodes from seed 10000, named above the table
    assert "Final evaluation on episodes 10000–10004, every policy on the same ones" in out
    assert (
        f"python -m dnt_rllib.evaluate --checkpoint {final} --episodes "
        f"{exp.evaluation.episodes} --seed {exp.evaluation.seed}" in out
    )
    assert FakeTracking.tags[("t1", "best_checkpoint")] == str(final)
    # the scored checkpoint (not the best by training return) is the run's MLflow model
    assert FakeTracking.tags[("t1", "model")] == str(final)
    # the results view: the trial's algorithm and seed and the swept params as columns
    assert FakeTracking.tags[("view", "columns")] == "algorithm,seed"
    assert "  t1: models:/m-t1" in out
    # the parent run holds the table as printed, and ends FINISHED
    table = FakeTracking.tags[("p1", "table")]
    assert "| t1 | SAC | 0 | 1.00 |" in table and "Final evaluation on episodes" in table
    assert FakeTracking.tags[("p1", "status")] == "FINISHED"


def test_a_trial_stopped_early_shows_its_search_metric_not_nans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(tracking_module, "MLflowTracking", FakeTracking)
    stopped = FakeResult(
        str(tmp_path / "SAC_s0_2"),
        {"trial_id": "t2", "wall_time_s": 121.4, "search/diff_threshold": -33.82},
        trial_config("SAC"),
        None,
    )
    assert summarise([stopped], load_experiment(SMOKE)) == 0
    out = capsys.readouterr().out
    line = "| t2 | SAC | 0 | stopped after 121 s of training, search/diff_threshold = -33.82 |"
    assert line in out
    assert "nan" not in out
    assert ("t2", "best_checkpoint") not in FakeTracking.tags
    assert ("t2", "model") not in FakeTracking.tags


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


HARMLESS = [
    ("ray.train._internal.storage", "Checkpoint successfully created at: Checkpoint(x)"),
    ("ray.rllib.algorithms.algorithm_config",
     "You are running SAC on the new API stack! This is the new default"),
    ("ray._private.authentication.authentication_token_setup",
     "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled"),
    ("ray.tune.execution.experiment_state",
     "Experiment state snapshotting has been triggered multiple times in the last 5.0 s"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "message"), HARMLESS)
def test_known_harmless_ray_lines_are_dropped(name: str, message: str) -> None:
    """Ray 2.60's own wording, from the modules that log it; other lines still show."""
    quiet_ray_logs()
    logger = logging.getLogger(name)
    seen = Collect()
    logger.addHandler(seen)
    logger.setLevel(logging.INFO)
    try:
        logger.warning(message)
        logger.warning("a real warning")
    finally:
        logger.removeHandler(seen)
    assert seen.messages == ["a real warning"]


def test_a_ctrl_c_caught_by_tune_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tune's own SIGINT handler ends ``fit`` as if it had finished (issue 25, 5)."""
    import os
    import signal

    from ray.tune.tune import _setup_signal_catching

    from dnt_rllib.tuning.driver import InterruptWatch

    usr1 = signal.getsignal(signal.SIGUSR1)
    try:
        quiet = InterruptWatch()
        _setup_signal_catching()  # what Tuner.fit installs
        assert not quiet.happened()
        watch = InterruptWatch()
        event = _setup_signal_catching()
        os.kill(os.getpid(), signal.SIGINT)
        assert event.is_set() and watch.happened()
    finally:
        signal.signal(signal.SIGUSR1, usr1)


def test_an_interrupted_trial_is_said_so_and_its_run_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    statuses: dict[str, str] = {}

    class Tracking(FakeTracking):
        def set_status(self, trial_id: str, status: str) -> None:
            statuses[trial_id] = status

    monkeypatch.setattr(tracking_module, "MLflowTracking", Tracking)
    stopped = FakeResult(
        str(tmp_path / "SAC_s0_3"),
        {"trial_id": "t3", "wall_time_s": 22.0},
        trial_config("SAC"),
        None,
    )
    pending = FakeResult(str(tmp_path / "DQN_s0_4"), {}, trial_config("DQN"), None)
    # what Tune 2.60 returns for a trial still PENDING at the Ctrl-C: its id, no config
    starting = FakeResult(str(tmp_path / "SAC_s1_5"), {"trial_id": "t5"}, None, None)
    summarise([stopped, pending, starting], load_experiment(SMOKE), interrupted=True)
    out = capsys.readouterr().out
    assert "| t3 | SAC | 0 | interrupted after 22 s of training; --resume continues it |" in out
    assert "| DQN_s0_4 | not started; --resume starts it |" in out and "stopped after" not in out
    assert "| SAC_s1_5 | not started; --resume starts it |" in out
    assert statuses == {"t3": "KILLED"}
    assert FakeTracking.tags[("p1", "status")] == "KILLED"  # the parent: --resume reuses it
