"""The exit status an interrupted `tune` gives the shell: 130 (128 + SIGINT), as a shell
reports a Ctrl-C. Users' scripts test for the number, so the tests state the number, never
the module's own constant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dnt_rllib.tune as tune_cli
import dnt_rllib.tuning.driver as driver
from dnt_rllib.experiment.schema import parse_experiment


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def _experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text("algorithm: SAC\nenv: {twin: hold}\n")
    return ["--config", "exp.yaml"]


def test_a_ctrl_c_before_training_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Ctrl-C while the twins are pretrained (before Ray): 130 and one line."""
    argv = _experiment(tmp_path, monkeypatch)
    monkeypatch.setattr(tune_cli, "pretrain_twins", _interrupt)
    assert tune_cli.main(argv) == 130
    assert capsys.readouterr().err.strip() == (
        "error: interrupted (Ctrl-C) before training started"
    )


def test_a_second_ctrl_c_during_training_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A second Ctrl-C reaches our handler while Tune saves: 130, the lock released."""
    argv = _experiment(tmp_path, monkeypatch)
    monkeypatch.setattr(tune_cli, "pretrain_twins", lambda exp: None)
    monkeypatch.setattr(tune_cli, "run", _interrupt)
    assert tune_cli.main(argv) == 130
    assert "interrupted twice (Ctrl-C)" in capsys.readouterr().err


def test_a_ctrl_c_caught_by_tune_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The usual case: Tune's own SIGINT handler catches the Ctrl-C and ``fit`` returns as
    if the experiment had ended; `run` must still give 130 (not the summary's 0)."""
    import ray
    from ray import tune
    from ray.tune.tune import _setup_signal_catching

    import dnt_rllib.tracking.mlflow_runs as tracking_module

    class Tuner:  # fit as Tune's: its handler installed, a Ctrl-C arrives, results come back
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def fit(self) -> list:
            _setup_signal_catching()
            os.kill(os.getpid(), signal.SIGINT)
            return []

    class Tracking:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

    usr1 = signal.getsignal(signal.SIGUSR1)  # Tune's handler takes SIGUSR1 too
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(driver, "prepare_references", lambda exp: [])
    monkeypatch.setattr(tracking_module, "MLflowTracking", Tracking)
    monkeypatch.setattr(tune, "Tuner", Tuner)
    monkeypatch.setattr(driver, "summarise", lambda results, exp, interrupted: 0)
    monkeypatch.chdir(tmp_path)
    exp = parse_experiment({"algorithm": "SAC", "env": {"twin": "hold"}})
    try:
        assert driver.run(exp, False, None) == 130
    finally:
        signal.signal(signal.SIGUSR1, usr1)
    assert "error: interrupted (Ctrl-C)" in capsys.readouterr().err


def test_the_process_exit_status_is_130(tmp_path: Path) -> None:
    """``python -m dnt_rllib.tune`` itself (its ``__main__`` block, run by runpy as Python's
    ``-m`` does), interrupted before training: the shell sees 130."""
    (tmp_path / "exp.yaml").write_text("algorithm: SAC\nenv: {twin: hold}\n")
    script = (
        "import runpy, sys\n"
        "import dnt_rllib.experiment.schema as experiment\n"
        "def interrupted(path):\n"
        "    raise KeyboardInterrupt\n"
        "experiment.load_experiment = interrupted\n"
        "sys.argv = ['dnt_rllib.tune', '--config', 'exp.yaml']\n"
        "runpy.run_module('dnt_rllib.tune', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(tune_cli.__file__).parents[1])},
    )
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "error: interrupted (Ctrl-C) before training started" in proc.stderr
