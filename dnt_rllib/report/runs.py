"""What the report reads of an MLflow experiment: one `Run` per Tune trial."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from dnt_rllib.config import NOT_EPISODE_FIELDS
from dnt_rllib.names import (
    BEST_PERIOD,
    CURVE_LABELS,
    EVALUATION_FILE,
    POLICY,
    REFERENCE_OF_TAG,
    REFERENCE_TAG,
    TUNE_TAG,
    curve_key,
    eval_key,
)
from dnt_rllib.validation import ConfigError, key_text, short


@dataclass
class Curve:
    """A metric against env steps and training wall time, at the iterations it was logged."""

    steps: np.ndarray
    wall: np.ndarray
    values: np.ndarray

    def first_reaching(self, level: float) -> tuple[float, float] | None:
        """(env steps, wall s) when the values first reached ``level``, or None."""
        hits = np.flatnonzero(self.values >= level)
        return (float(self.steps[hits[0]]), float(self.wall[hits[0]])) if len(hits) else None


@dataclass
class ReferenceRun:
    """A reference policy's MLflow run: its final figures, params and curve line."""

    metrics: dict[str, float]
    params: dict[str, str]

    @property
    def line(self) -> float:
        """Its return on the curve episodes (constant: logged at the trained runs' steps)."""
        return self.metrics.get(curve_key("return"), float("nan"))


@dataclass
class Run:
    """What the report needs of one MLflow run (one Tune trial)."""

    algorithm: str
    seed: str
    params: dict[str, str]
    metrics: dict[str, float]
    training: Curve  # RLlib's exploring training return (100-episode mean)
    evaluation: Curve  # the deterministic policy's mean return on the curve episodes
    vs_threshold: Curve  # its paired difference to the threshold rule there
    status: str = "FINISHED"
    #: label → the reference run's final figures (``eval/<name>``) and params, on the same
    #: network and episodes (the runs tagged with this run's ``REFERENCE_OF_TAG``)
    reference_runs: dict[str, ReferenceRun] = field(default_factory=dict)
    run_id: str = ""
    #: label → (mean, 95 % CI) of the policy's per-episode difference to a policy of a
    #: reference JSON on the same evaluation episodes (:func:`pair_with_reference`)
    paired_with: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: label → that reference policy's own figures on the run's episodes: its
    #: ``evaluate --json`` summary (mean return, sum rate, sync gap and fraction) and its
    #: paired difference to the run's threshold rule (``diff_threshold`` and ``_ci95``)
    references: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED" and eval_key("return") in self.metrics

    def final(self, label: str, key: str = "return") -> float:
        """The final figure ``key`` (``eval/<key>``) of this run's policy (``label``
        ``"policy"``) or of a reference run's on the same episodes; NaN if none."""
        if label == POLICY:
            return self.metrics.get(eval_key(key), float("nan"))
        ref = self.reference_runs.get(label)
        return ref.metrics.get(eval_key(key), float("nan")) if ref else float("nan")

    @property
    def lines(self) -> dict[str, float]:
        """The references' learning-curve returns on this run's curve episodes."""
        return {label: self.reference_runs[label].line for label in CURVE_LABELS
                if label in self.reference_runs and not math.isnan(
                    self.reference_runs[label].line)}  # fmt: skip

    @property
    def best_period(self) -> int | None:
        ref = self.reference_runs.get("best_periodic")
        return int(ref.params[BEST_PERIOD]) if ref and BEST_PERIOD in ref.params else None


def _history(client: mlflow.MlflowClient, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def _curve(steps: dict, wall: dict, values: dict) -> Curve:
    common = sorted(set(values) & set(steps) & set(wall))
    return Curve(
        np.array([steps[i] for i in common]),
        np.array([wall[i] for i in common]),
        np.array([values[i] for i in common]),
    )


def load_runs(
    client: mlflow.MlflowClient,
    experiment: str,
    tune_experiment: str | Sequence[str] | None = None,
) -> list[Run]:
    """Every dnt_rllib run of one Tune experiment in MLflow ``experiment``, with its curves
    (failed ones too, marked). Runs of one MLflow experiment may come from several Tune
    experiments (the same name under another storage path): then ``tune_experiment`` (the
    folder, as tagged) must say which, and nothing is merged unless it names several
    folders (e.g. a sweep and the extra seeds of one of its points)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments()))
        raise ConfigError(
            f"--experiment {short(experiment)}: no such MLflow experiment; have: {names}"
        )
    found = [
        r
        for r in client.search_runs([exp.experiment_id], max_results=10_000)
        if "algorithm" in r.data.tags
    ]
    folders = sorted({r.data.tags.get(TUNE_TAG, "?") for r in found})
    if tune_experiment is not None:
        wanted = [tune_experiment] if isinstance(tune_experiment, str) else list(tune_experiment)
        for folder in wanted:
            if folder not in folders:
                raise ConfigError(
                    f"--tune-experiment {folder}: no run of MLflow experiment "
                    f"{short(experiment)} comes from it; its runs come from: {', '.join(folders)}"
                )
        found = [r for r in found if r.data.tags.get(TUNE_TAG) in wanted]
    elif len(folders) > 1:
        raise ConfigError(
            f"--experiment {short(experiment)}: its runs come from {len(folders)} Tune experiments "
            f"({', '.join(folders)}); choose one with --tune-experiment FOLDER"
        )
    references = reference_runs(client, exp.experiment_id)
    runs = []
    for r in found:
        run_id = r.info.run_id
        steps = _history(client, run_id, "env_steps")
        wall = _history(client, run_id, "wall_time_s")
        runs.append(
            Run(
                algorithm=r.data.tags["algorithm"],
                seed=r.data.params.get("seed", "?"),
                params=dict(r.data.params),
                metrics=dict(r.data.metrics),
                training=_curve(steps, wall, _history(client, run_id, "episode_return_mean")),
                evaluation=_curve(steps, wall, _history(client, run_id, curve_key("return"))),
                vs_threshold=_curve(
                    steps, wall, _history(client, run_id, curve_key("diff_threshold"))
                ),
                status=r.info.status,
                run_id=run_id,
                reference_runs=references.get(r.data.tags.get(REFERENCE_OF_TAG, ""), {}),
            )
        )
    if not runs:
        raise ConfigError(f"--experiment {short(experiment)}: holds no dnt_rllib runs")
    return runs


def reference_runs(
    client: mlflow.MlflowClient, experiment_id: str
) -> dict[str, dict[str, ReferenceRun]]:
    """The experiment's reference runs: what they were scored on (their
    ``REFERENCE_OF_TAG``) → label → run. Runs of several Tune experiments on the same
    network and episodes hold the same figures (the references are played once, cached)."""
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{REFERENCE_TAG}` != ''", max_results=10_000
    )
    out: dict[str, dict[str, ReferenceRun]] = defaultdict(dict)
    for r in found:
        label, key = r.data.tags[REFERENCE_TAG], r.data.tags.get(REFERENCE_OF_TAG, "")
        if eval_key("return") in r.data.metrics or label not in out[key]:
            out[key][label] = ReferenceRun(dict(r.data.metrics), dict(r.data.params))
    return dict(out)


def varying(runs: list[Run]) -> list[str]:
    """The swept params: env fields that differ between runs, and other params that differ
    between runs of the same algorithm (not merely between SAC's and DQN's settings)."""
    keys = set().union(*(r.params for r in runs)) - {"algorithm", "seed"}
    by_algo: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_algo[r.algorithm].append(r)

    def differs(key: str, members: list[Run]) -> bool:
        return len({r.params.get(key) for r in members}) > 1

    return sorted(
        k
        for k in keys
        if (k.startswith("env.") and differs(k, runs))
        or any(differs(k, members) for members in by_algo.values())
    )


def setting_of(run: Run, keys: list[str]) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={run.params.get(k)}" for k in keys) or "default"


def group(runs: list[Run], keys: list[str]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (algorithm, setting)."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        groups[(r.algorithm, setting_of(r, keys))].append(r)
    return dict(sorted(groups.items()))


#: The figures of a reference policy the report shows beside its paired differences.
REFERENCE_FIGURES = ("mean_return", "sum_rate", "sync_gap", "sync_fraction")


def pair_with_reference(
    client: mlflow.MlflowClient,
    runs: list[Run],
    references: list[Path],
    labels: tuple[str, ...],
) -> list[str]:
    """Pair every finished run's policy with the ``labels`` policies of a reference (the
    JSON of ``python -m dnt_rllib.evaluate --json`` on the same network and episodes, e.g.
    with ``--lookahead``), episode by episode, from the run's ``evaluation.json`` artifact.
    With several references (one per network of a sweep) each run takes the one of its
    network. Returns the labels found; refuses (one line) a run no reference matches, or
    a reference of other episodes."""
    from dnt_rllib.scoring import paired

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    refs = [_read_reference(path) for path in references]
    found = [label for label in labels if any(label in ref.returns for ref in refs)]
    for run in runs:
        if not run.finished:
            continue
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = client.download_artifacts(run.run_id, EVALUATION_FILE, folder)
            except Exception:  # an older run without the artifact: nothing to pair
                continue
            record = json.loads(Path(path).read_text())
        differs = [ref.differs(run) for ref in refs]
        if all(differs):
            key = differs[0]
            raise ConfigError(
                f"{refs[0].where}: another network than {run.algorithm} seed {run.seed}'s "
                f"(env.{key} = {short(refs[0].config[key])} there)"
            )
        ref = refs[differs.index(None)]
        seeds = record["seeds"]
        if seeds != [ref.first, ref.first + ref.count - 1]:
            raise ConfigError(
                f"{ref.where}: episodes {ref.first}..{ref.first + ref.count - 1}, but "
                f"{run.algorithm} seed {run.seed} was evaluated on {seeds[0]}..{seeds[1]}"
            )
        played = {s["policy"]: s["returns"] for s in record["summaries"]}
        for label in found:
            if label not in ref.returns:
                continue
            run.paired_with[label] = paired(played["policy"], ref.returns[label])
            diff, ci = paired(ref.returns[label], played["threshold"])
            run.references[label] = {
                **ref.scalars[label],
                "diff_threshold": diff,
                "diff_threshold_ci95": ci,
            }
    return found


@dataclass
class Reference:
    """An ``evaluate --json`` output: its episodes, network, per-policy returns and
    per-policy figures (:data:`REFERENCE_FIGURES`)."""

    where: str
    first: int
    count: int
    config: dict[str, Any]
    returns: dict[str, list[float]]
    scalars: dict[str, dict[str, float]]

    def differs(self, run: Run) -> str | None:
        """The first field of the episode's network that ``run`` sets otherwise, or None."""
        for key, value in self.config.items():
            if key not in NOT_EPISODE_FIELDS and str(value) != run.params.get(
                f"env.{key}", str(value)
            ):
                return key
        return None


def _read_reference(path: Path) -> Reference:
    where = f"--reference-json {path}"
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
        summaries = {str(s["policy"]): s for s in ref["summaries"]}
        returns = {name: s["returns"] for name, s in summaries.items()}
        scalars = {
            name: {k: float(s[k]) for k in REFERENCE_FIGURES} for name, s in summaries.items()
        }
        first, count, config = int(ref["seed"]), int(ref["episodes"]), ref["config"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{where}: not an `evaluate --json` output ({str(err)[:200]})") from None
    if not isinstance(config, dict) or not set(config) - set(NOT_EPISODE_FIELDS):
        raise ConfigError(
            f"{where}: config must map the network's SystemConfig fields to their values, "
            "as `evaluate --json` writes it (without them it would pair with any network)"
        )
    for name, values in returns.items():
        if (
            not isinstance(values, list)
            or len(values) != count
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise ConfigError(
                f"{where}: {key_text(name)}'s returns must be {count} numbers, one per episode"
            )
    return Reference(where, first, count, config, returns, scalars)
