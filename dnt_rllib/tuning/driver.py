"""One ``tune`` run on Ray: prepare what trials share, fit the Tuner (new or resumed) with
MLflow tracking, tell a Ctrl-C apart from the end, and summarise."""

from __future__ import annotations

import os
import sys
from typing import Any

from dnt_rllib import cli, shared_storage
from dnt_rllib.common import first_line
from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.names import TUNE_TAG
from dnt_rllib.tuning.checks import check_resources, trial_resources
from dnt_rllib.tuning.killed import retry_killed_trials
from dnt_rllib.tuning.prepare import prepare_references
from dnt_rllib.tuning.space import TrialNamer, param_space, search_settings
from dnt_rllib.tuning.state import experiment_path
from dnt_rllib.tuning.summary import summarise
from dnt_rllib.twin.checkpoint import TwinCheckpointError
from dnt_rllib.validation import ConfigError

#: Exit status of an interrupted experiment (128 + SIGINT, as a shell reports Ctrl-C).
INTERRUPTED = 130


def run(exp: ExperimentConfig, resume: bool, address: str | None) -> int:
    import ray
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    # Tune's own CSV and JSON results, not its TensorBoard files (MLflow tracks the runs),
    # and so no "To visualize your results with TensorBoard" hint
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"

    from dnt_rllib.tracking.mlflow_runs import MLflowTracking, git_commit
    from dnt_rllib.trial.trainable import train_trial

    if not ray.is_initialized():
        try:
            start_ray(address)
        except ConfigError as err:
            return cli.refuse(err)
    if address is not None:  # a cluster may add nodes later: say so, do not refuse
        try:
            check_resources(exp, ray.cluster_resources(), "the cluster now")
        except ConfigError as err:
            print(f"note: {err}; trials wait until nodes with them join", file=sys.stderr)
    try:
        background = prepare_references(exp)  # the evaluation episodes' tasks
    except ray.exceptions.RayTaskError as err:
        cause = err.cause if isinstance(err.cause, ConfigError | TwinCheckpointError) else err
        return cli.refuse(f"threshold fit or references: {first_line(cause)[:300]}")
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
                TUNE_TAG: path,
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
    retry_killed_trials()  # a trial Ray's memory monitor killed is retried, not fatal
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


def start_ray(address: str | None) -> None:
    """Start a local Ray, or join the cluster at ``address``; its workers get one thread
    each and this process's ``DNT_SHARED_STORAGE``. Refuses (one line) when Ray cannot."""
    import ray

    env_vars = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = shared_storage.shared_root()
    if root is not None:
        env_vars[shared_storage.SHARED_STORAGE_ENV] = root
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=True,
            runtime_env={"env_vars": env_vars},
        )
    except (ConnectionError, RuntimeError, ValueError) as err:  # e.g. auto, no cluster
        raise ConfigError(f"--address {address}: cannot start or join Ray "
                          f"({first_line(err)[:200]})") from None  # fmt: skip


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
