"""One network instance: the constants a config implies, computed once.

A ``Network`` holds the per-user move probabilities (drawn from ``network_seed``), the area
bounds and the cloud-link gain, and simulates user trajectories (eq. 1, or Gauss–Markov) and
interference (i.i.d. or Markov). The env, its batched twin `SlotBatch`, the lookahead's
sampled futures and the twin's training data all draw through here, so they share one law.

Every draw takes a leading ``batch`` shape (``()`` for one episode, ``(B,)`` for B): numpy
fills arrays in C order from one stream, so a batch of one draws what one episode draws.
The mobility's state is (positions, velocity); the random walk ignores and keeps the
velocity (zeros). The interference's state is the per-RB loud flags, or None (``iid``, or
before an episode's first slot).
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
    velocity_mean: np.ndarray  # (U, 2) μ_u of Gauss–Markov users
    velocity_std: np.ndarray  # (U,) σ_u of Gauss–Markov users
    interference_levels: tuple[float, float]  # (I_quiet, I_loud) of the Markov model

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
        velocity_mean, velocity_std = mobility.gauss_markov_params(probs, config.step_size)
        levels = channel.markov_levels(
            config.interference, config.interference_loud_share, config.interference_loud_ratio
        )
        return cls(
            config=config,
            move_probs=probs,
            move_cdf=np.cumsum(probs, axis=1),
            low=np.asarray(config.area_low, dtype=np.float64),
            high=np.asarray(config.area_high, dtype=np.float64),
            bs_position=bs,
            cloud_gain=float(cloud_gain),
            max_sync_interference=max_sync_interference,
            velocity_mean=velocity_mean,
            velocity_std=velocity_std,
            interference_levels=levels,
        )

    @property
    def gauss_markov(self) -> bool:
        return self.config.mobility_model == "gauss_markov"

    def initial_positions(
        self, rng: np.random.Generator, batch: tuple[int, ...] = ()
    ) -> np.ndarray:
        """Start positions (*batch, U, 2), uniform over the area (§IV)."""
        return rng.uniform(self.low, self.high, size=(*batch, self.config.num_users, 2))

    def initial_velocity(self, rng: np.random.Generator, batch: tuple[int, ...] = ()) -> np.ndarray:
        """Start velocities (*batch, U, 2): stationary N(μ_u, σ_u²) for Gauss–Markov (one
        normal per user and axis), zeros and no draw for the random walk."""
        shape = (*batch, self.config.num_users, 2)
        if not self.gauss_markov:
            return np.zeros(shape)
        normals = rng.standard_normal(shape)
        return mobility.stationary_velocity(normals, self.velocity_mean, self.velocity_std)

    def move_draws(self, rng: np.random.Generator, batch: tuple[int, ...] = ()) -> np.ndarray:
        """One slot's mobility randomness: U(0, 1) per user (*batch, U) for the random walk,
        N(0, 1) per user and axis (*batch, U, 2) for Gauss–Markov."""
        users = self.config.num_users
        if self.gauss_markov:
            return rng.standard_normal((*batch, users, 2))
        return rng.random((*batch, users))

    def apply_moves(
        self, positions: np.ndarray, velocity: np.ndarray, draws: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(s_{t+1}, v_{t+1}) from (s_t, v_t) and :meth:`move_draws`'s draws, any batch shape."""
        cfg = self.config
        if self.gauss_markov:
            return mobility.gauss_markov_move(
                positions, velocity, draws, self.velocity_mean, self.velocity_std,
                cfg.mobility_memory, self.low, self.high,
            )  # fmt: skip
        moved = mobility.move(positions, draws, self.move_cdf, cfg.step_size, self.low, self.high)
        return moved, velocity

    def move(
        self, rng: np.random.Generator, positions: np.ndarray, velocity: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One slot of mobility for positions and velocity (*batch, U, 2)."""
        return self.apply_moves(positions, velocity, self.move_draws(rng, positions.shape[:-2]))

    def draw_interference(
        self, rng: np.random.Generator, loud: np.ndarray | None, batch: tuple[int, ...] = ()
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A new slot's I_n (*batch, N) and loud flags: ``iid`` draws Exp(I) per RB (flags
        None); ``markov`` one U(0, 1) per RB moves each chain on from ``loud`` (from the
        stationary law if None) and I_n is its state's level."""
        cfg = self.config
        shape = (*batch, cfg.num_rbs)
        if cfg.interference_model == "iid":
            return channel.draw_interference(rng, cfg.interference, shape), None
        loud = channel.markov_loud(
            rng.random(shape), loud, cfg.interference_loud_share, cfg.interference_memory
        )
        quiet_level, loud_level = self.interference_levels
        return np.where(loud, loud_level, quiet_level), loud

    def step(self, rng: np.random.Generator, positions: np.ndarray) -> np.ndarray:
        """Positions one slot later under the random walk, eq. (1)."""
        return mobility.step_positions(
            rng, positions, self.move_cdf, self.config.step_size, self.low, self.high
        )

    def trajectories(self, rng: np.random.Generator, count: int, length: int) -> np.ndarray:
        """``count`` trajectories of ``length`` flattened states: shape (count, length, 2U)."""
        out = np.empty((count, length, self.config.num_users, 2))
        for i in range(count):
            pos = self.initial_positions(rng)
            velocity = self.initial_velocity(rng)
            for t in range(length):
                out[i, t] = pos
                pos, velocity = self.move(rng, pos, velocity)
        return out.reshape(count, length, 2 * self.config.num_users)
