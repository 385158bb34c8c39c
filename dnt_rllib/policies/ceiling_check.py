"""How far the ceiling's DP is from the best of all 2^L schedules, on episodes cut to L slots.

    python -m dnt_rllib.policies.ceiling_check --config net.yaml --slots 12 --episodes 30

With the GRU twin the DP keeps one twin history per key (`policies.ceiling`); this plays
every schedule of the first L slots of each evaluation episode with the same twin, batched
(2^L rows), and prints the mean and largest shortfall of the DP's return and how many
episodes have one. With the hold-last twin the shortfall is 0 (the DP is exact).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.policies.ceiling import best_schedule
from dnt_rllib.policies.rollout import rollout
from dnt_rllib.policies.tape import Tapes, record_tapes
from dnt_rllib.twin import Twin, make_twin
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.validation import Range, check_int

#: Below this a shortfall is the float32 twin's rounding in batches of other sizes.
NOISE = 1e-4
#: 2^16 schedules of 16 slots are ~1 GB of twin histories at U = 10.
MAX_SLOTS = 16
#: Most episodes one check plays (each 2^L schedules).
MAX_EPISODES = 10_000


def shortfalls(twin: Twin, tapes: Tapes, slots: int, epsilon: float, users: int) -> np.ndarray:
    """Per episode: the best return of all 2^slots schedules of its first ``slots`` slots
    minus the DP's."""
    cut = replace(
        tapes,
        states=tapes.states[:, :slots],
        rate_free=tapes.rate_free[:, :slots],
        rate_sync=tapes.rate_sync[:, :slots],
        sync_rb=tapes.sync_rb[:, :slots],
    )
    schedules = np.array(list(itertools.product((False, True), repeat=slots)))
    rows = len(schedules)
    out = []
    for e in range(len(cut.states)):
        _, planned = best_schedule(twin, cut, e, epsilon, users)
        every = rollout(
            twin, *(np.repeat(a[e : e + 1], rows, 0) for a in (cut.history, cut.states)),
            *(np.repeat(a[e : e + 1], rows, 0) for a in (cut.rate_free, cut.rate_sync)),
            epsilon, users, lambda t, penalty, loss: schedules[:, t], np.zeros(rows),
        )  # fmt: skip
        out.append(every.returns.max() - planned)
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.policies.ceiling_check", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument("--slots", type=int, default=12, help="L: slots kept (2^L schedules)")
    parser.add_argument("--episodes", type=int, default=30, help="episodes from --seed on")
    parser.add_argument("--seed", type=int, default=10000, help="seed of the first episode")
    args = parser.parse_args(argv)
    try:
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
        most = min(MAX_SLOTS, config.episode_length)
        check_int("--slots", "", args.slots, Range(1, most))
        check_int("--episodes", "", args.episodes, Range(1, MAX_EPISODES))
        check_int("--seed", "", args.seed, Range(0, None))
        check_cache_dir(config)
    except ValueError as err:  # ConfigError, and a SystemConfig field out of range
        return cli.refuse(err)
    tapes = record_tapes(config, range(args.seed, args.seed + args.episodes))
    gap = shortfalls(make_twin(config), tapes, args.slots, config.epsilon, config.num_users)
    print(
        f"{config.twin} twin, {config.mobility_model}, {config.interference_model}: best of "
        f"2^{args.slots} schedules − DP over {args.episodes} episodes: mean {gap.mean():.4f}, "
        f"largest {gap.max():.4f}; {(gap > NOISE).sum()} episodes short by more than {NOISE}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
