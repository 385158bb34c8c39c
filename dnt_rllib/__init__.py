"""dnt_rllib: digital-network-twin synchronisation (Yu, Liu, Chen) as an RLlib pipeline.

Importing the package registers ``gymnasium.make("dnt_rllib/DNTSync-v0", config=...)`` and
``gymnasium.make_vec("dnt_rllib/DNTSync-v0", num_envs, config=...)`` (`DNTSyncVectorEnv`).
"""

from __future__ import annotations

import gymnasium

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import ENV_ID, DNTSyncEnv
from dnt_rllib.validation import ConfigError

__version__ = "0.1.0"
__all__ = ["ENV_ID", "ConfigError", "DNTSyncEnv", "SystemConfig", "__version__"]

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="dnt_rllib.env:DNTSyncEnv",
        vector_entry_point="dnt_rllib.env:DNTSyncVectorEnv",
    )
