"""One Tune trial: build SAC, DQN or PPO, train to the stop criteria, checkpoint, evaluate.

The function runs inside the trial's Ray actor. It restores from Tune's latest checkpoint
when there is one (a resumed experiment or a retried trial), reports flat metrics each
iteration, checkpoints every ``checkpoint_frequency`` iterations and at the end. Every
``curve_interval`` iterations the deterministic policy (a recurrent one with its state
carried through each episode) plays the fixed learning-curve episodes, paired with the
threshold rule there; at the end it plays the evaluation episodes beside the baselines,
``threshold`` and ``ceiling``, and the per-episode returns are saved beside the final
checkpoint (:data:`EVALUATION_FILE`). The references' results on both sets of episodes
come from their cache (:mod:`~dnt_rllib.trial.references`), played once per network.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.air.constants import TIME_THIS_ITER_S
from threadpoolctl import threadpool_limits

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.names import (
    ALGORITHM_DIR,
    BEST_PERIOD,
    CURVE_LABELS,
    EVAL_FIELDS,
    EVAL_TABLE,
    EVALUATION_FILE,
    POLICY,
    REFERENCE_RUNS,
    SEARCH_METRIC,
    STATE_FILE,
    THRESHOLD_A,
    THRESHOLD_B,
    TRIAL_FILE,
    WINDOW_EPISODES,
    curve_key,
    eval_key,
    reference_metric,
)
from dnt_rllib.policies import ThresholdFit, load_or_fit
from dnt_rllib.rllib_ext.callbacks import DNTMetricsCallback
from dnt_rllib.rllib_ext.quiet import quiet_ray_logs
from dnt_rllib.rllib_ext.rllib_env import EPISODE_METRICS, RLlibDNTEnv
from dnt_rllib.scoring import Evaluation, Summary, best_periodic, judge, paired, run_policy
from dnt_rllib.trial.references import load_or_play
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.trial.trained_policy import greedy_policy, save_weights

EPISODE_KEYS = ("episode_return_mean", *EPISODE_METRICS)


def flat_metrics(result: dict[str, Any], recent: list[list[float]]) -> dict[str, float]:
    """The numbers worth tracking from one ``algo.train()`` result.

    RLlib reduces ``episode_return_mean`` (and our episode metrics) over the episodes that
    ended in this iteration only — a handful, or none (NaN). ``recent`` keeps, per iteration,
    [episodes, means…] of the last iterations covering ≥ 100 episodes; the reported episode
    metrics are their episode-weighted means, i.e. over the last ~100 training episodes.
    """
    runners = result.get("env_runners", {})
    count = int(runners.get("num_episodes", 0) or 0)
    means = [runners.get(k if k == "episode_return_mean" else f"dnt_{k}") for k in EPISODE_KEYS]
    if count > 0 and all(isinstance(m, int | float) and math.isfinite(m) for m in means):
        recent.append([count, *means])
        while len(recent) > 1 and sum(r[0] for r in recent[1:]) >= WINDOW_EPISODES:
            recent.pop(0)
    out: dict[str, float] = {}
    total = sum(r[0] for r in recent)
    for i, key in enumerate(EPISODE_KEYS, start=1):
        out[key] = sum(r[0] * r[i] for r in recent) / total if total else float("nan")
    out["episodes_in_window"] = float(total)
    learner = result.get("learners", {}).get("default_policy", {})
    for key, value in learner.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"learner/{key}"] = float(value)
    out["env_steps"] = float(result.get("num_env_steps_sampled_lifetime", 0))
    return out


def labelled(evaluation: Evaluation) -> dict[str, Summary]:
    """The evaluation's summaries by label, the best periodic(k) as 'best_periodic'."""
    out = evaluation.by_name()
    best = best_periodic(evaluation.summaries)
    if best is not None:
        out["best_periodic"] = best
    return out


def figures(s: Summary, threshold: tuple[float, ...]) -> dict[str, float]:
    """A policy's final figures under the run vocabulary (``eval/return``…), its paired
    difference to the threshold rule's per-episode ``threshold`` returns among them."""
    out = {eval_key(name): getattr(s, field) for name, field in EVAL_FIELDS.items()}
    diff, ci = paired(s.returns, threshold)
    out[eval_key("diff_threshold")], out[eval_key("diff_threshold_ci95")] = diff, ci
    return out


def evaluate_policy(
    module: Any, spec: TrialSpec, env: DNTSyncEnv, fit: ThresholdFit
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The greedy trained policy, the baselines, ``threshold`` and ``ceiling`` on the same
    seeded episodes, compared paired: (metrics, the per-episode record for JSON). The
    trained policy's figures are ``eval/<name>``; each reference's the same names under
    ``ref/<label>/`` (:func:`~dnt_rllib.names.reference_metric`), for its reference run."""
    seeds = spec.evaluation.seeds
    references = load_or_play(env, fit, seeds)
    played = run_policy(env, greedy_policy(module), POLICY, seeds)
    result = judge([played, *references.summaries], references.notes,
                   spec.evaluation.reference)  # fmt: skip
    by_label = labelled(result)
    threshold = by_label["threshold"].returns
    metrics: dict[str, Any] = figures(by_label[POLICY], threshold)
    for label in REFERENCE_RUNS:
        for key, value in figures(by_label[label], threshold).items():
            metrics[reference_metric(label, key)] = value
    period = int(by_label["best_periodic"].policy[len("periodic(") : -1])
    metrics[reference_metric("best_periodic", BEST_PERIOD)] = period
    metrics[reference_metric("threshold", THRESHOLD_A)] = fit.a
    metrics[reference_metric("threshold", THRESHOLD_B)] = fit.b
    metrics[EVAL_TABLE] = "\n".join(
        [result.table(), "", fit.describe(), *result.notes, f"reference: {result.reference}"]
    )
    record = {
        "seeds": [seeds[0], seeds[-1]],
        "reference": result.reference,
        "threshold": {"a": fit.a, "b": fit.b, "tuning_seeds": list(fit.tuning_seeds)},
        "summaries": [s.to_dict() for s in result.summaries],
    }
    return metrics, record


class LearningCurve:
    """The deterministic policy on fixed seeded episodes during training, paired with
    ``threshold`` on the same episodes. The reference policies' figures there are computed
    once and reported with every point (``ref/<label>/curve/...``), so that each reference
    run draws its line at the trained runs' curve steps."""

    def __init__(self, spec: TrialSpec, env: DNTSyncEnv, fit: ThresholdFit) -> None:
        self.env = env
        self.seeds = spec.evaluation.curve_seeds
        self.interval = spec.evaluation.curve_interval
        self.threshold: tuple[float, ...] = ()
        self.lines: dict[str, float] = {}
        if not self.seeds:  # curve_episodes: 0 turns the curve off
            return
        references = load_or_play(env, fit, self.seeds)
        lines = labelled(judge(references.summaries, references.notes))
        self.threshold = lines["threshold"].returns
        for label in CURVE_LABELS:
            self.lines.update({reference_metric(label, key): value
                               for key, value in self.point(lines[label]).items()})  # fmt: skip

    def due(self, iteration: int, done: bool) -> bool:
        return bool(self.seeds) and (done or iteration == 1 or iteration % self.interval == 0)

    def point(self, played: Summary) -> dict[str, float]:
        """``curve/return`` and ``curve/diff_threshold`` (+ ``_ci95``) of a policy."""
        diff, ci = paired(played.returns, self.threshold)
        return {curve_key("return"): played.mean_return, curve_key("diff_threshold"): diff,
                curve_key("diff_threshold_ci95"): ci}  # fmt: skip

    def __call__(self, module: Any) -> dict[str, float]:
        played = run_policy(self.env, greedy_policy(module), POLICY, self.seeds)
        return {**self.point(played), **self.lines}


#: Tune's progress table shows the first four metrics of a trial's first result.
PROGRESS_COLUMNS = ("time_left_s", "vs_threshold", "episode_return_mean", "env_steps")


def progress_columns(
    metrics: dict[str, Any], progress: dict[str, Any], stop: dict[str, Any]
) -> dict[str, float]:
    """What Tune's progress table shows, in order: the training budget left, the latest
    learning-curve point (the greedy policy's paired Δ vs the threshold rule on the fixed
    curve episodes; NaN before the first), RLlib's exploring return, the env steps."""
    out = {
        "vs_threshold": progress.get("search", float("nan")),
        "episode_return_mean": metrics["episode_return_mean"],
        "env_steps": metrics["env_steps"],
    }
    if "time_total_s" in stop:
        out = {"time_left_s": round(max(0.0, stop["time_total_s"] - metrics["wall_time_s"]), 1),
               **out}  # fmt: skip
    return out


def build_in_trial_dir(config: Any) -> Any:
    """``config.build_algo()`` with this trial's own folder as the Algorithm's log dir.

    An Algorithm is a Tune ``Trainable``; built without Tune's storage context it makes an
    empty ``~/ray_results/<timestamp>`` per trial. Given the trial's context it uses the
    trial's working directory (the folder Tune already runs the trial in) instead.
    """
    return config.algo_class(config=config, storage=tune.get_context().get_storage())


def train_trial(params: dict[str, Any]) -> None:
    """Tune function trainable; ``params`` is the trial's ``config``: its
    :class:`TrialSpec` as a dict, the search space sampled."""
    import torch

    spec = TrialSpec.from_params(params)
    torch.set_num_threads(1)
    threadpool_limits(1)
    quiet_ray_logs()
    algo = build_in_trial_dir(
        build_algorithm_config(spec, RLlibDNTEnv).callbacks(DNTMetricsCallback)
    )
    env = DNTSyncEnv(spec.env)
    fit = load_or_fit(env.config, env.twin)
    curve = LearningCurve(spec, env, fit)
    progress: dict[str, Any] = {"wall_time_s": 0.0, "recent": []}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            algo.restore_from_path(Path(folder) / ALGORITHM_DIR)
            progress = json.loads((Path(folder) / STATE_FILE).read_text())

    stop = spec.stop
    while True:
        started = time.perf_counter()
        result = algo.train()
        elapsed = time.perf_counter() - started
        progress["wall_time_s"] += elapsed
        metrics = flat_metrics(result, progress["recent"])
        sampled = result.get("env_runners", {}).get("num_env_steps_sampled", 0)
        metrics["env_steps_per_s"] = float(sampled) / elapsed if elapsed > 0 else 0.0
        metrics["wall_time_s"] = progress["wall_time_s"]
        metrics["iteration"] = algo.iteration
        done = (
            algo.iteration >= stop.get("training_iteration", float("inf"))
            or metrics["env_steps"] >= stop.get("num_env_steps_sampled_lifetime", float("inf"))
            or progress["wall_time_s"] >= stop.get("time_total_s", float("inf"))
        )
        if curve.due(algo.iteration, done):
            metrics.update(curve(algo.get_module()))
            progress["search"] = metrics[curve_key("diff_threshold")]
        if "search" in progress:  # the schedulers' metric in every result: the latest curve
            metrics[SEARCH_METRIC] = progress["search"]
        metrics = {**progress_columns(metrics, progress, stop), **metrics}
        metrics[TIME_THIS_ITER_S] = elapsed  # Tune's "total time (s)": training seconds
        record = None
        if done:
            final, record = evaluate_policy(algo.get_module(), spec, env, fit)
            metrics.update(final)
        if done or algo.iteration % spec.checkpoint_frequency == 0:
            with tempfile.TemporaryDirectory() as folder:
                algo.save_to_path(Path(folder) / ALGORITHM_DIR)  # for --resume only
                save_weights(algo.get_module(), folder)  # what evaluate loads
                if record is not None:
                    (Path(folder) / EVALUATION_FILE).write_text(json.dumps(record))
                (Path(folder) / STATE_FILE).write_text(json.dumps(progress))
                (Path(folder) / TRIAL_FILE).write_text(json.dumps(spec.to_params(), default=str))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)
        if done:
            break
    algo.stop()
