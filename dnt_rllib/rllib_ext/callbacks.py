"""Per-episode DNT metrics next to RLlib's return (sum rate, sync gap, syncs)."""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from dnt_rllib.names import WINDOW_EPISODES
from dnt_rllib.rllib_ext.rllib_env import EPISODE_METRICS


class DNTMetricsCallback(RLlibCallback):
    """Logs ``dnt_<metric>`` for each of :data:`EPISODE_METRICS`, which `RLlibDNTEnv`
    puts in the info of an episode's last step."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any, **kwargs: Any) -> None:
        info = episode.get_infos(-1)
        for key in EPISODE_METRICS:
            metrics_logger.log_value(
                f"dnt_{key}", float(info[key]), reduce="mean", window=WINDOW_EPISODES
            )
