"""MLflow tracking of Tune trials: one MLflow run per trial, written by the Tune driver only.

The callback runs in the driver process, so the store (SQLite by default) has exactly one
writer however many trials, runners or nodes there are. A trial's run is found again by its
``ray.trial_id`` tag, so a resumed experiment continues the same runs; iterations already
logged (a resumed trial repeats those after its last checkpoint) are not logged twice.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from ray.tune import Callback

from dnt_rllib.common import first_line, short_hash
from dnt_rllib.config import NOT_EPISODE_FIELDS
from dnt_rllib.names import (
    BEST_PERIOD,
    EVAL_TABLE,
    EVALUATION_FILE,
    EVALUATION_TABLE_ARTIFACT,
    FIGURES_ARTIFACTS,
    PARENT_RUN_TAG,
    PARENT_TAG,
    POLICY,
    REFERENCE_OF_TAG,
    REFERENCE_RUN_KEYS,
    REFERENCE_RUNS,
    REFERENCE_TAG,
    RESULTS_ARTIFACT,
    STEP_KEY,
    TRIAL_TAG,
    TUNE_TAG,
    eval_key,
)
from dnt_rllib.trial.spec import FLAT_EVALUATION, TrialSpec

log = logging.getLogger(__name__)
TRUNCATED = "…[truncated]"
UI_ADDRESS = "http://127.0.0.1:5000"  # where a plain ``mlflow ui`` serves
#: Params that fix a reference run's scores: the network and the evaluation episodes.
SCORED_ON = ("evaluation_episodes", "evaluation_seed", "evaluation_reference")


def git_commit() -> str:
    """The package checkout's commit, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves a local store in the MLflow UI; None for a tracking server."""
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def runs_url(tracking_uri: str, experiment_id: str) -> str:
    """The experiment's runs table in the MLflow UI (of ``ui_command`` or the server).

    MLflow 3.17 opens an experiment on its GenAI "Overview" (traces) unless the UI's
    GenAI / Model training switch says otherwise. The switch is a setting of the browser
    (default GenAI), not of the store: the ``mlflow.experimentKind`` tag does not change it.
    ``workflowType=machine_learning`` in the link sets it for the page, which then shows
    the runs table with the model-training navigation."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
    else:
        base = UI_ADDRESS
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def trial_params(spec: TrialSpec) -> dict[str, str]:
    """Flat MLflow params of a trial: the effective algorithm settings (its algorithm's
    only: no SAC keys on a DQN or PPO run), env fields, seed…

    Values longer than MLflow allows are truncated with a visible marker, never dropped.
    """
    flat: dict[str, Any] = {"algorithm": spec.algorithm, "seed": spec.seed}
    flat.update({f"env.{k}": v for k, v in spec.env.to_dict().items()})
    flat.update({f"training.{k}": v for k, v in spec.training.items()})
    flat.update({f"model.{k}": v for k, v in spec.model_config.items()})
    flat.update({f"reward.{k}": v for k, v in dataclasses.asdict(spec.reward).items()})
    if spec.off_policy:  # PPO has no replay, and RLlib's learner
        flat["replay.kind"] = spec.replay
        flat["learner.kind"] = spec.learner
    flat.update(dataclasses.asdict(spec.resources))
    flat["stop"] = dict(spec.stop)
    flat.update({key: getattr(spec.evaluation, name) for key, name in FLAT_EVALUATION.items()})
    out = {}
    for key, value in flat.items():
        text = str(value)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            log.warning("MLflow param %s truncated to %d characters", key, MAX_PARAM_VAL_LENGTH)
            text = text[: MAX_PARAM_VAL_LENGTH - len(TRUNCATED)] + TRUNCATED
        out[key] = text
    return out


def scored_on(spec: TrialSpec) -> dict[str, Any]:
    """The params :data:`SCORED_ON`: the trial's evaluation episodes and reference."""
    return {flat: getattr(spec.evaluation, FLAT_EVALUATION[flat]) for flat in SCORED_ON}


def reference_key(spec: TrialSpec) -> str:
    """What a trial's reference policies were scored on (its network, with the twin, and
    its evaluation episodes), as a short hash: trials that share it share their references,
    whatever their algorithm, seed or observation."""
    env = {k: v for k, v in spec.env.to_dict().items() if k not in NOT_EPISODE_FIELDS}
    return short_hash({"env": env, **scored_on(spec)})


def loggable(value: Any) -> bool:
    """A finite number (not a bool): what MLflow can hold as a metric value."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def reference_metrics(result: dict[str, Any], label: str) -> dict[str, float]:
    """A trial's final figures of the reference policy ``label``, under the names a trained
    run gives its own (``eval/policy/<key>``), so one column compares them all."""
    out = {}
    for key in REFERENCE_RUN_KEYS:
        value = result.get(eval_key(label, key))
        if loggable(value):
            out[eval_key(POLICY, key)] = float(value)
    return out


class MLflowTracking(Callback):
    """Tune callback: trial → MLflow run (params, per-iteration metrics, tags, evaluation)."""

    def __init__(self, tracking_uri: str, experiment_name: str, tags: dict[str, str]) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.tags = tags
        self._client: mlflow.MlflowClient | None = None
        self._experiment_id = ""
        self._runs: dict[str, str] = {}  # trial id → run id
        self._last_step: dict[str, int] = {}  # trial id → last logged iteration
        self._parent_id = ""  # the parent run of this Tune experiment

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with its state
        return {**self.__dict__, "_client": None, "_runs": {}, "_last_step": {}}

    @property
    def experiment_id(self) -> str:
        self.client  # noqa: B018 (finds or creates the experiment)
        return self._experiment_id

    @property
    def client(self) -> mlflow.MlflowClient:
        if self._client is None:
            self._client = mlflow.MlflowClient(self.tracking_uri)
            exp = self._client.get_experiment_by_name(self.experiment_name)
            self._experiment_id = (
                exp.experiment_id if exp else self._client.create_experiment(self.experiment_name)
            )
        return self._client

    def parent_id(self) -> str | None:
        """The parent run of this Tune experiment (its folder is the ``TUNE_TAG`` of
        ``tags``): found again (``--resume``, or the summary after the run) or created;
        None without the tag. Every trial's run and its reference runs are its children."""
        folder = self.tags.get(TUNE_TAG)
        if folder is None:
            return None
        if not self._parent_id:
            found = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{folder}'"
            )
            if found:
                self._parent_id = found[0].info.run_id
            else:
                tags = {**self.tags, PARENT_TAG: folder}
                name = f"{folder.rstrip('/').rsplit('/', 1)[-1]} (tune)"
                run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
                self._parent_id = run.info.run_id
        return self._parent_id

    def child_tags(self) -> dict[str, str]:
        """The tags of a run under the parent (none without one)."""
        parent = self.parent_id()
        return {PARENT_RUN_TAG: parent} if parent else {}

    def finish_parent(self, table: str, figures: Path | None, status: str) -> None:
        """End the parent run with ``status``, holding the final ``table`` (markdown) and
        the report's ``figures`` (a folder of PNGs), each as an artifact."""
        parent = self.parent_id()
        if parent is None:
            return
        self.client.log_text(parent, table, RESULTS_ARTIFACT)
        if figures is not None:
            self.client.log_artifacts(parent, str(figures), FIGURES_ARTIFACTS)
        self.client.set_terminated(parent, status=status)

    def run_id(self, trial: Any) -> str:
        """The trial's run: found by its tag (a resumed trial) or created."""
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        client = self.client
        found = self._tagged_runs(trial.trial_id)
        if found:
            run_id = found[0].info.run_id
            history = client.get_metric_history(run_id, STEP_KEY)
            self._last_step[trial.trial_id] = max((m.step for m in history), default=0)
            client.update_run(run_id, status="RUNNING")
        else:
            spec = TrialSpec.from_params(trial.config)
            tags = {
                **self.tags,
                **self.child_tags(),
                TRIAL_TAG: trial.trial_id,
                "algorithm": spec.algorithm,
                "trial_name": str(trial),
            }
            run = client.create_run(self._experiment_id, run_name=str(trial), tags=tags)
            run_id = run.info.run_id
            params = [Param(k, v) for k, v in trial_params(spec).items()]
            for i in range(0, len(params), 100):
                client.log_batch(run_id, params=params[i : i + 100])
            self._last_step[trial.trial_id] = 0
        self._runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.run_id(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        run_id = self.run_id(trial)
        step = int(result.get(STEP_KEY, result.get("training_iteration", 0)))
        if step <= self._last_step.get(trial.trial_id, 0):
            return  # already logged before the experiment was interrupted
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value in result.items()
            if loggable(value) and self._tracked(key)
        ]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i : i + 500])
        self._last_step[trial.trial_id] = step
        if EVAL_TABLE in result:
            self.client.log_text(run_id, result[EVAL_TABLE], EVALUATION_TABLE_ARTIFACT)
        if eval_key(POLICY, "mean_return") in result:
            self.log_references(TrialSpec.from_params(trial.config), result)

    def log_references(self, spec: TrialSpec, result: dict[str, Any]) -> None:
        """The reference policies of a trial's final evaluation as runs of their own, once
        per network and evaluation episodes under the parent run (trials of several seeds or
        algorithms on one network share them): params, tags and ``eval/policy/...`` metrics
        as a trained run."""
        key = reference_key(spec)
        client = self.client
        wanted = f"tags.`{REFERENCE_OF_TAG}` = '{key}'"
        if parent := self.parent_id():
            wanted += f" and tags.`{PARENT_RUN_TAG}` = '{parent}'"
        found = client.search_runs([self.experiment_id], filter_string=wanted)
        have = {r.data.tags.get(REFERENCE_TAG) for r in found}
        env = {k: v for k, v in trial_params(spec).items() if k.startswith("env.")}
        now = int(time.time() * 1000)
        for label in REFERENCE_RUNS:
            if label in have:
                continue
            metrics = reference_metrics(result, label)
            if not metrics:
                continue
            tags = {**self.tags, **self.child_tags(), REFERENCE_TAG: label,
                    REFERENCE_OF_TAG: key}  # fmt: skip
            run_id = client.create_run(
                self._experiment_id, run_name=f"{label} (reference)", tags=tags
            ).info.run_id
            params = {"algorithm": f"reference: {label}", **env}
            params.update({k: str(v) for k, v in scored_on(spec).items()})
            if label == "best_periodic" and BEST_PERIOD in result:
                params["best_period"] = str(int(result[BEST_PERIOD]))
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in params.items()],
            )
            client.set_terminated(run_id, status="FINISHED")

    def on_checkpoint(
        self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        """The final evaluation's per-episode returns, saved beside the last checkpoint, as
        the run's ``evaluation.json`` artifact (runs on the same seeds compare paired)."""
        with checkpoint.as_directory() as folder:
            record = Path(folder) / EVALUATION_FILE
            if record.is_file():
                self.client.log_text(self.run_id(trial), record.read_text(), EVALUATION_FILE)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.set_terminated(self.run_id(trial), status="FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.client.set_terminated(self.run_id(trial), status="FAILED")

    def _tagged_runs(self, trial_id: str) -> list:
        """The runs of a trial, found by its tag (at most one)."""
        return self.client.search_runs(
            [self._experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}'"
        )

    def set_status(self, trial_id: str, status: str) -> None:
        """End a trial's run with ``status`` (KILLED: interrupted; a resume sets it RUNNING)."""
        found = self._tagged_runs(trial_id)
        if found:
            self.client.set_terminated(found[0].info.run_id, status=status)

    def log_model(self, trial_id: str, checkpoint: Path) -> str:
        """Log the scored checkpoint's greedy policy as the MLflow model of the trial's run
        (:mod:`dnt_rllib.tracking.policy_model`): its ``models:/`` URI, or the one line that
        says why it is not logged."""
        from dnt_rllib.tracking.policy_model import log_policy_model
        from dnt_rllib.validation import ConfigError

        found = self._tagged_runs(trial_id)
        if not found:
            return "not logged: no MLflow run of this trial"
        try:
            return log_policy_model(self.tracking_uri, found[0].info.run_id, checkpoint)
        except (ConfigError, OSError, mlflow.exceptions.MlflowException) as err:
            return f"not logged: {first_line(err)}"  # the run and its checkpoint stay as they are

    def set_tag(self, trial_id: str, key: str, value: str) -> None:
        """Tag a trial's run after the experiment (e.g. its best checkpoint)."""
        found = self._tagged_runs(trial_id)
        if found:
            self.client.set_tag(found[0].info.run_id, key, value)

    @staticmethod
    def _tracked(key: str) -> bool:
        """Our metrics and Tune's clock; not Tune's bookkeeping (pid, timestamps…)."""
        return key not in {
            "pid",
            "timestamp",
            "time_since_restore",
            "iterations_since_restore",
            "time_this_iter_s",
            "done",
            "vs_threshold",  # the progress table's copy of the search metric
        }
