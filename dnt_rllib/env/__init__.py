"""The gymnasium layer: spaces, observation and reward over the physics and the twin."""

from dnt_rllib.env.dnt_sync import DNTSyncEnv
from dnt_rllib.env.vector import DNTSyncVectorEnv

ENV_ID = "dnt_rllib/DNTSync-v0"

__all__ = ["ENV_ID", "DNTSyncEnv", "DNTSyncVectorEnv"]
