"""What the agent sees of a slot, computed for a batch of envs at once."""

from __future__ import annotations

import numpy as np

from dnt_rllib.config import SystemConfig

#: The DNT-minus-physical offset is observed in units of this many step sizes, clipped.
OFFSET_SCALE_STEPS = 5.0


def observation_dim(config: SystemConfig) -> int:
    """2U for ``'paper'``; 2U + 2U + 1 + N for ``'full'``; one more for ``'timed'``."""
    d = config.state_dim
    if config.observation_mode == "paper":
        return d
    return 2 * d + 1 + config.num_rbs + (config.observation_mode == "timed")


class Observer:
    """Maps slots to observations in [−1, 1] (the layout is `DNTSyncEnv`'s docstring).

    Every entry is elementwise in its inputs, so a batch of B envs gives bit for bit the
    rows that B calls with one env each would give.
    """

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.dim = observation_dim(config)
        self._centre = np.tile(np.asarray(config.bs_position, dtype=np.float64), config.num_users)
        self._half = config.area_size / 2
        self._offset_scale = OFFSET_SCALE_STEPS * config.step_size
        self._since_scale = 2.0 / config.episode_length
        self._interference_scale = -1.0 / config.interference if config.interference > 0 else 0.0

    def __call__(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        since_sync: np.ndarray,
        interference: np.ndarray,
        slot: int,
    ) -> np.ndarray:
        """Observations (B, dim) float32 from s_t and ŝ_t (B, 2U), slots since the last sync
        (B,), the per-RB interference (B, N) and the slot t (the same in every env)."""
        cfg = self.config
        d = cfg.state_dim
        obs = np.empty((states.shape[0], self.dim), dtype=np.float32)
        position = obs[:, :d]
        np.subtract(states, self._centre, out=position, casting="same_kind")
        position /= self._half
        if cfg.observation_mode != "paper":
            offset = obs[:, d : 2 * d]
            np.subtract(predictions, states, out=offset, casting="same_kind")
            offset /= self._offset_scale  # clipped below with the rest
            obs[:, 2 * d] = since_sync * self._since_scale - 1.0
            noise = obs[:, 2 * d + 1 : 2 * d + 1 + cfg.num_rbs]
            if cfg.interference > 0:
                np.exp(interference * self._interference_scale, out=noise, casting="same_kind")
                noise *= -2.0
                noise += 1.0
            else:
                noise[:] = -1.0
            if cfg.observation_mode == "timed":  # slots left (T − t), 2(T − t)/T − 1
                obs[:, -1] = (cfg.episode_length - slot) * self._since_scale - 1.0
        return np.minimum(np.maximum(obs, -1.0, out=obs), 1.0, out=obs)
