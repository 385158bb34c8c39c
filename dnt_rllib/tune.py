"""Train SAC / DQN / PPO with Ray Tune, every trial tracked in MLflow.

    python -m dnt_rllib.tune --config tune_configs/sac.yaml
    python -m dnt_rllib.tune --config tune_configs/paper_compare.yaml --resume
    python -m dnt_rllib.tune --config tune_configs/sweep.yaml --address auto   # a Ray cluster

The YAML is validated before Ray starts (schema: ``dnt_rllib/experiment/schema.py``). The
GRU twins the experiment needs are trained first (once, cached), then the threshold rule of
every network is fitted and the references (baselines, threshold, ceiling) are played on its
curve and evaluation episodes, in parallel as Ray tasks (once, cached). Each trial reports per
iteration and ends with an evaluation against the baselines; the best checkpoint of every
trial is tagged on its MLflow run. Open the results with ``mlflow ui --backend-store-uri
sqlite:///mlflow.db`` and ``python -m dnt_rllib.report --experiment NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from dnt_rllib.experiment.schema import (
    SCHEDULER_TIME,
    SEARCH_METRIC,
    ExperimentConfig,
    load_experiment,
    storage_path,
)
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.twin.checkpoint import TwinCheckpointError
from dnt_rllib.validation import ConfigError, check_tracking_uri, key_text, short

METRIC = "episode_return_mean"
#: Seconds an MLflow server or a Ray cluster has to accept a connection before Ray starts.
PROBE_S = 5.0
#: Exit status of an interrupted experiment (128 + SIGINT, as a shell reports Ctrl-C).
INTERRUPTED = 130


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
    space = exp.trial_base()
    space["env"]["twin_cache_dir"] = str(Path(exp.env.twin_cache_dir).resolve())
    space["training"] = {algo: dict(space["training"].get(algo, {})) for algo in exp.algorithms}
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
        cfg = trial.config
        parts = [cfg["algorithm"]]
        for key in self.keys:
            section, name = key.split(".", 1)
            values = cfg[section][cfg["algorithm"]] if section == "training" else cfg[section]
            value = values[name]
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
        return "_".join([*parts, f"s{cfg['seed']}", trial.trial_id])


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

    for config in grid_networks(exp):
        with threadpool_limits(1):
            make_twin(config)


def prepare_references(exp: ExperimentConfig) -> list[Any]:
    """Fit the threshold rule of every network the grid names, then play its references on
    the learning-curve and the evaluation episodes (:mod:`dnt_rllib.trial.references`),
    each missing piece a Ray task of one CPU, all in parallel (on a cluster, over its nodes:
    the cache folder must then be shared, docs/cluster.md); print each fit. Waits, with a
    bar, for the fits and the curve episodes' references, which a trial reads as it starts;
    returns the evaluation episodes' tasks still running, which a trial reads at its end
    (waiting on their file lock if it gets there first)."""
    from dnt_rllib.policies.threshold import fit_key, fit_path, load_or_fit
    from dnt_rllib.trial.references import play_network, references_path
    from dnt_rllib.trial.trainable import seeds_of

    networks = list({fit_key(c): c for c in grid_networks(exp)}.values())
    unfitted = [(c,) for c in networks if not fit_path(c).is_file()]
    wait_for("threshold fits", start_tasks(load_or_fit, unfitted))
    fits = [load_or_fit(c) for c in networks]  # cached now: read once each

    def missing(kind: str) -> list[tuple[Any, ...]]:
        seeds = seeds_of(exp.trial_base(), kind)
        return [(c, seeds) for c, fit in zip(networks, fits, strict=True)
                if seeds and not references_path(c, fit, seeds).is_file()]  # fmt: skip

    curve = start_tasks(play_network, missing("curve"))
    evaluation = start_tasks(play_network, missing("evaluation"))
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


def check_rllib(exp: ExperimentConfig) -> None:
    """Let RLlib validate each algorithm's config before Ray starts (one line on error)."""
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.settings import build_algorithm_config
    from dnt_rllib.trial.trained_policy import build_module

    for algo in exp.algorithms:
        params = {**exp.trial_base(), "algorithm": algo}
        try:
            build_algorithm_config(params, RLlibDNTEnv).validate()
        except Exception as err:  # RLlib raises ValueError / TypeError with long texts
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"experiment.training.{algo}: RLlib refuses it: {first}") from None
        try:  # the policy module itself, as each trial builds it (model values)
            build_module(params)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"experiment.model: RLlib cannot build the {algo} module: {first[:200]}"
            ) from None


def trial_resources(exp: ExperimentConfig) -> Any:
    """The placement group of one trial, as RLlib requests it for the trial's algorithm
    (``Algorithm.default_resource_request``): the trial process (1 CPU, and
    ``num_gpus_per_learner`` GPUs when it learns itself, ``num_learners: 0``), one bundle
    per env runner (1 CPU) and one per learner actor (``num_gpus_per_learner`` GPUs, or
    1 CPU without a GPU). Every algorithm of the experiment asks the same."""
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.settings import build_algorithm_config

    config = build_algorithm_config(
        {**exp.trial_base(), "algorithm": exp.algorithms[0]}, RLlibDNTEnv
    )
    return config.algo_class.default_resource_request(config)


def check_address(address: str | None, probe_s: float = PROBE_S) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) cluster address must accept a connection
    within ``probe_s`` seconds: Ray itself waits for minutes, deaf to SIGTERM. ``auto`` and
    ``local`` are left to Ray, which refuses them at once when there is nothing to join."""
    import socket

    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--address {key_text(address)}: must be HOST:PORT, ray://HOST:PORT, auto or local"
        )
    try:
        socket.create_connection((host, int(port)), timeout=probe_s).close()
    except OSError as err:
        raise ConfigError(
            f"--address {key_text(address)}: no Ray cluster answers there "
            f"({err.strerror or err}, within {probe_s:g} s)"
        ) from None


def check_resources(exp: ExperimentConfig, have: dict[str, float], where: str) -> None:
    """Refuse a trial that needs more CPUs or GPUs than ``have`` (``where`` says whose):
    Tune would keep it PENDING for ever."""
    need = trial_resources(exp).required_resources
    fields = {"GPU": "num_gpus_per_learner", "CPU": "num_env_runners, num_learners"}
    for kind, field in fields.items():
        if need.get(kind, 0) > have.get(kind, 0):
            raise ConfigError(
                f"experiment.resources ({field}): a trial needs {kind} {need.get(kind, 0):g}, "
                f"{where} has {kind} {have.get(kind, 0):g}; lower them, or run where there "
                "are more (--address)"
            )


def local_resources() -> dict[str, float]:
    """The CPUs and GPUs a local Ray would find (os.cpu_count, CUDA devices torch sees)."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def experiment_path(exp: ExperimentConfig) -> str:
    return f"{exp.storage_path.rstrip('/')}/{exp.name}"


LOCK_FILE = ".dnt_tune.lock"
#: The experiment's YAML as parsed, saved when it starts: ``--resume`` compares against it.
STARTED_FILE = "dnt_experiment.json"


def _normalised(raw: Any) -> Any:
    """A parsed YAML mapping as JSON gives it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(raw, default=str, sort_keys=True))


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old → new`` for each leaf where two parsed configs differ (dotted keys)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted({*old, *new}, key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                out.append(f"{name}: {short(old[key])} → (removed)")
            elif key not in old:
                out.append(f"{name}: (absent) → {short(new[key])}")
            else:
                out += differences(old[key], new[key], name)
        return out
    return [] if old == new else [f"{prefix or '(file)'}: {short(old)} → {short(new)}"]


def save_started(exp: ExperimentConfig) -> None:
    """Record the experiment's parsed YAML in its folder (local storage only)."""
    if "://" not in exp.storage_path:
        path = Path(experiment_path(exp)) / STARTED_FILE
        path.write_text(json.dumps(_normalised(exp.raw), indent=1, sort_keys=True))


def check_resume_config(exp: ExperimentConfig) -> str | None:
    """Refuse ``--resume`` with a YAML that differs from the one the experiment started with
    (Tune resumes the saved trials' config, whatever the file now says), naming the first
    differences. A note instead when the experiment did not record it (older, or remote)."""
    if "://" in exp.storage_path:
        return f"note: {exp.storage_path} is remote; --resume cannot compare the config"
    path = Path(experiment_path(exp)) / STARTED_FILE
    if not path.is_file():
        return f"note: {path} is missing (an older experiment); the config is not compared"
    try:
        started = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"--resume: {path} is damaged; cannot compare the config") from None
    changed = differences(started, _normalised(exp.raw))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ConfigError(
            f"--resume: {exp.source} is not the config this experiment started with "
            f"({'; '.join(changed[:3])}{more}); Tune would resume the old one: restore the "
            "file, or start a new experiment under another name"
        )
    return None


def check_exists(exp: ExperimentConfig, resume: bool, exists: bool) -> None:
    """Refuse to start over an experiment, or to resume one that is not there."""
    if resume and not exists:
        raise ConfigError(f"--resume: no experiment to resume at {experiment_path(exp)}")
    if exists and not resume:
        raise ConfigError(
            f"experiment.name = {short(exp.name)}: {experiment_path(exp)} already holds this "
            "experiment; pass --resume to continue it, or choose another name"
        )


def lock_experiment(exp: ExperimentConfig) -> Any:
    """Take ``<experiment folder>/.dnt_tune.lock`` (local storage), or refuse in one line if
    another ``tune`` process holds it: two runs never share an experiment folder. The lock
    is released when the returned object is dropped or the process ends. Remote storage
    (``s3://…``) is not locked."""
    if "://" in exp.storage_path:
        return None
    from filelock import FileLock, Timeout

    folder = Path(experiment_path(exp))
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"experiment.name = {short(exp.name)}: another `tune` process is running {folder} "
            "now; wait for it, or choose another name"
        ) from None
    return lock


def run(exp: ExperimentConfig, resume: bool, address: str | None) -> int:
    import ray
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    # Tune's own CSV and JSON results, not its TensorBoard files (MLflow tracks the runs),
    # and so no "To visualize your results with TensorBoard" hint
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"

    from dnt_rllib.tracking.mlflow_runs import MLflowTracking, git_commit
    from dnt_rllib.trial.trainable import train_trial

    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=True,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
        )
    except (ConnectionError, RuntimeError, ValueError) as err:  # e.g. auto, no cluster
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: --address {address}: cannot start or join Ray ({first[:200]})",
              file=sys.stderr)  # fmt: skip
        return 2
    if address is not None:  # a cluster may add nodes later: say so, do not refuse
        try:
            check_resources(exp, ray.cluster_resources(), "the cluster now")
        except ConfigError as err:
            print(f"note: {err}; trials wait until nodes with them join", file=sys.stderr)
    try:
        background = prepare_references(exp)  # the evaluation episodes' tasks
    except ray.exceptions.RayTaskError as err:
        cause = err.cause if isinstance(err.cause, ConfigError | TwinCheckpointError) else err
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        print(f"error: threshold fit or references: {first[:300]}", file=sys.stderr)
        return 2
    trainable = tune.with_resources(train_trial, trial_resources(exp))
    path = experiment_path(exp)
    if resume:
        tuner = tune.Tuner.restore(
            path, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tracking = MLflowTracking(
            exp.tracking_uri,
            exp.mlflow_experiment,
            tags={
                "git_commit": git_commit(),
                "config_file": exp.source,
                "tune_experiment": path,
            },
        )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(exp),
            tune_config=tune.TuneConfig(
                **search_settings(exp),
                num_samples=exp.num_samples,
                max_concurrent_trials=exp.max_concurrent_trials,
                trial_name_creator=TrialNamer(list(exp.search_space)),
                trial_dirname_creator=TrialNamer(list(exp.search_space)),
            ),
            run_config=tune.RunConfig(
                name=exp.name,
                storage_path=exp.storage_path,
                # the most recent N: the final, scored checkpoint is always among them (a
                # score attribute would keep N best plus the latest, N + 1 folders)
                checkpoint_config=tune.CheckpointConfig(num_to_keep=exp.checkpoint_num_to_keep),
                failure_config=tune.FailureConfig(max_failures=exp.max_failures),
                callbacks=[tracking, CSVLoggerCallback(), JsonLoggerCallback()],
                verbose=1,
            ),
        )
    watch = InterruptWatch()
    try:
        results = tuner.fit()
    finally:
        interrupted = watch.happened()
    if background:  # the tasks' references, held until the trials are done
        ray.wait(background, num_returns=len(background), timeout=0)
    code = summarise(results, exp, interrupted=interrupted)
    if interrupted:
        print(
            f"error: interrupted (Ctrl-C): the trials above without an evaluation were stopped "
            f"and their MLflow runs marked KILLED; continue with python -m dnt_rllib.tune "
            f"--config {exp.source} --resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    return code


class InterruptWatch:
    """Whether Tune caught a Ctrl-C (SIGINT, or SIGUSR1) during ``fit``.

    Tune's handler ends the run gracefully (trials stopped, state saved) and ``fit`` returns
    as if the experiment had ended; it then puts back the SIGINT handler it found. Installing
    a handler of our own before ``fit`` and finding it back afterwards tells that it ran.
    A second Ctrl-C reaches our handler: it stops at once (``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        import signal

        def second_interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        self._handler = second_interrupt
        self._before = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, second_interrupt)

    def happened(self) -> bool:
        """Whether Tune's handler ran; restores the handler found before."""
        import signal

        now = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._before)
        return now is self._handler


def scored_checkpoint(result: Any) -> Path | None:
    """The absolute folder of the trial's final checkpoint: the one its evaluation scored."""
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is None or "://" in str(checkpoint.path):
        return None if checkpoint is None else checkpoint.path
    return Path(checkpoint.path).resolve()


def summarise(results: Any, exp: ExperimentConfig, interrupted: bool = False) -> int:
    """Print each trial's final evaluation, where its scored checkpoint is and how to evaluate
    it again, and tag its MLflow run with that checkpoint (``best_checkpoint``). After an
    ``interrupted`` run, a trial without its evaluation was stopped by the interrupt: it is
    said so, and its MLflow run is marked KILLED."""
    from dnt_rllib.tracking.mlflow_runs import MLflowTracking, runs_url, ui_command

    tracking = MLflowTracking(exp.tracking_uri, exp.mlflow_experiment, tags={})
    failed = 0
    checkpoints: list[tuple[str, Any]] = []
    models: list[tuple[str, str]] = []
    first = exp.evaluation_seed
    print(
        f"\nFinal evaluation on episodes {first}–{first + exp.evaluation_episodes - 1}, every "
        "policy on the same ones (the threshold rule was fitted on other episodes):"
    )
    print(
        "| trial | algorithm | seed | policy return | Δ vs threshold (paired 95% CI) "
        "| share never→ceiling | threshold | best periodic | greedy | ceiling |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        if result.error is not None:
            failed += 1
            print(
                f"| {Path(result.path).name} | failed: {str(result.error).splitlines()[0][:80]} |"
            )
            continue
        m, cfg = result.metrics, result.config
        if not m or not cfg:  # never reported: pending when the experiment ended
            name = Path(result.path).name if result.path else m.get("trial_id", "?")
            print(f"| {name} | not started{'; --resume starts it' if interrupted else ''} |")
            continue
        if "eval/policy/mean_return" not in m and interrupted:
            tracking.set_status(m["trial_id"], "KILLED")
            print(
                f"| {m['trial_id']} | {cfg['algorithm']} | {cfg['seed']} | interrupted after "
                f"{m.get('wall_time_s', 0):.0f} s of training; --resume continues it |"
            )
            continue
        if "eval/policy/mean_return" not in m:  # ASHA or the time budget ended it early
            print(
                f"| {m['trial_id']} | {cfg['algorithm']} | {cfg['seed']} | stopped after "
                f"{m.get('wall_time_s', 0):.0f} s of training, {SEARCH_METRIC} = "
                f"{m.get(SEARCH_METRIC, float('nan')):+.2f} |"
            )
            continue
        scored = scored_checkpoint(result)
        if scored is not None:
            tracking.set_tag(m["trial_id"], "best_checkpoint", str(scored))
            checkpoints.append((m["trial_id"], scored))
            if isinstance(scored, Path):  # a local folder (not s3://…): its MLflow model
                models.append((m["trial_id"], tracking.log_model(m["trial_id"], scored)))

        def value(key: str, m: dict = m) -> float:
            return m.get(key, float("nan"))

        cols = [
            f"{value('eval/policy/mean_return'):.2f}",
            f"{value('eval/policy/diff_threshold'):+.2f} ± "
            f"{value('eval/policy/diff_threshold_ci95'):.2f}",
            f"{100 * value('eval/policy/share'):.1f} %",
            *(f"{value(f'eval/{p}/mean_return'):.2f}"
              for p in ("threshold", "best_periodic", "greedy", "ceiling")),
        ]  # fmt: skip
        print(
            f"| {m['trial_id']} | {cfg['algorithm']} | {cfg['seed']} | " + " | ".join(cols) + " |"
        )
    if checkpoints:
        print("\nTrained policies (the checkpoints scored above):")
        for trial_id, path in checkpoints:
            print(f"  {trial_id}: {path}")
        ref = exp.evaluation_reference
        ref = f" --reference {shlex.quote(ref)}" if ref else ""
        print(
            "Evaluate one again on the same episodes: python -m dnt_rllib.evaluate "
            f"--checkpoint {checkpoints[0][1]} --episodes {exp.evaluation_episodes} "
            f"--seed {exp.evaluation_seed}{ref}"
        )
    if models:
        print(f"MLflow models of the policies (after mlflow.set_tracking_uri("
              f"{exp.tracking_uri!r}), mlflow.pyfunc.load_model(uri).predict(observations) "
              "→ greedy actions):")  # fmt: skip
        for trial_id, uri in models:
            print(f"  {trial_id}: {uri}")
    print(
        f"\nMLflow: {exp.tracking_uri} (experiment {exp.mlflow_experiment!r}); "
        f"Tune: {experiment_path(exp)}"
    )
    command = ui_command(exp.tracking_uri)
    url = runs_url(exp.tracking_uri, tracking.experiment_id)
    print(f"Open the runs: {command}\n  then {url}" if command else f"Open the runs: {url}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnt_rllib.tune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted experiment of this config from its checkpoints",
    )
    parser.add_argument(
        "--storage-path",
        default=os.environ.get("DNT_STORAGE_PATH"),
        help="override the YAML's storage_path (e.g. s3://bucket/ray_results on a cluster)",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)",
    )
    args = parser.parse_args(argv)
    from dnt_rllib.rllib_ext.quiet import quiet_ray_logs

    quiet_ray_logs()
    try:
        exp = load_experiment(args.config)
        if args.storage_path:
            exp = dataclasses.replace(exp, storage_path=storage_path(args.storage_path))
        check_rllib(exp)
        check_cache_dir(exp.env)
        check_address(args.address or None)
        if not args.address:
            check_resources(exp, local_resources(), "this machine")
        check_tracking_uri(
            exp.tracking_uri, "experiment.mlflow.tracking_uri", write=True, probe_s=PROBE_S
        )
        from ray import tune

        check_exists(exp, args.resume, tune.Tuner.can_restore(experiment_path(exp)))
        note = check_resume_config(exp) if args.resume else None
        if note:
            print(note, file=sys.stderr)
        pretrain_twins(exp)
        lock = lock_experiment(exp)  # two identical commands never share the folder
        # the folder again, now that no other `tune` can write it
        check_exists(exp, args.resume, tune.Tuner.can_restore(experiment_path(exp)))
        if not args.resume:
            save_started(exp)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C) before training started", file=sys.stderr)
        return INTERRUPTED
    except (ConfigError, TwinCheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2
    try:
        return run(exp, args.resume, args.address or None)
    except KeyboardInterrupt:  # a second Ctrl-C: Tune did not finish saving
        print(
            "error: interrupted twice (Ctrl-C): stopped at once; --resume continues from the "
            "last saved state",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        if lock is not None:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
