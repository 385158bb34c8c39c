"""RLlib throughput of our env next to CartPole-v1: env steps per second, same settings.

    python -m dnt_rllib.bench --rllib [--config system.yaml]

For 0, 1 and 2 env runners and 1 and 8 envs per runner, one SAC algorithm per env is built
with identical RLlib settings (``build_algorithm_config`` of a SAC trial; only the env
differs, and each is vectorised by its own ``vector_entry_point``: `DNTSyncVectorEnv`, and
gymnasium's numpy-batched ``CartPoleVectorEnv``) and measured twice: sampling only
(``EnvRunner.sample`` on every runner at once, no learning; the best of three rounds) and
while training (``algo.train()`` iterations, env steps sampled per wall second). It prints
a markdown table with the ratio ours / CartPole; the target is a sampling ratio of at
least 0.7 everywhere (the env is never the bottleneck). Runs in a private local Ray
instance, one thread per process; about 5 minutes on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.trial.spec import Resources, TrialSpec

SETTINGS: tuple[tuple[int, int], ...] = ((0, 1), (0, 8), (1, 1), (1, 8), (2, 1), (2, 8))
ENVS = ("DNT", "CartPole-v1")
TARGET = 0.7
CHUNK = 200  # env steps per runner per ``sample`` call
ROUNDS = 3  # sampling rounds per figure; the best counts


@dataclass
class Rates:
    """Env steps per second of one env under one setting."""

    sample: float
    train: float


def trial_spec(config: SystemConfig, runners: int, envs: int) -> TrialSpec:
    """A paper SAC trial on RLlib's replay buffer and learner, learning after 256 steps."""
    return TrialSpec.make(
        config, "SAC", training={"num_steps_sampled_before_learning_starts": 256},
        replay="rllib", learner="rllib",
        resources=Resources(num_env_runners=runners, num_envs_per_env_runner=envs),
    )  # fmt: skip


def build_algo(env: str, config: SystemConfig, runners: int, envs: int) -> Any:
    """The SAC algorithm of a trial on our env, or the same config on ``env`` (gymnasium id)."""
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config

    algo_config = build_algorithm_config(trial_spec(config, runners, envs), RLlibDNTEnv)
    if env != "DNT":
        algo_config = algo_config.environment(env)
        algo_config.env_config = {}  # ``environment()`` merges into the old config
    return algo_config.build_algo()


def _sample_steps(runner: Any, steps: int) -> int:
    return sum(len(episode) for episode in runner.sample(num_timesteps=steps))


def sampling_rate(algo: Any, seconds: float, rounds: int = ROUNDS) -> float:
    """Env steps per second of all runners sampling at once (the local one if none), the
    best of ``rounds`` rounds of ``seconds`` each: other work on a shared machine can only
    slow a round down."""
    group = algo.env_runner_group
    remote = group.num_remote_env_runners() > 0

    def sample_all() -> int:
        if not remote:
            return _sample_steps(algo.env_runner, CHUNK)
        return sum(
            group.foreach_env_runner(
                lambda runner: _sample_steps(runner, CHUNK), local_env_runner=False
            )
        )

    sample_all()  # warm-up: env creation, twin load, first forward passes
    best = 0.0
    for _ in range(rounds):
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            steps += sample_all()
        best = max(best, steps / (time.perf_counter() - started))
    return best


def _lifetime_steps(result: dict[str, Any]) -> float:
    runners = result.get("env_runners", {})
    return float(
        result.get("num_env_steps_sampled_lifetime")
        or runners.get("num_env_steps_sampled_lifetime", 0)
    )


def training_rate(algo: Any, seconds: float) -> float:
    """Env steps sampled per wall second over ``algo.train()`` iterations, learning on."""
    result = algo.train()
    while _lifetime_steps(result) < 256 + CHUNK:  # reach the first learner updates, untimed
        result = algo.train()
    before, started = _lifetime_steps(result), time.perf_counter()
    while time.perf_counter() - started < seconds:
        result = algo.train()
    return (_lifetime_steps(result) - before) / (time.perf_counter() - started)


def measure(
    config: SystemConfig,
    seconds: float,
    settings: tuple[tuple[int, int], ...] = SETTINGS,
    rounds: int = ROUNDS,
) -> dict[tuple[int, int], dict[str, Rates]]:
    """Rates of both envs for every (env runners, envs per runner) setting."""
    out: dict[tuple[int, int], dict[str, Rates]] = {}
    total = len(settings) * len(ENVS)
    for i, (runners, envs) in enumerate(settings):
        out[(runners, envs)] = {}
        for j, env in enumerate(ENVS):
            step = i * len(ENVS) + j + 1
            print(
                f"[{step}/{total}] {env}: {runners} env runners x {envs} envs ...",
                end="",
                file=sys.stderr,
                flush=True,
            )
            algo = build_algo(env, config, runners, envs)
            try:
                rates = Rates(sampling_rate(algo, seconds, rounds), training_rate(algo, seconds))
            finally:
                algo.stop()
            print(
                f" sample {rates.sample:,.0f}/s, train {rates.train:,.0f}/s",
                file=sys.stderr,
                flush=True,
            )
            out[(runners, envs)][env] = rates
    return out


def table(results: dict[tuple[int, int], dict[str, Rates]]) -> str:
    """The markdown table: both envs' rates and the ratio ours / CartPole."""
    lines = [
        "| env runners | envs/runner | sampling: DNT | sampling: CartPole | ratio "
        "| training SAC: DNT | training SAC: CartPole | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (runners, envs), rates in results.items():
        ours, cart = rates["DNT"], rates["CartPole-v1"]
        lines.append(
            f"| {runners} | {envs} | {ours.sample:,.0f} | {cart.sample:,.0f} "
            f"| {ours.sample / cart.sample:.2f} | {ours.train:,.0f} | {cart.train:,.0f} "
            f"| {ours.train / cart.train:.2f} |"
        )
    return "\n".join(lines)


def main(
    config: SystemConfig,
    seconds: float = 3.0,
    settings: tuple[tuple[int, int], ...] = SETTINGS,
    rounds: int = ROUNDS,
) -> int:
    """Measure ``settings`` (default: all six), print the table and the worst sampling ratio
    against the 0.7 target."""
    import ray
    import torch

    from dnt_rllib.twin import make_twin

    torch.set_num_threads(1)
    # Remote runners have other working directories: pin the twin cache, train it once here.
    config = config.replace(twin_cache_dir=str(Path(config.twin_cache_dir).resolve()))
    if config.twin != "hold":
        make_twin(config)
    ray.init(
        address="local",  # a private instance, never another process's cluster
        num_cpus=max(os.cpu_count() or 1, 1 + max(r for r, _ in settings)),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
    )
    try:
        results = measure(config, seconds, settings, rounds)
    finally:
        ray.shutdown()
    print(f"\n## RLlib env steps/s, SAC, twin={config.twin}, {os.cpu_count()} CPUs\n")
    print(table(results))
    worst = min(r["DNT"].sample / r["CartPole-v1"].sample for r in results.values())
    verdict = "meets" if worst >= TARGET else "misses"
    print(f"\nWorst sampling ratio DNT / CartPole: {worst:.2f} ({verdict} the {TARGET} target)")
    return 0
