"""One Tune trial: build SAC or DQN, train to the stop criteria, checkpoint, evaluate.

The function runs inside the trial's Ray actor. It restores from Tune's latest checkpoint
when there is one (a resumed experiment or a retried trial), reports flat metrics each
iteration, checkpoints every ``checkpoint_frequency`` iterations and at the end, and
finally evaluates the greedy policy against the baselines on the same seeded episodes.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune

from dnt_rllib.baselines import baseline_policies
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.evaluation import best_periodic, format_table, run_policy
from dnt_rllib.pipeline.algorithms import build_algorithm_config
from dnt_rllib.pipeline.callbacks import DNTMetricsCallback
from dnt_rllib.pipeline.policy import ALGORITHM_DIR, TRIAL_FILE, greedy_policy
from dnt_rllib.pipeline.rllib_env import EPISODE_METRICS, RLlibDNTEnv

STATE_FILE = "progress.json"
EVAL_PERIODS = range(2, 11)


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


def evaluate_policy(module: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The greedy policy and the baselines on the same seeded episodes."""
    env = DNTSyncEnv(SystemConfig.from_dict(params["env"]))
    seeds = range(
        params["evaluation_seed"], params["evaluation_seed"] + params["evaluation_episodes"]
    )
    policies = {"policy": greedy_policy(module), **baseline_policies(EVAL_PERIODS)}
    summaries = [run_policy(env, p, name, seeds) for name, p in policies.items()]
    by_name = {s.policy: s for s in summaries}
    best = best_periodic(summaries)
    metrics: dict[str, Any] = {}
    for label, s in [
        ("policy", by_name["policy"]),
        ("never", by_name["never"]),
        ("always", by_name["always"]),
        ("best_periodic", best),
        ("greedy", by_name["greedy"]),
    ]:
        for key in ("mean_return", "ci95", "sum_rate", "sync_gap", "sync_fraction"):
            metrics[f"eval/{label}/{key}"] = getattr(s, key)
    metrics["eval/best_period"] = int(best.policy[len("periodic(") : -1])
    metrics["eval_table"] = format_table(summaries)
    return metrics


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
    algo = build_in_trial_dir(
        build_algorithm_config(params, RLlibDNTEnv).callbacks(DNTMetricsCallback)
    )
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
        if done:
            metrics.update(evaluate_policy(algo.get_module(), params))
        if done or algo.iteration % params["checkpoint_frequency"] == 0:
            with tempfile.TemporaryDirectory() as folder:
                algo.save_to_path(Path(folder) / ALGORITHM_DIR)
                (Path(folder) / STATE_FILE).write_text(json.dumps(progress))
                (Path(folder) / TRIAL_FILE).write_text(json.dumps(params, default=str))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)
        if done:
            break
    algo.stop()
