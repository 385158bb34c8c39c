"""What trials share, prepared before they start: the GRU twin of every network the grid
names, its threshold rule and the references played on the curve and evaluation episodes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from dnt_rllib import shared_storage
from dnt_rllib.experiment.schema import ExperimentConfig


def grid_networks(exp: ExperimentConfig) -> list[Any]:
    """The env config of every network the grid names (cache folder made absolute)."""
    env_grid = {
        key.split(".", 1)[1]: values
        for key, (domain, values) in exp.search_space.items()
        if key.startswith("env.") and domain in ("grid", "choice")
    }
    cache = str(Path(exp.env.twin_cache_dir).resolve())
    return [
        exp.env.replace(twin_cache_dir=cache, **dict(zip(env_grid, combo, strict=True)))
        for combo in itertools.product(*env_grid.values())
    ]


def pretrain_twins(exp: ExperimentConfig) -> None:
    """Train (or find cached) the GRU twin of every network the grid names, before Ray
    starts (a sweep over ε, γ or N shares one twin; each shows its progress bar)."""
    from threadpoolctl import threadpool_limits

    from dnt_rllib.twin import make_twin
    from dnt_rllib.twin.cache import cache_path

    for config in grid_networks(exp):
        with threadpool_limits(1):
            make_twin(config)
        if config.twin != "hold":
            shared_storage.share(cache_path(config))  # found here from before: for the others


def prepare_references(exp: ExperimentConfig) -> list[Any]:
    """Fit the threshold rule of every network the grid names, then play its references on
    the learning-curve and the evaluation episodes (:mod:`dnt_rllib.trial.references`),
    each missing piece a Ray task of one CPU, all in parallel (on a cluster, over its nodes:
    the cache folder is then shared, or mirrored to ``DNT_SHARED_STORAGE``, docs/cluster.md;
    what this machine's cache already holds is published there first); print each fit. Waits, with a
    bar, for the fits and the curve episodes' references, which a trial reads as it starts;
    returns the evaluation episodes' tasks still running, which a trial reads at its end
    (waiting on their file lock if it gets there first)."""
    from dnt_rllib.policies.threshold import fit_key, fit_path, load_or_fit
    from dnt_rllib.trial.references import play_network, references_path

    networks = list({fit_key(c): c for c in grid_networks(exp)}.values())
    unfitted = [(c,) for c in networks if not fit_path(c).is_file()]
    for config in networks:
        shared_storage.share(fit_path(config))
    wait_for("threshold fits", start_tasks(load_or_fit, unfitted))
    fits = [load_or_fit(c) for c in networks]  # cached now: read once each

    def missing(seeds: range) -> list[tuple[Any, ...]]:
        paths = [references_path(c, fit, seeds) for c, fit in zip(networks, fits, strict=True)]
        for path in paths:
            shared_storage.share(path)
        return [(c, seeds) for c, path in zip(networks, paths, strict=True)
                if seeds and not path.is_file()]  # fmt: skip

    curve = start_tasks(play_network, missing(exp.evaluation.curve_seeds))
    evaluation = start_tasks(play_network, missing(exp.evaluation.seeds))
    wait_for("references (curve episodes)", curve)
    for fit in fits:
        print(fit.describe())
    if evaluation:
        print(f"references (evaluation episodes): {len(evaluation)} Ray task(s) running beside "
              "the trials")  # fmt: skip
    return evaluation


def start_tasks(function: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
    """``function(*args)`` for each of ``calls`` as a Ray task of one CPU."""
    import ray

    if not calls:
        return []
    task = ray.remote(num_cpus=1)(function)  # a light import in the worker
    return [task.remote(*args) for args in calls]


def wait_for(desc: str, pending: list[Any]) -> None:
    """Wait for Ray tasks with a bar of those done (nothing shown when there are none);
    a task's error is raised here."""
    import ray
    from tqdm import tqdm

    if not pending:
        return
    with tqdm(total=len(pending), desc=desc, unit="task") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
            bar.update(len(done))
