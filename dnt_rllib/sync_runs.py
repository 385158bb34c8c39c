"""Where a policy puts its syncs: how many are back to back.

    python -m dnt_rllib.sync_runs --config net.yaml --episodes 200 --checkpoint PATH

With a twin that reads a velocity from its last two states (Gauss–Markov users), a sync
right after another hands it a true velocity; the ceiling uses that and pairs its syncs
([Where learning pays](../docs/memory-networks.md)). This prints, per policy on the same
seeded episodes (the threshold rule, the ceiling, the lookahead planner with ``--lookahead``
and each ``--checkpoint``): the sync fraction, the share of its syncs that lie in runs of
two or more consecutive synced slots, and the mean length of a run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.evaluate import MAX_EPISODES, MAX_LOOKAHEAD
from dnt_rllib.policies import CeilingPolicy, LookaheadPolicy, Policy, load_or_fit
from dnt_rllib.scoring import check_seeds, run_policy
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.validation import Range, check_int


def run_lengths(synced: np.ndarray) -> np.ndarray:
    """The lengths of the maximal runs of consecutive synced slots in one episode."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], synced.astype(np.int8), [0]))))
    return edges[1::2] - edges[::2]


@dataclass(frozen=True)
class SyncRuns:
    """How one policy's syncs fall over the slots of its episodes."""

    policy: str
    sync_fraction: float
    in_runs_of_two: float  # share of the syncs in runs of >= 2 slots (NaN without syncs)
    mean_run: float  # mean length of a run of synced slots (NaN without syncs)

    def row(self) -> str:
        return (f"| {self.policy} | {self.sync_fraction:.3f} | {100 * self.in_runs_of_two:.1f} % "
                f"| {self.mean_run:.2f} |")  # fmt: skip


def sync_runs(policy: str, episodes: list[np.ndarray]) -> SyncRuns:
    """Summarise the per-slot ``synced`` flags of each episode."""
    runs = np.concatenate([run_lengths(e) for e in episodes])
    syncs = int(runs.sum())
    slots = sum(len(e) for e in episodes)
    paired = float(runs[runs >= 2].sum() / syncs) if syncs else float("nan")
    mean = float(runs.mean()) if syncs else float("nan")
    return SyncRuns(policy, syncs / slots, paired, mean)


def play_synced(env: DNTSyncEnv, policy: Policy, seeds: Iterable[int]) -> list[np.ndarray]:
    """Each episode's ``info["synced"]`` per slot, played by :func:`run_policy`."""
    episodes: list[list[bool]] = [[]]
    run_policy(env, policy, "", seeds, on_episode=lambda: episodes.append([]),
               on_step=lambda info: episodes[-1].append(bool(info["synced"])))  # fmt: skip
    return [np.asarray(flags, dtype=bool) for flags in episodes[:-1]]


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.sync_runs", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a trained policy's checkpoint (repeatable)")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=200, help="episodes per policy")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    parser.add_argument(
        "--lookahead", type=int, default=0, metavar="K", help="add the lookahead planner (0: off)"
    )
    args = parser.parse_args(argv)
    threadpool_limits(1)
    try:
        check_int("--episodes", "", args.episodes, Range(1, MAX_EPISODES))
        check_int("--seed", "", args.seed, Range(0, None))
        check_int("--lookahead", "", args.lookahead, Range(0, MAX_LOOKAHEAD))
        check_seeds(range(args.seed, args.seed + args.episodes))
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
        trained: dict[str, Policy] = {}
        for i, path in enumerate(args.checkpoint):
            from dnt_rllib.trial.trained_policy import load_policy

            name, policy, config = load_policy(path, config if args.config else None)
            trained[name if name not in trained else f"{name} ({i})"] = policy
        check_cache_dir(config)
        env = DNTSyncEnv(config)
        fit = load_or_fit(config, env.twin)
    except cli.REFUSED as err:
        return cli.refuse(err)
    policies: dict[str, Policy] = {**trained, "threshold": fit.rule}
    if args.lookahead:
        policies["lookahead"] = LookaheadPolicy(fit.rule, args.lookahead)
    policies["ceiling"] = CeilingPolicy(env)
    seeds = range(args.seed, args.seed + args.episodes)
    print("| policy | sync fraction | syncs in runs of ≥ 2 | mean run |")
    print("|---|---|---|---|")
    for name, policy in policies.items():
        print(sync_runs(name, play_synced(env, policy, seeds)).row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
