"""What `report` prints and writes around its tables: no empty sections, each note once,
and a `--help` whose example can be pasted."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from dnt_rllib.report import main as report_main
from tests.report.store import log_evaluation


def write_store(uri: str, algorithms: tuple[str, ...]) -> None:
    """One finished run per algorithm, one seed each: the report notes the missing bands."""
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("edges")
    for algo in algorithms:
        run = client.create_run(exp, tags={"algorithm": algo}).info.run_id
        client.log_param(run, "seed", 0)
        client.log_param(run, "env.epsilon", 0.987)
        metrics = {"policy/return": 743.0, "policy/diff_threshold": -1.0,
                   "policy/diff_threshold_ci95": 0.3, "policy/share": 0.95,
                   "best_periodic/best_period": 4, "threshold/return": 744.0,
                   "ceiling/return": 745.4}  # fmt: skip
        log_evaluation(client, run, metrics)
        for i in (1, 2):
            client.log_metric(run, "curve/diff_threshold", -2.0 / i, step=i)
            client.log_metric(run, "curve/return", 740.0 + i, step=i)
            client.log_metric(run, "episode_return_mean", 700.0, step=i)
            client.log_metric(run, "env_steps", 1000.0 * i, step=i)
            client.log_metric(run, "wall_time_s", 10.0 * i, step=i)
        client.set_terminated(run)


def run_report(tmp_path: Path, algorithms: tuple[str, ...], capsys: pytest.CaptureFixture):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri, algorithms)
    out = tmp_path / "out"
    assert report_main(["--experiment", "edges", "--tracking-uri", uri, "--out", str(out)]) == 0
    return capsys.readouterr().out, (out / "results.md").read_text()


def test_one_algorithm_gets_no_sac_minus_dqn_section(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    printed, table = run_report(tmp_path, ("SAC",), capsys)
    assert "| SAC | default | 1 |" in table
    assert "SAC − DQN" not in table and "SAC − DQN" not in printed


def test_both_algorithms_keep_the_sac_minus_dqn_row(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, table = run_report(tmp_path, ("SAC", "DQN"), capsys)
    assert "| setting | SAC − DQN" in table and "| default | +0.00 ± " in table


def test_each_note_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    printed, table = run_report(tmp_path, ("SAC", "DQN"), capsys)
    notes = [
        "SAC: 1 seed — a confidence band cannot be drawn",
        "DQN: 1 seed — a confidence band cannot be drawn",
        "ε is not varied in this experiment: no trade-off front",
    ]
    for note in notes:
        assert table.count(note) == 1, table
        assert printed.count(note) == 1, printed


def test_the_help_example_continues_its_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        report_main(["--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    example = (
        "python -m dnt_rllib.report --experiment sweep --tune-experiment ray_results/sweep \\\n"
        "        --tune-experiment ray_results/sweep_default_seeds"
    )
    assert example in printed, printed
