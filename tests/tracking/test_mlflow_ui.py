"""The MLflow UI as a user meets it, in a real headless Chromium: the links a ``tune`` run
prints open the experiment's runs sorted by their final Δ vs threshold, as a table with that
column, and as charts whose first one draws SAC's and DQN's learning curves against the
threshold rule's line, followed by a bar chart of the final Δ of SAC, DQN and the references.

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
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest

from dnt_rllib.names import (
    PARENT_RUN_TAG,
    PARENT_TAG,
    REFERENCE_RUNS,
    REFERENCE_TAG,
    curve_key,
    eval_key,
)
from dnt_rllib.tracking.ui import UI_ADDRESS

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH (Debian: apt-get install chromium); the MLflow UI check "
    "needs a real browser",
)
WINDOW = "1600,1400"  # a first screen (the charts below it are not drawn)


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


def rendered_dom(url: str, tmp_path: Path, ready: Callable[[str], bool] = bool) -> str:
    """The page's DOM after the UI has loaded its data, in a headless Chromium window of the
    size a person would use: loaded again, up to 3 times, while not ``ready`` (the UI
    fetches its runs from the server in real time, which a busy machine slows)."""
    for attempt in range(3):
        dom = dump_dom(url, tmp_path / f"attempt{attempt}")
        if ready(dom):
            break
    return dom


def dump_dom(url: str, tmp_path: Path) -> str:
    """One headless Chromium's DOM of ``url``."""
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


def chart_cards(dom: str) -> list[tuple[str, str]]:
    """(title, HTML) of each chart card the page drew, in page order."""
    parts = re.split(r'<h4[^>]*title="([^"]+)">', dom)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def legend(card: str) -> dict[str, str]:
    """A chart card's legend: run name → the colour of its line or bar."""
    entries = re.findall(r'stroke: (rgb\([^)]*\));"></path></svg><span[^>]*>([^<]+)</span>', card)
    return {re.sub(r" \([a-z_]+/[a-z_/]+\)$", "", name): colour for colour, name in entries}


def line_points(card: str) -> dict[str, int]:
    """A line chart's traces: colour → the most points (markers) a trace of that colour has."""
    out: dict[str, int] = {}
    for trace in card.split('<g class="trace scatter')[1:]:
        colour = re.search(r"stroke: (rgb\([^)]*\))", trace)
        if colour:
            out[colour[1]] = max(out.get(colour[1], 0), trace.count('class="point"'))
    return out


def bars(card: str) -> set[tuple[str, str]]:
    """A bar chart's bars: (colour, the value it is labelled with)."""
    found = re.findall(r'fill: (rgb\([^)]*\)); fill-opacity: 1;"></path><text class="bartext[^"]*"'
                       r'[^>]*data-unformatted="([^"]+)"', card)  # fmt: skip
    return set(found)


@needs_chromium
def test_printed_links_open_the_results(smoke_run, mlflow_ui: str, tmp_path: Path) -> None:
    printed = re.findall(rf"{re.escape(UI_ADDRESS)}(/#/experiments/\S+)", smoke_run.proc.stdout)
    assert len(printed) == 2, (
        f"the tune run prints no links to its runs:\n{smoke_run.proc.stdout[-2000:]}"
    )
    assert f"mlflow ui --backend-store-uri {smoke_run.tracking_uri}" in smoke_run.proc.stdout

    client = mlflow.MlflowClient(smoke_run.tracking_uri)
    experiment = client.get_experiment_by_name("smoke")
    assert all(re.match(rf"/#/experiments/{experiment.experiment_id}\b", p) for p in printed)
    runs = client.search_runs([experiment.experiment_id])
    trained = {r.info.run_name.split("_")[0]: r for r in runs if "algorithm" in r.data.tags}
    assert sorted(trained) == ["DQN", "SAC"], sorted(trained)
    # SAC and DQN play one network: its reference policies are logged once, as runs
    references = {r.data.tags[REFERENCE_TAG]: r for r in runs if REFERENCE_TAG in r.data.tags}
    assert sorted(references) == sorted(REFERENCE_RUNS), sorted(references)
    # they are the children of the invocation's parent run (the default view: one row)
    parents = [r for r in runs if PARENT_TAG in r.data.tags]
    assert [r.info.run_name for r in parents] == ["smoke (tune)"]
    assert all(r.data.tags.get(PARENT_RUN_TAG) == parents[0].info.run_id
               for r in runs if r is not parents[0])  # fmt: skip
    named = {r.info.run_name: r for r in [*trained.values(), *references.values()]}
    sac, dqn = trained["SAC"].info.run_name, trained["DQN"].info.run_name

    # the table: every run on the first screen, with the final Δ vs threshold as a column
    table = rendered_dom(mlflow_ui + printed[0], tmp_path / "table",
                         lambda dom: all(name in dom for name in named))  # fmt: skip
    missing = [name for name in named if name not in table]
    assert not missing, f"{printed[0]} shows no rows {missing}"
    assert eval_key("diff_threshold") in table, "the table has no Δ vs threshold column"

    # the charts: the first is the learning curve of SAC and DQN against the rule's line
    charts = rendered_dom(mlflow_ui + printed[1], tmp_path / "charts",
                          lambda dom: bool(chart_cards(dom)) and "trace bars" in dom)  # fmt: skip
    cards = chart_cards(charts)
    assert cards, f"{printed[1]} draws no chart"
    title, card = cards[0]
    assert title == curve_key("diff_threshold"), [t for t, _ in cards]
    colours, points = legend(card), line_points(card)
    for name in (sac, dqn, "threshold (reference)"):
        steps = len(client.get_metric_history(named[name].info.run_id, title))
        assert steps >= 2, f"{name} logged {title} at {steps} steps"
        assert points.get(colours.get(name)) == steps, f"{name}: no line of its {steps} points"
    # and a bar chart of the final Δ vs threshold: SAC, DQN and the references, each bar
    # labelled with the run's logged value
    by_title = dict(cards)
    final = eval_key("diff_threshold")
    assert final in by_title, f"no chart of {final}: {[t for t, _ in cards]}"
    colours, drawn = legend(by_title[final]), bars(by_title[final])
    for name in (
        sac,
        dqn,
        *(f"{label} (reference)" for label in ("threshold", "ceiling", "never")),
    ):
        value = named[name].data.metrics[final]
        assert (colours.get(name), f"{value:.2f}") in drawn, f"{name}: no bar of {value:.2f}"
