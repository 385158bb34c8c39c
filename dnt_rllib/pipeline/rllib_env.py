"""The env as RLlib builds it on every env runner, on every node."""

from __future__ import annotations

from typing import Any

import numpy as np

from dnt_rllib.env import DNTSyncVectorEnv

#: What the info of an episode's last step carries (all other steps' infos are empty):
#: mean Σ_u c_ut per slot, mean ‖s_t − s'_t‖² per slot, the fraction of slots with a sync
#: and the number of infeasible sync requests.
EPISODE_METRICS = ("sum_rate", "sync_gap", "sync_fraction", "infeasible_syncs")


class RLlibDNTEnv(DNTSyncVectorEnv):
    """`DNTSyncVectorEnv` from RLlib's env config (SystemConfig fields, the trial ``seed``
    and ``num_envs``), built through gymnasium's ``vector_entry_point``.

    RLlib resets runner w's vector env with ``seed + w``, so trial seeds s and s + 1 would
    share runners' streams; the env's generator is seeded from (trial seed, runner seed)
    instead, which never collide.

    RLlib keeps every step's info in its episodes and replay buffer, so instead of per-step
    infos the env sums each episode's slots itself and hands over :data:`EPISODE_METRICS`
    in the info of the episode's last step only. The class is importable by path, so RLlib
    ships it to any node without a registry.
    """

    def __init__(self, env_config: dict[str, Any]) -> None:
        config = dict(env_config)
        self._trial_seed = int(config.pop("seed", 0))
        num_envs = int(config.pop("num_envs", 1))
        super().__init__(num_envs, config)
        self._episode_slots = np.zeros(num_envs)
        self._totals = np.zeros((4, num_envs))  # Σ rate, Σ gap, syncs, infeasible requests

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            seed = int(np.random.SeedSequence((self._trial_seed, seed)).generate_state(1)[0])
        self._episode_slots[:] = 0
        self._totals[:] = 0
        return super().reset(seed=seed, options=options)

    def _infos(
        self, info: dict[str, np.ndarray], stepped: np.ndarray, truncated: np.ndarray
    ) -> dict[str, Any]:
        """This step added to each episode's totals; the means of the episodes that end."""
        self._episode_slots[~stepped] = 0  # these envs reset this step: a new episode begins
        self._totals[:, ~stepped] = 0
        self._episode_slots += stepped
        totals = self._totals
        totals[0] += info["sum_rate"]  # 0 where not stepped
        totals[1] += np.where(stepped, info["sync_error"], 0.0)
        totals[2] += info["synced"]  # False where not stepped
        totals[3] += info["infeasible_sync"]
        if not truncated.any():
            return {}
        slots = np.maximum(self._episode_slots, 1)
        means = (totals[0] / slots, totals[1] / slots, totals[2] / slots, totals[3])
        out: dict[str, Any] = {}
        for key, value in zip(EPISODE_METRICS, means, strict=True):
            out[key] = np.where(truncated, value, 0.0)
            out[f"_{key}"] = truncated.copy()
        return out
