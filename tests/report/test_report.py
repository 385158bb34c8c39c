"""The report reads a real MLflow store written by the smoke run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from dnt_rllib.names import REFERENCE_RUNS, REFERENCE_TAG
from dnt_rllib.report import load_runs
from dnt_rllib.report import main as report_main
from tests.conftest import SmokeRun

pytestmark = pytest.mark.e2e


def test_report_writes_every_file_and_says_no_bands_for_one_seed(
    smoke_run: SmokeRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "report"
    code = report_main(
        ["--experiment", "smoke", "--tracking-uri", smoke_run.tracking_uri, "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "SAC: 1 seed — a confidence band cannot be drawn" in printed
    assert "DQN: 1 seed — a confidence band cannot be drawn" in printed
    fig = out / "fig3_reward.png"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 10_000
    table = (out / "results.md").read_text()
    assert "| SAC | default | 1 |" in table and "| DQN | default | 1 |" in table
    assert "| default |" in table and "+10.31 %" in table
    for reference in ("ceiling", "threshold", "greedy", "never"):
        assert f"| {reference} | default | – |" in table


def test_runs_carry_aligned_curves_and_reach_times(smoke_run: SmokeRun) -> None:
    runs = load_runs(mlflow.MlflowClient(smoke_run.tracking_uri), "smoke")
    assert sorted(run.algorithm for run in runs) == ["DQN", "SAC"]
    for run in runs:
        curve = run.training
        assert len(curve.steps) == len(curve.values) == len(curve.wall) >= 2
        assert (np.diff(curve.steps) > 0).all() and (np.diff(curve.wall) > 0).all()
        assert curve.first_reaching(curve.values.min()) == (curve.steps[0], curve.wall[0])
        assert curve.first_reaching(curve.values.max() + 1.0) is None
        # smoke.yaml: curve_interval 2 over 3 iterations → iterations 1, 2 and the last
        assert len(run.evaluation.steps) == len(run.vs_threshold.steps) == 3
        assert set(run.lines) == {"never", "greedy", "best_periodic", "threshold", "ceiling"}


def test_final_evaluation_metrics_recompute_from_the_per_episode_artifact(
    smoke_run: SmokeRun,
) -> None:
    client = mlflow.MlflowClient(smoke_run.tracking_uri)
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id])
    trained = [r for r in runs if "algorithm" in r.data.tags]
    references = {r.data.tags[REFERENCE_TAG]: r for r in runs if REFERENCE_TAG in r.data.tags}
    assert len(trained) == 2 and len(runs) == 2 + len(REFERENCE_RUNS) + 1  # and the parent
    for run in trained:
        path = client.download_artifacts(run.info.run_id, "evaluation.json")
        record = json.loads(Path(path).read_text())
        by = {s["policy"]: s for s in record["summaries"]}
        threshold, policy = np.array(by["threshold"]["returns"]), np.array(by["policy"]["returns"])
        assert len(policy) == 5  # smoke.yaml: evaluation.episodes
        m = run.data.metrics
        assert m["eval/return"] == pytest.approx(policy.mean())
        assert m["eval/diff_threshold"] == pytest.approx((policy - threshold).mean())
        never, ceiling = np.mean(by["never"]["returns"]), np.mean(by["ceiling"]["returns"])
        assert m["eval/share"] == pytest.approx((policy.mean() - never) / (ceiling - never))
        assert np.mean(by["ceiling"]["returns"]) >= threshold.mean()
        assert not any(k.startswith(("ref/", "eval/threshold", "curve/threshold")) for k in m)
        # SAC and DQN play the same episodes: each reference run holds its policy's figures
        for label in ("threshold", "greedy", "ceiling", "never"):
            ref = references[label].data.metrics
            assert ref["eval/return"] == pytest.approx(np.mean(by[label]["returns"]))
            assert ref["eval/diff_threshold"] == pytest.approx(
                np.mean(np.array(by[label]["returns"]) - threshold)
            )


def test_unknown_experiment_is_a_clear_error(
    smoke_run: SmokeRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = report_main(
        ["--experiment", "nope", "--tracking-uri", smoke_run.tracking_uri, "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --experiment 'nope': no such MLflow experiment; have:")
    assert "smoke" in err and "\n" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_mlflow_server_serves_the_smoke_runs_over_rest(smoke_run: SmokeRun) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            smoke_run.tracking_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "mlflow server did not start"
                assert server.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        exp = get(base, "experiments/get-by-name", experiment_name="smoke")["experiment"]
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            # the trained runs (docs/mlflow.md's filter); the reference runs have no such tag
            data=json.dumps(
                {"experiment_ids": [exp["experiment_id"]], "filter": "tags.algorithm LIKE '%'"}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            runs = json.loads(resp.read())["runs"]
        assert len(runs) == 2
        for run in runs:
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            assert params["algorithm"] in ("SAC", "DQN") and "env.num_users" in params
            history = get(
                base,
                "metrics/get-history",
                run_id=run["info"]["run_id"],
                metric_key="episode_return_mean",
            )["metrics"]
            assert [m["step"] for m in sorted(history, key=lambda m: m["step"])] == [1, 2, 3]
    finally:
        server.terminate()
        server.wait(timeout=30)
