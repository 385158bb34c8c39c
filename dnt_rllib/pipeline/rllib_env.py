"""The env as RLlib builds it on every env runner, on every node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dnt_rllib.env import DNTSyncVectorEnv

#: The info keys RLlib gets: the scalars `DNTMetricsCallback` reads, and the sync RB. RLlib
#: keeps every step's info in its episodes and replay buffer, so the per-step arrays
#: (positions, interference, allocation) would cost memory and sampling time (about 10 %).
INFO_KEYS = ("sum_rate", "sync_error", "synced", "infeasible_sync", "sync_rb")


class RLlibDNTEnv(DNTSyncVectorEnv):
    """`DNTSyncVectorEnv` from RLlib's env config (SystemConfig fields, the trial ``seed``
    and ``num_envs``), built through gymnasium's ``vector_entry_point``.

    RLlib resets runner w's vector env with ``seed + w``, and gymnasium would give sub-env i
    ``seed + w + i``, so neighbouring runners would share streams. Instead sub-env i gets a
    seed derived from (trial seed, runner seed, i), which never collide. Infos carry only
    :data:`INFO_KEYS`. The class is importable by path, so RLlib ships it to any node
    without a registry.
    """

    def __init__(self, env_config: dict[str, Any]) -> None:
        config = dict(env_config)
        self._trial_seed = int(config.pop("seed", 0))
        num_envs = int(config.pop("num_envs", 1))
        super().__init__(num_envs, config, info_keys=INFO_KEYS)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, int | np.integer):
            seed = [
                int(np.random.SeedSequence((self._trial_seed, seed, i)).generate_state(1)[0])
                for i in range(self.num_envs)
            ]
        return super().reset(seed=seed, options=options)
