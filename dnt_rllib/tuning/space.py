"""The experiment as Tune sees it: the param space of its trials, the scheduler and
searcher, and the trials' names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.names import SCHEDULER_TIME, SEARCH_METRIC


def param_space(exp: ExperimentConfig) -> dict[str, Any]:
    """Trial parameters with Tune domains in place of the searched values."""
    from ray import tune

    domains = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda a: tune.uniform(*a),
        "loguniform": lambda a: tune.loguniform(*a),
        "randint": lambda a: tune.randint(*a),
    }
    space = exp.trial_spec().to_params()
    space["env"]["twin_cache_dir"] = str(Path(exp.env.twin_cache_dir).resolve())
    # each algorithm's own settings (a trial merges its algorithm's over the paper's), and
    # the learner the YAML names (none: each trial's default, by its algorithm and model)
    space["training"] = {algo: dict(exp.training.get(algo, {})) for algo in exp.algorithms}
    space["learner"] = {"kind": exp.learner}
    for key, (domain, values) in exp.search_space.items():
        value = domains[domain](values)
        if key in ("algorithm", "seed"):
            space[key] = value
        elif key.split(".", 1)[0] in ("env", "model", "reward", "replay", "learner"):
            section, name = key.split(".", 1)
            space[section][name] = value
        else:
            for algo in exp.algorithms:
                space["training"][algo][key.split(".", 1)[1]] = value
    return space


def search_settings(exp: ExperimentConfig) -> dict[str, Any]:
    """The ``TuneConfig`` scheduler and searcher of ``exp`` (none: Tune's defaults)."""
    out: dict[str, Any] = {}
    if exp.time_budget_s is not None:
        out["time_budget_s"] = exp.time_budget_s
    if exp.scheduler is None and exp.search_alg is None:
        return out
    out.update(metric=SEARCH_METRIC, mode="max")
    if exp.scheduler is not None:
        from ray.tune.schedulers import ASHAScheduler

        out["scheduler"] = ASHAScheduler(
            time_attr=SCHEDULER_TIME,
            max_t=exp.stop["time_total_s"],
            grace_period=exp.scheduler["grace_period"],
            reduction_factor=exp.scheduler["reduction_factor"],
        )
    if exp.search_alg is not None:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(
            seed=exp.search_alg["seed"], n_startup_trials=exp.search_alg["n_startup_trials"]
        )
        points = [flat_point(exp, point) for point in exp.search_alg["points_to_evaluate"]]
        out["search_alg"] = OptunaSearch(sampler=sampler, points_to_evaluate=points or None)
    return out


def flat_point(exp: ExperimentConfig, point: dict[str, Any]) -> dict[str, Any]:
    """A search point keyed as OptunaSearch keys :func:`param_space`'s domains (their
    nested path joined by '/'); a ``training.K`` point sets K for every algorithm."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        section, _, name = key.partition(".")
        if section == "training":
            for algo in exp.algorithms:
                out[f"training/{algo}/{name}"] = value
        else:
            out[f"{section}/{name}" if name else section] = value
    return out


class TrialNamer:
    """Short trial names: algorithm, the searched values, seed and id (e.g. SAC_epsilon=0.9_s1)."""

    #: More searched keys than this name a trial by algorithm, seed and id only.
    MAX_KEYS = 4

    def __init__(self, keys: list[str]) -> None:
        self.keys = [k for k in keys if k not in ("algorithm", "seed")]
        if len(self.keys) > self.MAX_KEYS:
            self.keys = []

    def __call__(self, trial: Any) -> str:
        from dnt_rllib.trial.spec import TrialSpec

        spec = TrialSpec.from_params(trial.config)
        parts = [spec.algorithm]
        for key in self.keys:
            name, value = key.split(".", 1)[1], spec.value(key)
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
        return "_".join([*parts, f"s{spec.seed}", trial.trial_id])
