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
from collections.abc import Iterable
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
    REFERENCE_OF_TAG,
    REFERENCE_TAG,
    RESULTS_ARTIFACT,
    STEP_KEY,
    THRESHOLD_A,
    THRESHOLD_B,
    TRIAL_TAG,
    TUNE_TAG,
    eval_key,
    split_reference_metric,
)
from dnt_rllib.trial.spec import FLAT_EVALUATION, TrialSpec

log = logging.getLogger(__name__)
TRUNCATED = "…[truncated]"
#: Params that fix a reference run's scores: the network, the evaluation episodes and the
#: learning curve's episodes.
SCORED_ON = ("evaluation_episodes", "evaluation_seed", "evaluation_reference",
             "curve_episodes", "curve_seed")  # fmt: skip


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
    """The params :data:`SCORED_ON`: the trial's evaluation and curve episodes."""
    return {flat: getattr(spec.evaluation, FLAT_EVALUATION[flat]) for flat in SCORED_ON}


def reference_key(spec: TrialSpec) -> str:
    """What a trial's reference policies were scored on (its network, with the twin, and
    its evaluation and curve episodes), as a short hash: trials that share it share their
    references, whatever their algorithm, seed or observation. A trained run is tagged
    with it (:data:`REFERENCE_OF_TAG`) as its reference runs are."""
    env = {k: v for k, v in spec.env.to_dict().items() if k not in NOT_EPISODE_FIELDS}
    return short_hash({"env": env, **scored_on(spec)})


def loggable(value: Any) -> bool:
    """A finite number (not a bool): what MLflow can hold as a metric value."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def logged_step(key: str, step: int) -> int:
    """The MLflow step of ``key`` reported at iteration ``step``: a final figure
    (``eval/...``) at 0, where MLflow draws a metric whose runs all end at step 0 as bars
    (trained and reference runs alike), the rest at ``step``."""
    return 0 if key.startswith(eval_key("")) else step


def by_reference(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The references' figures a trial reported (``ref/<label>/<metric>``), by label."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in result.items():
        if (split := split_reference_metric(key)) is not None:
            out.setdefault(split[0], {})[split[1]] = value
    return out


#: Tune's bookkeeping, and the progress table's copy of the search metric: not logged.
UNTRACKED = frozenset({"pid", "timestamp", "time_since_restore", "iterations_since_restore",
                       "time_this_iter_s", "done", "vs_threshold"})  # fmt: skip

#: Figures of a reference that are settings of its policy: its run's params, not metrics.
REFERENCE_PARAMS = (BEST_PERIOD, THRESHOLD_A, THRESHOLD_B)


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
        self._references: dict[tuple[str, str], str] = {}  # (scored on, label) → run id
        self._logged: dict[tuple[str, str], set[int]] = {}  # (run id, metric) → steps

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with its state
        return {**self.__dict__, "_client": None, "_runs": {}, "_last_step": {},
                "_references": {}, "_logged": {}}  # fmt: skip

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

    def set_results_view(self, params: Iterable[str]) -> None:
        """Write the experiment's results view (:mod:`dnt_rllib.tracking.ui`), with the
        ``params`` as columns beside the final figures."""
        from dnt_rllib.tracking.ui import set_results_view

        set_results_view(self.client, self.experiment_id, params)

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
                REFERENCE_OF_TAG: reference_key(spec),
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
            Metric(key, float(value), now, logged_step(key, step))
            for key, value in result.items()
            if loggable(value) and self._tracked(key)
        ]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i : i + 500])
        self._last_step[trial.trial_id] = step
        if EVAL_TABLE in result:
            self.client.log_text(run_id, result[EVAL_TABLE], EVALUATION_TABLE_ARTIFACT)
        if references := by_reference(result):
            self.log_references(TrialSpec.from_params(trial.config), step, references)

    def reference_run(self, spec: TrialSpec, label: str) -> str:
        """The run of reference ``label`` on the trial's network and episodes under the
        parent run: found (another trial's, or before ``--resume``) or created, FINISHED
        (later figures are logged to it as they come)."""
        key = reference_key(spec)
        if (key, label) in self._references:
            return self._references[(key, label)]
        client = self.client
        wanted = f"tags.`{REFERENCE_OF_TAG}` = '{key}' and tags.`{REFERENCE_TAG}` = '{label}'"
        if parent := self.parent_id():
            wanted += f" and tags.`{PARENT_RUN_TAG}` = '{parent}'"
        found = client.search_runs([self.experiment_id], filter_string=wanted)
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {**self.tags, **self.child_tags(), REFERENCE_TAG: label,
                    REFERENCE_OF_TAG: key}  # fmt: skip
            run_id = client.create_run(
                self._experiment_id, run_name=f"{label} (reference)", tags=tags
            ).info.run_id
            params = {"algorithm": f"reference: {label}"}
            params.update({k: v for k, v in trial_params(spec).items() if k.startswith("env.")})
            params.update({k: str(v) for k, v in scored_on(spec).items()})
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
            client.set_terminated(run_id, status="FINISHED")
        self._references[(key, label)] = run_id
        return run_id

    def log_references(
        self, spec: TrialSpec, step: int, references: dict[str, dict[str, Any]]
    ) -> None:
        """Each reference's figures a trial reported, into the reference's own run under
        the trained runs' names: its curve values at this step (so the chart of
        ``curve/diff_threshold`` draws the trained runs against the references' lines), its
        final figures once; trials of several seeds or algorithms on one network share the
        runs, and a step or a final figure already logged is not logged again."""
        now = int(time.time() * 1000)
        for label, figures in references.items():
            run_id = self.reference_run(spec, label)
            metrics = []
            for key, value in figures.items():
                if key in REFERENCE_PARAMS or not loggable(value):
                    continue
                at = logged_step(key, step)
                steps = self._steps(run_id, key)
                if at in steps:
                    continue
                metrics.append(Metric(key, float(value), now, at))
                steps.add(at)
            params = []
            if any(m.key.startswith(eval_key("")) for m in metrics):  # its final figures
                params = [Param(k, str(int(v) if k == BEST_PERIOD else v))
                          for k, v in figures.items() if k in REFERENCE_PARAMS]  # fmt: skip
            if metrics or params:
                self.client.log_batch(run_id, metrics=metrics, params=params)

    def _steps(self, run_id: str, key: str) -> set[int]:
        """The steps at which a run's ``key`` is logged (read from the store once)."""
        if (run_id, key) not in self._logged:
            history = self.client.get_metric_history(run_id, key)
            self._logged[(run_id, key)] = {m.step for m in history}
        return self._logged[(run_id, key)]

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
        """Our metrics and Tune's clock; not Tune's bookkeeping (pid, timestamps…), nor the
        references' figures (their own runs hold them)."""
        return key not in UNTRACKED and split_reference_metric(key) is None
