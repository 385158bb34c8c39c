"""The MLflow UI as a user meets it: the link a ``tune`` run prints opens, in a real headless
Chromium, on the experiment's runs table with the run's parent on the first screen (the SAC
and the DQN run and the reference runs are its children: the row expands to them).

Needs a Chromium (Debian: ``apt-get install chromium``); skipped where none is installed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from dnt_rllib.names import PARENT_RUN_TAG, PARENT_TAG, REFERENCE_RUNS, REFERENCE_TAG
from dnt_rllib.tracking.mlflow_runs import UI_ADDRESS

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH (Debian: apt-get install chromium); the MLflow UI check "
    "needs a real browser",
)
WINDOW = "1400,900"  # the first screen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_ui(smoke_run, tmp_path: Path) -> Iterator[str]:
    """``mlflow ui`` on the smoke run's store, on a free port of 127.0.0.1: its address."""
    port = free_port()
    log = (tmp_path / "mlflow_ui.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "ui"),
            *("--backend-store-uri", smoke_run.tracking_uri),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its uvicorn workers are stopped with it
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (tmp_path / "mlflow_ui.log").read_text()[-2000:]
                    pytest.fail(f"mlflow ui did not come up:\n{tail}")
                time.sleep(0.5)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def rendered_dom(url: str, tmp_path: Path) -> str:
    """The page's DOM after the UI has loaded its data, in a headless Chromium window of the
    size a person would use."""
    args = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",  # a fresh browser: no remembered settings
        f"--window-size={WINDOW}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@needs_chromium
def test_printed_link_opens_the_runs_table(smoke_run, mlflow_ui: str, tmp_path: Path) -> None:
    printed = re.search(rf"{re.escape(UI_ADDRESS)}(/#/experiments/\S+)", smoke_run.proc.stdout)
    assert printed, f"the tune run prints no link to its runs:\n{smoke_run.proc.stdout[-2000:]}"
    assert f"mlflow ui --backend-store-uri {smoke_run.tracking_uri}" in smoke_run.proc.stdout

    client = mlflow.MlflowClient(smoke_run.tracking_uri)
    experiment = client.get_experiment_by_name("smoke")
    assert re.match(rf"/#/experiments/{experiment.experiment_id}\b", printed.group(1))
    runs = client.search_runs([experiment.experiment_id])
    trained = sorted(r.info.run_name for r in runs if "algorithm" in r.data.tags)
    assert [name.split("_")[0] for name in trained] == ["DQN", "SAC"], trained
    # SAC and DQN play one network: its reference policies are logged once, as runs
    references = sorted(r.data.tags[REFERENCE_TAG] for r in runs if REFERENCE_TAG in r.data.tags)
    assert references == sorted(REFERENCE_RUNS), references
    # they are the children of the invocation's parent run: the runs table's first screen
    # shows the parent's row, which expands to them (a sweep is one row)
    parents = [r for r in runs if PARENT_TAG in r.data.tags]
    assert [r.info.run_name for r in parents] == ["smoke (tune)"]
    assert all(r.data.tags.get(PARENT_RUN_TAG) == parents[0].info.run_id
               for r in runs if r is not parents[0])  # fmt: skip
    names = ["smoke (tune)"]

    url = mlflow_ui + printed.group(1)
    dom = rendered_dom(url, tmp_path)
    titles = re.findall(r"<title>([^<]*)</title>", dom)  # e.g. "Runs - Experiment 1 - MLflow"
    missing = [name for name in names if name not in dom]
    assert not missing, f"{url} shows {titles[:1]}, without the runs {missing}"
