"""The env as RLlib builds it on every env runner, on every node."""

from __future__ import annotations

from typing import Any

import numpy as np

from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.physics.allocation import assign

#: What the info of an episode's last step carries (all other steps' infos are empty):
#: mean Σ_u c_ut per slot, mean ‖s_t − s'_t‖² per slot, the fraction of slots with a sync
#: and the number of infeasible sync requests.
EPISODE_METRICS = ("sum_rate", "sync_gap", "sync_fraction", "infeasible_syncs")

#: Env-config keys of the learning signal (the experiment's ``reward`` section); they change
#: what the learner is trained on, never what an evaluation scores.
REWARD_KEYS = ("reward_scale", "reward_baseline")


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

    The learner is trained on ``reward_scale · (r_t − ε Σ_u c̄_ut)`` when ``reward_baseline``
    is on, else on ``reward_scale · r_t`` (eqs. 15, 17). c̄_ut is the rate user u would get
    with every RB open (eq. 14): it depends on positions, channels and interference only,
    which no action changes, so subtracting it moves every policy's expected return by the
    same amount and keeps their order, while it removes the swing of ~100 return points
    between episodes that buries the few points a sync decision is worth.
    """

    def __init__(self, env_config: dict[str, Any]) -> None:
        config = dict(env_config)
        self._trial_seed = int(config.pop("seed", 0))
        num_envs = int(config.pop("num_envs", 1))
        self._scale = float(config.pop("reward_scale", 1.0))
        self._baseline = bool(config.pop("reward_baseline", False))
        super().__init__(num_envs, config)
        self._totals = np.zeros((4, num_envs))  # Σ rate, Σ gap, syncs, infeasible requests

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            seed = int(np.random.SeedSequence((self._trial_seed, seed)).generate_state(1)[0])
        self._totals[:] = 0
        return super().reset(seed=seed, options=options)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The vector env's step, its rewards made the learning signal (class docstring)."""
        terms = self.slots.channel_terms() if self._baseline and not self._autoreset else None
        obs, rewards, terminated, truncated, info = super().step(actions)
        if terms is not None:
            played = self._played  # this slot's raw info arrays, kept by _infos
            full_rate = np.array(played["sum_rate"], dtype=np.float64)
            synced = np.flatnonzero(played["synced"])
            if synced.size:  # without a sync the slot's Σc already is the all-RB one
                gain, scale = terms[0][synced], terms[1][synced]
                full_rate[synced] = assign(gain, scale, self.slots.config.bandwidth)[1]
            rewards = rewards - self.slots.config.epsilon * full_rate
        return obs, self._scale * rewards, terminated, truncated, info

    def _infos(self, info: dict[str, np.ndarray], ended: bool) -> dict[str, Any]:
        """This slot added to the episodes' totals; their means when the episodes end."""
        self._played = info
        totals = self._totals
        totals[0] += info["sum_rate"]
        totals[1] += info["sync_error"]
        totals[2] += info["synced"]
        totals[3] += info["infeasible_sync"]
        if not ended:
            return {}
        slots = self.slots.slot
        means = (totals[0] / slots, totals[1] / slots, totals[2] / slots, totals[3].copy())
        totals[:] = 0
        out: dict[str, Any] = {}
        for key, value in zip(EPISODE_METRICS, means, strict=True):
            out[key] = value
            out[f"_{key}"] = np.ones(self.num_envs, dtype=np.bool_)
        return out
