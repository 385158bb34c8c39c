"""What the agent sees of a slot, computed for a batch of envs at once."""

from __future__ import annotations

import numpy as np

from dnt_rllib.config import SystemConfig

#: The DNT-minus-physical offset is observed in units of this many step sizes, clipped.
OFFSET_SCALE_STEPS = 5.0


def observation_dim(config: SystemConfig) -> int:
    """2U for ``'paper'``; 2U + 2U + 1 + N for ``'full'``."""
    d = config.state_dim
    return d if config.observation_mode == "paper" else 2 * d + 1 + config.num_rbs


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

    def __call__(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        since_sync: np.ndarray,
        interference: np.ndarray,
    ) -> np.ndarray:
        """Observations (B, dim) float32 from s_t and ŝ_t (B, 2U), slots since the last sync
        (B,) and the per-RB interference (B, N)."""
        cfg = self.config
        d = cfg.state_dim
        obs = np.empty((states.shape[0], self.dim), dtype=np.float32)
        obs[:, :d] = (states - self._centre) / self._half
        if cfg.observation_mode == "full":
            offset = (predictions - states) / self._offset_scale
            obs[:, d : 2 * d] = np.minimum(np.maximum(offset, -1.0), 1.0)
            obs[:, 2 * d] = np.minimum(2.0 * since_sync / cfg.episode_length - 1.0, 1.0)
            if cfg.interference > 0:
                obs[:, 2 * d + 1 :] = 1.0 - 2.0 * np.exp(-interference / cfg.interference)
            else:
                obs[:, 2 * d + 1 :] = -1.0
        return np.minimum(np.maximum(obs, -1.0), 1.0, out=obs)
