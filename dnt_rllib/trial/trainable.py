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

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.experiment.schema import SEARCH_METRIC
from dnt_rllib.policies import ThresholdFit, load_or_fit
from dnt_rllib.rllib_ext.callbacks import DNTMetricsCallback
from dnt_rllib.rllib_ext.quiet import quiet_ray_logs
from dnt_rllib.rllib_ext.rllib_env import EPISODE_METRICS, RLlibDNTEnv
from dnt_rllib.scoring import Evaluation, Summary, best_periodic, judge, paired, run_policy
from dnt_rllib.tracking.mlflow_runs import EVALUATION_FILE
from dnt_rllib.trial.references import load_or_play
from dnt_rllib.trial.settings import build_algorithm_config
from dnt_rllib.trial.trained_policy import ALGORITHM_DIR, TRIAL_FILE, greedy_policy, save_weights

STATE_FILE = "progress.json"


EPISODE_KEYS = ("episode_return_mean", *EPISODE_METRICS)
WINDOW_EPISODES = 100


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


#: The policies whose final evaluation is logged as ``eval/<label>/<key>`` metrics.
EVAL_LABELS = ("never", "always", "greedy", "threshold", "ceiling", "free_sync")
EVAL_KEYS = ("mean_return", "ci95", "sum_rate", "sync_gap", "sync_fraction", "paired_diff",
             "paired_ci95", "share", "infeasible_syncs")  # fmt: skip
#: The lines drawn under the learning curve (``curve/<label>/mean_return``).
CURVE_LABELS = ("never", "greedy", "best_periodic", "threshold", "ceiling")


def seeds_of(params: dict[str, Any], kind: str) -> range:
    """The seeds of the final evaluation (``kind`` 'evaluation') or the learning curve."""
    first = params[f"{kind}_seed"]
    return range(first, first + params[f"{kind}_episodes"])


def labelled(evaluation: Evaluation) -> dict[str, Summary]:
    """The evaluation's summaries by label, the best periodic(k) as 'best_periodic'."""
    out = evaluation.by_name()
    best = best_periodic(evaluation.summaries)
    if best is not None:
        out["best_periodic"] = best
    return out


def evaluate_policy(
    module: Any, params: dict[str, Any], env: DNTSyncEnv, fit: ThresholdFit
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The greedy trained policy, the baselines, ``threshold`` and ``ceiling`` on the same
    seeded episodes, compared paired: (metrics, the per-episode record for JSON)."""
    seeds = seeds_of(params, "evaluation")
    references = load_or_play(env, fit, seeds)
    played = run_policy(env, greedy_policy(module), "policy", seeds)
    result = judge([played, *references.summaries], references.notes,
                   params.get("evaluation_reference"))  # fmt: skip
    by_label = labelled(result)
    threshold = by_label["threshold"].returns
    metrics: dict[str, Any] = {}
    for label in ("policy", "best_periodic", *EVAL_LABELS):
        s = by_label[label]
        for key in EVAL_KEYS:
            metrics[f"eval/{label}/{key}"] = getattr(s, key)
        diff, ci = paired(s.returns, threshold)
        metrics[f"eval/{label}/diff_threshold"] = diff
        metrics[f"eval/{label}/diff_threshold_ci95"] = ci
    metrics["eval/best_period"] = int(by_label["best_periodic"].policy[len("periodic(") : -1])
    metrics["eval/threshold_a"], metrics["eval/threshold_b"] = fit.a, fit.b
    metrics["eval_table"] = "\n".join(
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
    ``threshold`` on the same episodes; the reference policies' returns there are
    computed once and logged beside it as lines."""

    def __init__(self, params: dict[str, Any], env: DNTSyncEnv, fit: ThresholdFit) -> None:
        self.env = env
        self.seeds = seeds_of(params, "curve")
        self.interval = params["curve_interval"]
        self.threshold: tuple[float, ...] = ()
        self.lines: dict[str, float] = {}
        if not self.seeds:  # curve_episodes: 0 turns the curve off
            return
        references = load_or_play(env, fit, self.seeds)
        lines = labelled(judge(references.summaries, references.notes))
        self.threshold = lines["threshold"].returns
        self.lines = {f"curve/{k}/mean_return": lines[k].mean_return for k in CURVE_LABELS}

    def due(self, iteration: int, done: bool) -> bool:
        return bool(self.seeds) and (done or iteration == 1 or iteration % self.interval == 0)

    def __call__(self, module: Any) -> dict[str, float]:
        played = run_policy(self.env, greedy_policy(module), "policy", self.seeds)
        diff, ci = paired(played.returns, self.threshold)
        return {
            "curve/policy/mean_return": played.mean_return,
            "curve/policy/diff_threshold": diff,
            "curve/policy/diff_threshold_ci95": ci,
            **self.lines,
        }


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
    """Tune function trainable; ``params`` is ``ExperimentConfig.trial_base()`` + samples."""
    import torch

    torch.set_num_threads(1)
    threadpool_limits(1)
    quiet_ray_logs()
    algo = build_in_trial_dir(
        build_algorithm_config(params, RLlibDNTEnv).callbacks(DNTMetricsCallback)
    )
    env = DNTSyncEnv(SystemConfig.from_dict(params["env"]))
    fit = load_or_fit(env.config, env.twin)
    curve = LearningCurve(params, env, fit)
    progress: dict[str, Any] = {"wall_time_s": 0.0, "recent": []}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            algo.restore_from_path(Path(folder) / ALGORITHM_DIR)
            progress = json.loads((Path(folder) / STATE_FILE).read_text())

    stop = params["stop"]
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
            progress["search"] = metrics["curve/policy/diff_threshold"]
        if "search" in progress:  # the schedulers' metric in every result: the latest curve
            metrics[SEARCH_METRIC] = progress["search"]
        metrics = {**progress_columns(metrics, progress, stop), **metrics}
        metrics[TIME_THIS_ITER_S] = elapsed  # Tune's "total time (s)": training seconds
        record = None
        if done:
            final, record = evaluate_policy(algo.get_module(), params, env, fit)
            metrics.update(final)
        if done or algo.iteration % params["checkpoint_frequency"] == 0:
            with tempfile.TemporaryDirectory() as folder:
                algo.save_to_path(Path(folder) / ALGORITHM_DIR)  # for --resume only
                save_weights(algo.get_module(), folder)  # what evaluate loads
                if record is not None:
                    (Path(folder) / EVALUATION_FILE).write_text(json.dumps(record))
                (Path(folder) / STATE_FILE).write_text(json.dumps(progress))
                (Path(folder) / TRIAL_FILE).write_text(json.dumps(params, default=str))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)
        if done:
            break
    algo.stop()
