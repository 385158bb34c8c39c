"""Run policies on the same seeded episodes and summarise them.

Actions never touch the env's random stream (mobility, interference and fading are drawn
whatever the BS does), so episode i has the same physical trajectory under every policy:
comparisons use common random numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from dnt_rllib.baselines import Policy
from dnt_rllib.env import DNTSyncEnv


@dataclass(frozen=True)
class Summary:
    """A policy's result over the evaluation episodes."""

    policy: str
    episodes: int
    mean_return: float
    ci95: float  # half-width of the 95 % t-interval of the mean return
    sum_rate: float  # mean Σ_u c_ut per slot
    sync_gap: float  # mean ‖s_t − s'_t‖² per slot
    sync_fraction: float  # fraction of slots with a sync
    infeasible_syncs: int  # requested syncs that no RB could carry within γ

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def run_policy(
    env: DNTSyncEnv,
    policy: Policy,
    name: str,
    seeds: Iterable[int],
    on_episode: Callable[[], None] | None = None,
) -> Summary:
    """Roll ``policy`` out on one episode per seed and summarise."""
    returns, rates, gaps, syncs, infeasible = [], [], [], 0, 0
    slots = 0
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(policy(env, obs))
            total += r
            rates.append(info["sum_rate"])
            gaps.append(info["sync_error"])
            syncs += info["synced"]
            infeasible += info["infeasible_sync"]
            slots += 1
            done = terminated or truncated
        returns.append(total)
        if on_episode is not None:
            on_episode()
    ret = np.asarray(returns)
    n = len(ret)
    ci = float(stats.t.ppf(0.975, n - 1) * ret.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return Summary(
        policy=name,
        episodes=n,
        mean_return=float(ret.mean()),
        ci95=ci,
        sum_rate=float(np.mean(rates)),
        sync_gap=float(np.mean(gaps)),
        sync_fraction=syncs / slots,
        infeasible_syncs=int(infeasible),
    )


def best_periodic(summaries: Iterable[Summary]) -> Summary | None:
    """The periodic(k) summary with the highest mean return."""
    periodic = [s for s in summaries if s.policy.startswith("periodic(")]
    return max(periodic, key=lambda s: s.mean_return, default=None)


def format_table(summaries: Iterable[Summary]) -> str:
    """A markdown table of summaries."""
    lines = [
        "| policy | return (95% CI) | sum rate | sync gap | sync frac | infeasible |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.policy} | {s.mean_return:.2f} ± {s.ci95:.2f} | {s.sum_rate:.3f} | "
            f"{s.sync_gap:.2f} | {s.sync_fraction:.3f} | {s.infeasible_syncs} |"
        )
    return "\n".join(lines)
