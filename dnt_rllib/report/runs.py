"""What the report reads of an MLflow experiment: one `Run` per Tune trial."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import mlflow
import numpy as np

from dnt_rllib.validation import ConfigError

#: The lines under the learning curve (``curve/<label>/mean_return``, one value per run).
CURVE_LINES = ("never", "greedy", "best_periodic", "threshold", "ceiling")


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
    lines: dict[str, float] = field(default_factory=dict)  # curve/<label>/mean_return

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED" and "eval/policy/mean_return" in self.metrics

    def final(self, label: str, key: str = "mean_return") -> float:
        return self.metrics.get(f"eval/{label}/{key}", float("nan"))


def _history(client: mlflow.MlflowClient, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def _curve(steps: dict, wall: dict, values: dict) -> Curve:
    common = sorted(set(values) & set(steps) & set(wall))
    return Curve(
        np.array([steps[i] for i in common]),
        np.array([wall[i] for i in common]),
        np.array([values[i] for i in common]),
    )


TUNE_TAG = "tune_experiment"  # the Tune experiment folder a run's trial belongs to


def load_runs(
    client: mlflow.MlflowClient, experiment: str, tune_experiment: str | None = None
) -> list[Run]:
    """Every dnt_rllib run of one Tune experiment in MLflow ``experiment``, with its curves
    (failed ones too, marked). Runs of one MLflow experiment may come from several Tune
    experiments (the same name under another storage path): then ``tune_experiment`` (the
    folder, as tagged) must say which, and nothing is merged."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments()))
        raise ConfigError(f"--experiment {experiment!r}: no such MLflow experiment; have: {names}")
    found = [
        r
        for r in client.search_runs([exp.experiment_id], max_results=10_000)
        if "algorithm" in r.data.tags
    ]
    folders = sorted({r.data.tags.get(TUNE_TAG, "?") for r in found})
    if tune_experiment is not None:
        found = [r for r in found if r.data.tags.get(TUNE_TAG) == tune_experiment]
        if not found:
            raise ConfigError(
                f"--tune-experiment {tune_experiment}: no run of MLflow experiment "
                f"{experiment!r} comes from it; its runs come from: {', '.join(folders)}"
            )
    elif len(folders) > 1:
        raise ConfigError(
            f"--experiment {experiment!r}: its runs come from {len(folders)} Tune experiments "
            f"({', '.join(folders)}); choose one with --tune-experiment FOLDER"
        )
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
                evaluation=_curve(
                    steps, wall, _history(client, run_id, "curve/policy/mean_return")
                ),
                vs_threshold=_curve(
                    steps, wall, _history(client, run_id, "curve/policy/diff_threshold")
                ),
                status=r.info.status,
                lines={
                    k: r.data.metrics[f"curve/{k}/mean_return"]
                    for k in CURVE_LINES
                    if f"curve/{k}/mean_return" in r.data.metrics
                },
            )
        )
    if not runs:
        raise ConfigError(f"--experiment {experiment!r}: holds no dnt_rllib runs")
    return runs


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
