"""`DNTSyncVectorEnv`: several `DNTSyncEnv` stepped together, one batched twin call per step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from dnt_rllib.config import SystemConfig
from dnt_rllib.env.dnt_sync import DNTSyncEnv
from dnt_rllib.twin import Twin, make_twin


class DNTSyncVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of `DNTSyncEnv` that share one twin.

    It returns what ``gymnasium.vector.SyncVectorEnv`` over the same envs returns
    (next-step autoreset, sub-env i reset with ``seed + i``, dict infos), but the twin
    predicts all envs' next DNT states in one batched call (8 histories cost the GRU 3×
    one, not 8×) and the observations are built in one go. With the hold-last twin the
    results are bit for bit the same; the GRU's batched float32 products round differently
    in the last bits (~1e-6 relative). ``info_keys`` keeps only those keys of each step's
    info (default: all).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        config: SystemConfig | Mapping[str, Any] | None = None,
        twin: Twin | None = None,
        info_keys: Sequence[str] | None = None,
    ) -> None:
        cfg = SystemConfig.coerce(config)
        self.info_keys = None if info_keys is None else tuple(info_keys)
        self.twin = twin if twin is not None else make_twin(cfg)
        self.envs = [DNTSyncEnv(cfg, twin=self.twin) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None or isinstance(seed, int | np.integer):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: {len(seeds)} seeds given for {self.num_envs} envs")
        for env, env_seed in zip(self.envs, seeds, strict=True):
            gym.Env.reset(env, seed=env_seed)
            env._begin_episode()
        self._autoreset[:] = False
        return self._observe(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rewards = np.zeros(self.num_envs)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        infos: list[dict[str, Any]] = []
        stepped = ~self._autoreset
        for i, env in enumerate(self.envs):
            if stepped[i]:
                rewards[i], truncated[i], info = env._advance(int(actions[i]))
                infos.append(info)
            else:
                env._begin_episode()  # next-step autoreset: the action is ignored
        self._autoreset[:] = truncated
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observe(), rewards, terminated, truncated, self._merge(infos, stepped)

    def _observe(self) -> np.ndarray:
        """One twin call for all envs' ŝ_t, then all observations at once."""
        envs = self.envs
        predictions = self.twin.predict(np.concatenate([env._history for env in envs]))
        for env, prediction in zip(envs, predictions, strict=True):
            env._prediction = prediction
        return envs[0].observer(
            np.stack([env._positions.ravel() for env in envs]),
            predictions,
            np.array([env._since_sync for env in envs]),
            np.stack([env._interference for env in envs]),
        )

    def _merge(self, infos: list[dict[str, Any]], stepped: np.ndarray) -> dict[str, Any]:
        """The stepped envs' infos as ``VectorEnv._add_info`` batches them (one array and
        one ``_key`` mask per key, zeros where an env reset), built once per key: every
        step's info has the same keys and types."""
        if not infos:
            return {}
        merged: dict[str, Any] = {}
        keys = infos[0].keys() if self.info_keys is None else self.info_keys
        for key in keys:
            value = infos[0][key]
            if isinstance(value, np.ndarray):
                array = np.zeros((self.num_envs, *value.shape), dtype=value.dtype)
            else:
                array = np.zeros(self.num_envs, dtype=type(value))
            array[stepped] = [info[key] for info in infos]
            merged[key] = array
            merged[f"_{key}"] = stepped.copy()
        return merged
