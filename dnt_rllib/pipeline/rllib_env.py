"""The env as RLlib builds it on every env runner, on every node."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dnt_rllib.env import DNTSyncEnv

_vector_index = itertools.count()


class RLlibDNTEnv(DNTSyncEnv):
    """`DNTSyncEnv` from RLlib's env config (SystemConfig fields plus the trial ``seed``).

    RLlib seeds runner w with ``seed + w`` and gymnasium's vector env adds the sub-env
    index, so neighbouring runners would share streams. Instead the first seeded reset uses
    a seed derived from (trial seed, worker index, vector index), which never collide; the
    vector index counts the envs built in this process. The class is importable by path,
    so RLlib ships it to any node without a registry.
    """

    def __init__(self, env_config: dict[str, Any]) -> None:
        config = dict(env_config)
        trial_seed = int(config.pop("seed", 0))
        config.pop("num_envs", None)
        super().__init__(config)
        worker = int(getattr(env_config, "worker_index", 0))
        self._seed_key = (trial_seed, worker, next(_vector_index))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            seed = int(np.random.SeedSequence(self._seed_key).generate_state(1)[0])
        return super().reset(seed=seed, options=options)
