"""Evaluate the baselines (and optionally a trained policy) on the same seeded episodes.

    python -m dnt_rllib.evaluate                       # defaults, 200 episodes
    python -m dnt_rllib.evaluate --config net.yaml --episodes 1000 --json out.json
    python -m dnt_rllib.evaluate --checkpoint PATH     # a trained RLlib policy as well

Prints a markdown table: mean return with its 95 % confidence interval, mean sum rate,
mean sync gap, sync fraction and infeasible syncs per policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from dnt_rllib.baselines import Policy, baseline_policies
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.evaluation import Summary, best_periodic, format_table, run_policy
from dnt_rllib.validation import ConfigError


def parse_periods(text: str) -> list[int]:
    """'2-10' or '2,4,8' → periods, each ≥ 2."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            periods = list(range(lo, hi + 1))
        else:
            periods = [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--periods = {text!r}: must be 'LO-HI' or 'K1,K2,...'") from None
    if not periods or min(periods) < 2:
        raise ConfigError(f"--periods = {text!r}: periods must be integers >= 2")
    return periods


def evaluate(
    config: SystemConfig,
    policies: dict[str, Policy],
    episodes: int,
    seed: int,
    progress: bool = True,
) -> list[Summary]:
    """Run every policy on episodes seeded ``seed … seed + episodes − 1``."""
    env = DNTSyncEnv(config)
    seeds = range(seed, seed + episodes)
    with tqdm(
        total=episodes * len(policies), desc="evaluate", unit="ep", disable=not progress
    ) as bar:
        return [
            run_policy(env, policy, name, seeds, on_episode=lambda: bar.update())
            for name, policy in policies.items()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnt_rllib.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument("--checkpoint", type=Path, help="RLlib checkpoint of a trained policy")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per policy")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    parser.add_argument("--periods", default="2-10", help="periods k of periodic(k)")
    parser.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    try:
        if args.episodes < 2:
            raise ConfigError(f"--episodes = {args.episodes}: must be an integer >= 2")
        if args.seed < 0:
            raise ConfigError(f"--seed = {args.seed}: must be an integer >= 0")
        periods = parse_periods(args.periods)
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
        policies = baseline_policies(periods)
        if args.checkpoint is not None:
            from dnt_rllib.pipeline.policy import load_policy

            name, policy, config = load_policy(args.checkpoint, config if args.config else None)
            policies[name] = policy
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    summaries = evaluate(config, policies, args.episodes, args.seed, not args.no_progress)
    best = best_periodic(summaries)
    print(format_table(summaries))
    if best is not None:
        print(f"\nbest periodic: {best.policy}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "config": config.to_dict(),
            "episodes": args.episodes,
            "seed": args.seed,
            "summaries": [s.to_dict() for s in summaries],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
