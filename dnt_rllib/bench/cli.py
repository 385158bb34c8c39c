"""Speed of the simulator: env steps per second on one core, and the cost of each part.

    python -m dnt_rllib.bench                 # hold-last and GRU twin, default config
    python -m dnt_rllib.bench --steps 50000
    python -m dnt_rllib.bench --rllib --rllib-settings 0:1,2:8 --rllib-seconds 1
    python -m dnt_rllib.bench --learner       # ms per SAC update: RLlib's, ours, torch floor
    python -m dnt_rllib.bench --evaluation 200  # a trial's final evaluation, part by part
    python -m dnt_rllib.bench --set-encoder   # the set model's encoder: fused vs autograd

Pins itself to one CPU core and one BLAS/torch thread, then times whole env steps (random
actions, auto-reset) and each part of a step in isolation: mobility (eq. 1), the channel
terms (eq. 2), the sorted allocation (eqs. 14/16) beside the Hungarian it replaces (the
reference, on the rate matrix), twin prediction, reward (eqs. 15/17), observation. Last,
the vector env of 8 that RLlib's env runners step (`DNTSyncVectorEnv`). The GRU twin is
measured unless ``--config`` sets ``twin: hold``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv, DNTSyncVectorEnv
from dnt_rllib.physics.allocation import allocate, assign
from dnt_rllib.physics.reward import reward
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.validation import (
    ConfigError,
    Range,
    check_float,
    check_int,
    check_output,
    short,
)

#: Envs per runner in the shipped tune configs.
VECTOR_ENVS = 8


def pin_to_one_core() -> None:
    """Run on one core with one thread, as one env inside one Ray worker would."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def per_call_us(fn: Callable[[], object], calls: int, seconds: float = 2.0) -> float:
    """Mean wall time of ``fn()`` in µs over ``calls`` calls, or as many as ``seconds``
    allow (at least 3: the Hungarian reference at U = 500 takes ~0.1 s a call), after a
    short warm-up."""
    start = time.perf_counter()
    for _ in range(min(calls, 100)):
        fn()
        if time.perf_counter() - start > seconds / 10:
            break
    done, start = 0, time.perf_counter()
    while done < calls and (done < 3 or time.perf_counter() - start < seconds):
        fn()
        done += 1
    return (time.perf_counter() - start) / done * 1e6


def env_steps_per_second(env: DNTSyncEnv, steps: int, seed: int = 0) -> float:
    """Whole env steps per second with uniformly random actions and auto-reset."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, size=steps)
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_steps_per_second(envs: DNTSyncVectorEnv, steps: int, seed: int = 0) -> float:
    """Env steps per second (summed over sub-envs) of the vector env RLlib runs."""
    rng = np.random.default_rng(seed)
    calls = max(steps // envs.num_envs, 1)
    actions = rng.integers(0, envs.single_action_space.n, size=(calls, envs.num_envs))
    envs.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        envs.step(a)
    return calls * envs.num_envs / (time.perf_counter() - start)


def part_costs(env: DNTSyncEnv, calls: int) -> dict[str, float]:
    """µs per call of each part of a step, on the env's current slot."""
    cfg = env.config
    env.reset(seed=1)
    gain, scale = env.channel_terms()
    rb = env.paper_sync_rb()
    observed = (
        env.user_positions.reshape(1, -1),
        env.twin_prediction[None],
        np.array([env.slots_since_sync]),
        env._interference[None],
        env.slot,
        (env.user_positions - env._previous).reshape(1, -1),
        (gain[None], scale[None]),
        (np.array([env.sync_requested]), env.dnt_history_true[None]),
    )
    return {
        "mobility (eq. 1)": per_call_us(
            lambda: env.network.step(env.np_random, env.user_positions), calls
        ),
        "channel terms h_u, y_n (eq. 2)": per_call_us(env.channel_terms, calls),
        "sync RB (eqs. 3, 5e)": per_call_us(env.paper_sync_rb, calls),
        "allocation (sorted, eqs. 14/16)": per_call_us(
            lambda: assign(gain, scale, cfg.bandwidth, rb), calls
        ),
        "reference: rate matrix (eq. 2) + Hungarian": per_call_us(
            lambda: allocate(env.rate_matrix(), rb), calls
        ),
        "twin predict": per_call_us(lambda: env.twin.predict(env._history), calls),
        "reward (eqs. 15/17)": per_call_us(
            lambda: reward(1.0, 2.0, cfg.epsilon, cfg.num_users), calls
        ),
        "observation": per_call_us(lambda: env.observer(*observed), calls),
    }


def evaluation_costs(config: SystemConfig, episodes: int) -> dict[str, float]:
    """Seconds of each part of a trial's final evaluation of the references on ``episodes``
    episodes (one core): the rules stepped in the env one by one (the old path) beside the
    same rules replayed on tapes (the path `evaluate_policies` takes), the tapes, the
    ceiling's DP and its play in the env, and the threshold fit (uncached)."""
    from dnt_rllib.policies import TRIAL_PERIODS, CeilingPolicy, reference_policies
    from dnt_rllib.policies.on_tapes import play_rules, tape_rule
    from dnt_rllib.policies.tape import record_tapes
    from dnt_rllib.policies.threshold import fit_threshold
    from dnt_rllib.scoring import run_policy

    env = DNTSyncEnv(config)
    seeds = list(range(10_000, 10_000 + episodes))
    out: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], object]) -> object:
        start = time.perf_counter()
        value = fn()
        out[label] = time.perf_counter() - start
        return value

    fit = timed("threshold fit (300 tuning episodes)", lambda: fit_threshold(config, env.twin))
    policies = reference_policies(env, TRIAL_PERIODS, fit)  # type: ignore[arg-type]
    rules = {n: r for n, p in policies.items() if (r := tape_rule(p)) is not None}
    timed(f"{len(rules)} rules stepped in the env (old path)",
          lambda: [run_policy(env, policies[n], n, seeds) for n in rules])  # fmt: skip
    tapes = timed("tapes of the episodes", lambda: record_tapes(config, seeds))
    timed(f"{len(rules)} rules replayed on the tapes",
          lambda: play_rules(config, env.twin, rules, tapes))  # fmt: skip
    ceiling = CeilingPolicy(env)
    timed("ceiling: its DP", lambda: ceiling.plan(tapes, seeds))  # type: ignore[arg-type]
    timed("ceiling: played in the env", lambda: run_policy(env, ceiling, "ceiling", seeds))
    return out


def report(label: str, env: DNTSyncEnv, steps: int) -> None:
    rate = env_steps_per_second(env, steps)
    print(f"\n## {label}: {rate:,.0f} env steps/s ({1e6 / rate:.1f} µs/step), one env, one core")
    print("| part | µs/call |\n|---|---|")
    for name, us in part_costs(env, max(steps // 10, 1000)).items():
        print(f"| {name} | {us:.1f} |")


def _settings(text: str) -> tuple[tuple[int, int], ...]:
    """``"0:1,2:8"`` → ((0, 1), (2, 8))."""
    try:
        pairs = tuple(tuple(int(x) for x in item.split(":")) for item in text.split(","))
    except ValueError:
        pairs = ()
    if not pairs or any(len(p) != 2 or p[0] < 0 or p[1] < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"{short(text)}: expected R:E pairs such as 0:1,2:8")
    return pairs  # type: ignore[return-value]


#: The longest figure accepted (seconds), the most env steps per measurement, the most
#: episodes of ``--evaluation``.
MAX_SECONDS, MAX_STEPS, MAX_EVALUATION = 3600.0, 10_000_000, 100_000


#: Each mode's own flags (dest, flag, default): given without the mode they would be ignored.
MODE_FLAGS: dict[str, tuple[tuple[str, str, object], ...]] = {
    "--rllib": (("rllib_seconds", "--rllib-seconds", 3.0), ("rllib_settings", "--rllib-settings",
                None), ("rllib_rounds", "--rllib-rounds", 3)),
    "--learner": (("learner_seconds", "--learner-seconds", 10.0), ("json", "--json", None)),
    "--evaluation": (),
    "--set-encoder": (),
    "": (("steps", "--steps", 20_000),),  # the env-step bench, no mode flag
}  # fmt: skip


def check_args(args: argparse.Namespace) -> None:
    """Sizes and durations of a bench run: each bounded, one line naming the flag; one mode
    at a time, and no flag of a mode not run (it would be ignored). Fills in the defaults."""
    modes = [flag for flag, on in (("--rllib", args.rllib), ("--learner", args.learner),
             ("--evaluation", args.evaluation is not None), ("--set-encoder", args.set_encoder))
             if on]  # fmt: skip
    if len(modes) > 1:
        raise ConfigError(f"{' and '.join(modes)}: one at a time (each is its own benchmark)")
    mode = modes[0] if modes else ""
    for other, flags in MODE_FLAGS.items():
        for dest, flag, default in flags:
            if other != mode and getattr(args, dest) is not None:
                needs = (
                    f"only with {other}"
                    if other
                    else "only without --rllib, --learner, --evaluation and --set-encoder (the "
                    "env-step bench)"
                )
                raise ConfigError(f"{flag}: applies {needs}; it would be ignored here")
            if getattr(args, dest) is None:
                setattr(args, dest, default)
    check_int("--steps", "", args.steps, Range(1, MAX_STEPS))
    check_int("--rllib-rounds", "", args.rllib_rounds, Range(1, 1000))
    if args.evaluation is not None:  # a trial's evaluation plays at least 2 episodes
        check_int("--evaluation", "", args.evaluation, Range(2, MAX_EVALUATION))
    for flag in ("rllib_seconds", "learner_seconds"):
        check_float(f"--{flag.replace('_', '-')}", "", getattr(args, flag),
                    Range(0.0, MAX_SECONDS, lo_open=True))  # fmt: skip
    if args.json is not None:
        check_output(args.json, "--json")


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.bench", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument(
        "--steps", type=int, help="env steps per measurement (default 20000; not with a mode)"
    )
    parser.add_argument(
        "--rllib",
        action="store_true",
        help="RLlib throughput vs CartPole instead (dnt_rllib.bench.throughput)",
    )
    parser.add_argument(
        "--rllib-seconds", type=float, help="seconds per RLlib figure (with --rllib; default 3)"
    )
    parser.add_argument(
        "--rllib-settings",
        type=_settings,
        default=None,
        metavar="R:E,...",
        help="(env runners, envs per runner) pairs to measure (with --rllib; default: all six)",
    )
    parser.add_argument(
        "--rllib-rounds", type=int, help="sampling rounds per figure (with --rllib; default 3)"
    )
    parser.add_argument(
        "--learner",
        action="store_true",
        help="ms per SAC update on RLlib's replay path, ours (replay.kind fast) and the "
        "torch floor, and where the rest goes (dnt_rllib.bench.learner_cost)",
    )
    parser.add_argument(
        "--learner-seconds", type=float, help="seconds timed (with --learner; default 10)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write the --learner figures here (JSON)"
    )
    parser.add_argument(
        "--evaluation",
        type=int,
        metavar="EPISODES",
        help="time a trial's evaluation of the references on EPISODES (>= 2) episodes, part by "
        "part",
    )
    parser.add_argument(
        "--set-encoder",
        action="store_true",
        help="ms per batch through the set model's encoder at three cell sizes: its fused "
        "pooling, autograd's, and the flat MLP (dnt_rllib.bench.set_encoder)",
    )
    args = parser.parse_args(argv)
    try:
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
        check_args(args)
        check_cache_dir(config)
    except ConfigError as err:
        return cli.refuse(err)
    if args.set_encoder:
        from dnt_rllib.bench.set_encoder import main as set_encoder_main

        return set_encoder_main()
    if args.learner:
        from dnt_rllib.bench.learner_cost import main as learner_main

        return learner_main(config, args.learner_seconds, args.json)
    if args.rllib:
        from dnt_rllib.bench.throughput import SETTINGS
        from dnt_rllib.bench.throughput import main as rllib_main

        settings = args.rllib_settings or SETTINGS
        return rllib_main(config, args.rllib_seconds, settings, args.rllib_rounds)
    pin_to_one_core()
    if args.evaluation is not None:
        with threadpool_limits(1):
            costs = evaluation_costs(config, args.evaluation)
        print(f"## the references' evaluation on {args.evaluation} episodes, one core")
        print("| part | s |\n|---|---|")
        for name, seconds in costs.items():
            print(f"| {name} | {seconds:.3g} |")
        return 0
    with threadpool_limits(1):
        report("hold-last twin", DNTSyncEnv(config.replace(twin="hold")), args.steps)
        hold = config.twin == "hold"  # else the config's GRU twin too (trained once, cached)
        gru = "shared GRU" if config.twin == "gru_shared" else "GRU"
        if not hold:
            report(f"{gru} twin", DNTSyncEnv(config), args.steps)
        envs = DNTSyncVectorEnv(VECTOR_ENVS, config)
        rate = vector_steps_per_second(envs, args.steps)
        print(
            f"\n## {'hold-last' if hold else gru} twin, vector env of {VECTOR_ENVS} (one "
            f"batched twin call per step, as RLlib runs it): {rate:,.0f} env steps/s "
            f"({1e6 / rate:.1f} µs/env step)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
