"""The MLflow UI's first screens: the command that serves a store, and the links ``tune``
prints to a view of the experiment that tells its story (MLflow 3.17, pinned).

The view is an MLflow *shared view*, what the UI's own "Share" button writes: an experiment
tag ``mlflow.sharedViewState.<key>`` holding the page's state as JSON, opened by the link's
``viewStateShareKey=<key>``. Ours sorts the runs by the final Δ vs the threshold rule and
shows it as a column beside the share of never → ceiling, the return and the sync fraction.
Sorting by a metric lists the runs flat (parents with their children), so the chart view
draws the trained runs and the reference runs side by side: its charts come in metric-name
order, ``curve/diff_threshold`` first (each trained run's learning curve against the rule's
0 line, the ceiling's and never's), then the ``eval/`` figures, which every run logs at
step 0 and which MLflow therefore draws as bar charts."""

from __future__ import annotations

import json
from collections.abc import Iterable

import mlflow

from dnt_rllib.names import eval_key

UI_ADDRESS = "http://127.0.0.1:5000"  # where a plain ``mlflow ui`` serves
#: The experiment tag MLflow's UI reads a shared view from (``<prefix><key>``).
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."
RESULTS_VIEW = "dnt-results"  # our view's key
#: The metrics the view shows as columns, the sort key first.
VIEW_METRICS = ("diff_threshold", "diff_threshold_ci95", "share", "return", "sync_fraction")
VIEW_RUNS = "FIRST_20_RUNS"  # the runs the charts draw: the first 20 of the sorted table


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves a local store in the MLflow UI; None for a tracking server."""
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def runs_url(tracking_uri: str, experiment_id: str, charts: bool = False) -> str:
    """The experiment's runs in the MLflow UI (of ``ui_command`` or the server) in the
    results view (:func:`set_results_view`): the table, or with ``charts`` the chart view.

    MLflow 3.17 opens an experiment on its GenAI "Overview" (traces) unless the UI's
    GenAI / Model training switch says otherwise. The switch is a setting of the browser
    (default GenAI), not of the store: the ``mlflow.experimentKind`` tag does not change it.
    ``workflowType=machine_learning`` in the link sets it for the page, which then shows
    the runs with the model-training navigation."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
    else:
        base = UI_ADDRESS
    url = (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
           f"&viewStateShareKey={RESULTS_VIEW}")  # fmt: skip
    return url + "&compareRunsMode=CHART" if charts else url


def results_view(params: Iterable[str]) -> dict:
    """The view's state: runs sorted by ``eval/diff_threshold``, best first, with the
    ``params`` (MLflow param names) and :data:`VIEW_METRICS` as columns."""
    columns = [f"params.`{name}`" for name in params]
    columns += [f"metrics.`{eval_key(name)}`" for name in VIEW_METRICS]
    return {
        "orderByKey": f"metrics.`{eval_key(VIEW_METRICS[0])}`",
        "orderByAsc": False,
        "selectedColumns": columns,
        "runsHiddenMode": VIEW_RUNS,
    }


def set_results_view(
    client: mlflow.MlflowClient, experiment_id: str, params: Iterable[str]
) -> None:
    """Write (or update) the experiment's results view, which :func:`runs_url` opens."""
    value = json.dumps(results_view(params))
    client.set_experiment_tag(experiment_id, SHARED_VIEW_PREFIX + RESULTS_VIEW, value)
