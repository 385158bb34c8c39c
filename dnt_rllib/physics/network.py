"""One network instance: the constants a config implies, computed once.

A ``Network`` holds the per-user move probabilities (drawn from ``network_seed``), the area
bounds and the cloud-link gain, and simulates user trajectories with eq. (1). The env and the
twin's training data both draw their trajectories from here, so they share one mobility law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics import channel, mobility
from dnt_rllib.physics.sync import interference_bound


@dataclass(frozen=True)
class Network:
    config: SystemConfig
    move_probs: np.ndarray  # U×5, eq. (1)
    move_cdf: np.ndarray  # U×5 cumulative
    low: np.ndarray  # (2,) area corner
    high: np.ndarray  # (2,) area corner
    bs_position: np.ndarray  # (2,) l^N
    cloud_gain: float  # h(l^C), eq. (3)
    max_sync_interference: float  # I^max: T^C_n ≤ γ ⟺ I_n ≤ I^max, eq. (3)

    @classmethod
    def from_config(cls, config: SystemConfig) -> Network:
        rng = np.random.default_rng(config.network_seed)
        probs = mobility.draw_move_probs(rng, config.num_users, config.stay_prob_range)
        bs = np.asarray(config.bs_position, dtype=np.float64)
        cloud_gain = channel.channel_gain(
            np.asarray(config.cloud_position, dtype=np.float64),
            bs,
            config.fading,
            config.pathloss_exponent,
            config.min_distance,
        )
        max_sync_interference = interference_bound(
            float(cloud_gain), config.data_size, config.delay_bound,
            config.tx_power, config.bandwidth, config.noise_psd,
        )  # fmt: skip
        return cls(
            config=config,
            move_probs=probs,
            move_cdf=np.cumsum(probs, axis=1),
            low=np.asarray(config.area_low, dtype=np.float64),
            high=np.asarray(config.area_high, dtype=np.float64),
            bs_position=bs,
            cloud_gain=float(cloud_gain),
            max_sync_interference=max_sync_interference,
        )

    def initial_positions(self, rng: np.random.Generator) -> np.ndarray:
        return mobility.initial_positions(rng, self.config.num_users, self.low, self.high)

    def step(self, rng: np.random.Generator, positions: np.ndarray) -> np.ndarray:
        """Positions one slot later, eq. (1)."""
        return mobility.step_positions(
            rng, positions, self.move_cdf, self.config.step_size, self.low, self.high
        )

    def trajectories(self, rng: np.random.Generator, count: int, length: int) -> np.ndarray:
        """``count`` trajectories of ``length`` flattened states: shape (count, length, 2U)."""
        out = np.empty((count, length, self.config.num_users, 2))
        for i in range(count):
            pos = self.initial_positions(rng)
            for t in range(length):
                out[i, t] = pos
                pos = self.step(rng, pos)
        return out.reshape(count, length, 2 * self.config.num_users)
