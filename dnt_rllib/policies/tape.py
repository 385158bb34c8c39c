"""What an episode holds whatever the BS decides, recorded once per seed.

Actions never touch the env's random stream, so a seed fixes an episode's positions s_t,
interference and fading; only the DNT's states depend on the sync schedule. A tape keeps,
per slot, s_t and the two sum rates the decision chooses between — Σ c with every RB
(eq. 14) and Σ c with the sync RB withheld (eq. 16) — so the planners (`threshold`'s fit,
`ceiling`, `lookahead`) can replay any schedule with the twin alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.physics.allocation import slot_rates

__all__ = ["Tapes", "record_tapes", "slot_rates"]


@dataclass(frozen=True)
class Tapes:
    """E episodes of L slots: the DNT's history before the first slot (E, M, 2U), s_t
    (E, L, 2U), the sum rates without and with a sync (E, L; NaN where no RB meets γ)
    and the sync RB (E, L)."""

    history: np.ndarray
    states: np.ndarray
    rate_free: np.ndarray
    rate_sync: np.ndarray
    sync_rb: np.ndarray

    @property
    def feasible(self) -> np.ndarray:
        return ~np.isnan(self.rate_sync)


@lru_cache(maxsize=8)
def _recorder(config: SystemConfig) -> DNTSyncEnv:
    """An env of ``config`` with the hold twin: the draws do not depend on the twin."""
    return DNTSyncEnv(config.replace(twin="hold"))


def record_tapes(config: SystemConfig, seeds: Iterable[int]) -> Tapes:
    """The tapes of the episodes `DNTSyncEnv` plays under ``config`` with these seeds."""
    env = _recorder(config)
    max_interference = env.network.max_sync_interference
    histories, states, free, withheld, rbs = [], [], [], [], []
    for seed in seeds:
        env.reset(seed=int(seed))
        histories.append(env.dnt_history.copy())
        positions, gains, scales, noise = [], [], [], []
        done = False
        while not done:
            positions.append(env.user_positions.ravel().copy())
            gain, scale = env.channel_terms()
            gains.append(gain)
            scales.append(scale)
            noise.append(env.interference.copy())
            _, _, terminated, truncated, _ = env.step(0)
            done = terminated or truncated
        f, w, rb = slot_rates(
            np.array(gains), np.array(scales), config.bandwidth, np.array(noise),
            max_interference, config.action_mode,
        )  # fmt: skip
        states.append(positions)
        free.append(f)
        withheld.append(w)
        rbs.append(rb)
    return Tapes(np.array(histories), np.array(states), np.array(free), np.array(withheld),
                 np.array(rbs))  # fmt: skip
