"""`DNTSyncVectorEnv`: many episodes of the network as one batch, one twin call a step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from dnt_rllib.config import SystemConfig
from dnt_rllib.env.dnt_sync import DNTSyncEnv
from dnt_rllib.env.observation import TIMED_MODES, FrameStack
from dnt_rllib.env.slots import SlotBatch
from dnt_rllib.twin import Twin, make_twin


class DNTSyncVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` episodes of `DNTSyncEnv`'s network, stepped as one `SlotBatch`.

    Spaces, next-step autoreset and dict infos are those of ``gymnasium.vector.
    SyncVectorEnv`` over `DNTSyncEnv`, but each slot's physics is a few numpy calls for all
    envs, the twin predicts all envs' next DNT states in one batched call (8 histories
    cost the GRU 3× one, not 8×), and one generator draws for all envs, as in gymnasium's
    own numpy-vectorised envs: ``reset(seed=s)`` makes the whole batch reproducible. Every
    episode lasts T slots, so the envs' episodes start and end together. A batch of one
    plays what `DNTSyncEnv` plays with the same seed (bit for bit with the hold-last twin;
    the GRU's batched float32 products may round differently). With ``frame_stack`` k > 1
    each env's observation is its last k, as `DNTSyncEnv` stacks them (`FrameStack`).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        config: SystemConfig | Mapping[str, Any] | None = None,
        twin: Twin | None = None,
    ) -> None:
        cfg = SystemConfig.coerce(config)
        self.twin = twin if twin is not None else make_twin(cfg)
        self.slots = SlotBatch(cfg, self.twin, num_envs)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = DNTSyncEnv.spaces(cfg)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._stack = FrameStack(num_envs, cfg.frame_stack, self.slots.observer.dim)
        self._autoreset = False  # the envs' episodes ended at the last step

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts every env's episode; ``seed`` seeds the one generator they all draw from."""
        if seed is not None:
            self.slots.rng = seeding.np_random(seed)[0]
        self.slots.begin()
        self._autoreset = False
        return self._stack.reset(self.slots.observe()), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """All envs play a slot, or, after their episodes ended (together: every episode
        lasts T slots), all start new ones and the actions are ignored (next-step autoreset,
        with an empty info)."""
        n = self.num_envs
        terminated = np.zeros(n, dtype=np.bool_)
        if self._autoreset:
            self.slots.begin()
            self._autoreset = False
            obs = self._stack.reset(self.slots.observe())
            return obs, np.zeros(n), terminated, np.zeros(n, np.bool_), {}
        actions = np.asarray(actions)
        k = int(self.single_action_space.n)
        if (
            actions.shape != (n,)
            or not np.issubdtype(actions.dtype, np.integer)
            or (n and (actions.min() < 0 or actions.max() >= k))
        ):
            raise ValueError(
                f"actions {actions.tolist()!r}: must be {n} integers in 0..{k - 1}, one per env"
            )
        rewards, self._autoreset, info = self.slots.advance(actions)
        timed = self.slots.config.observation_mode in TIMED_MODES
        return (
            self._stack.push(self.slots.observe()),
            rewards,
            np.full(n, self._autoreset and timed),
            np.full(n, self._autoreset and not timed),
            self._infos(info, ended=self._autoreset),
        )

    def _infos(self, info: dict[str, np.ndarray], ended: bool) -> dict[str, Any]:
        """The infos as ``VectorEnv._add_info`` batches them: one array and one all-true
        ``_key`` mask per key (``ended``: this slot was the episodes' last)."""
        merged: dict[str, Any] = {}
        for key, value in info.items():
            merged[key] = value
            merged[f"_{key}"] = np.ones(self.num_envs, dtype=np.bool_)
        return merged
