"""Evaluate the non-learned policies (and optionally a trained one) on the same seeded episodes.

    python -m dnt_rllib.evaluate                       # defaults, 200 episodes
    python -m dnt_rllib.evaluate --config net.yaml --episodes 1000 --json out.json
    python -m dnt_rllib.evaluate --checkpoint PATH     # a trained RLlib policy as well
    python -m dnt_rllib.evaluate --lookahead 16        # add the lookahead planner (minutes)

Prints a markdown table: per policy the mean return with its 95 % confidence interval, the
paired difference to the reference policy on the same episodes with its 95 % interval,
the share of the never → ceiling range it closes, mean sum rate, mean sync gap, sync
fraction and infeasible syncs. The reference is the best non-learned policy unless
``--reference`` names one. ``threshold`` is fitted once per network on tuning episodes
(cached beside the twin) and its (a, b) are printed; ``ceiling`` is the perfect-foresight
schedule and ``free_sync`` the bound of syncs that cost nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies import Policy, load_or_fit, reference_policies
from dnt_rllib.scoring import Evaluation, best_periodic, check_seeds, evaluate_policies
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.validation import ConfigError, Range, check_int, check_output, short

#: Most periodic(k) rules one evaluation plays (each is a full set of episodes).
MAX_PERIODS = 100
#: Most episodes per policy (a few hours of the rules), most lookahead futures.
MAX_EPISODES, MAX_LOOKAHEAD = 100_000, 256


def parse_periods(text: str) -> list[int]:
    """'2-10' or '2,4,8' → periods, each ≥ 2."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            periods = range(lo, hi + 1)
        else:
            periods = [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--periods = {short(text)}: must be 'LO-HI' or 'K1,K2,...'") from None
    if len(periods) > MAX_PERIODS:
        raise ConfigError(f"--periods = {short(text)}: at most {MAX_PERIODS} periods")
    if not periods or min(periods) < 2:
        raise ConfigError(f"--periods = {short(text)}: periods must be integers >= 2")
    return list(periods)


def evaluate(
    config: SystemConfig,
    policies: dict[str, Policy],
    episodes: int,
    seed: int,
    progress: bool = True,
    reference: str | None = None,
    env: DNTSyncEnv | None = None,
) -> Evaluation:
    """Run every policy on episodes seeded ``seed … seed + episodes − 1``, compared paired."""
    env = env if env is not None else DNTSyncEnv(config)
    seeds = range(seed, seed + episodes)
    with tqdm(
        total=episodes * len(policies), desc="evaluate", unit="ep", disable=not progress
    ) as bar:
        return evaluate_policies(env, policies, seeds, reference, on_episode=bar.update)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.evaluate", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument("--checkpoint", type=Path, help="RLlib checkpoint of a trained policy")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per policy")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    parser.add_argument("--periods", default="2-10", help="periods k of periodic(k)")
    parser.add_argument(
        "--reference", help="policy the paired differences are to (default: the best rule)"
    )
    parser.add_argument(
        "--lookahead",
        type=int,
        default=0,
        metavar="K",
        help="add the lookahead planner with K sampled futures (0: off; ~5 min per 1,000 "
        "episodes at K = 16)",
    )
    parser.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    threadpool_limits(1)  # small BLAS products: one thread is several times faster
    try:
        check_int("--episodes", "", args.episodes, Range(2, MAX_EPISODES))
        check_int("--seed", "", args.seed, Range(0, None))
        check_int("--lookahead", "", args.lookahead, Range(0, MAX_LOOKAHEAD))
        check_seeds(range(args.seed, args.seed + args.episodes))
        if args.json is not None:
            check_output(args.json, "--json")
        periods = parse_periods(args.periods)
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
        trained: dict[str, Policy] = {}
        if args.checkpoint is not None:
            from dnt_rllib.trial.trained_policy import load_policy

            name, policy, config = load_policy(args.checkpoint, config if args.config else None)
            trained[name] = policy
        check_cache_dir(config)
        env = DNTSyncEnv(config)
        fit = load_or_fit(config, env.twin)
        print(fit.describe(), file=sys.stderr)
        policies = {**trained, **reference_policies(env, periods, fit, args.lookahead)}
        if args.reference is not None and args.reference not in {*policies, "free_sync"}:
            raise ConfigError(
                f"--reference {short(args.reference)}: must be one of {', '.join(policies)}"
            )
    except cli.REFUSED as err:
        return cli.refuse(err)

    result = evaluate(
        config, policies, args.episodes, args.seed, not args.no_progress, args.reference, env
    )
    print(result.table())
    best = best_periodic(result.summaries)
    if best is not None:
        print(f"\nbest periodic: {best.policy}")
    print(fit.describe())
    for note in result.notes:
        print(note)
    if args.json is not None:
        payload = {
            "config": config.to_dict(),
            "episodes": args.episodes,
            "seed": args.seed,
            "reference": result.reference,
            "threshold": {"a": fit.a, "b": fit.b, "tuning_seeds": list(fit.tuning_seeds)},
            "summaries": [s.to_dict() for s in result.summaries],
        }
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(payload, indent=2))
        except OSError as err:
            return cli.refuse(f"--json {args.json}: {err.strerror or err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
