"""Per-episode DNT metrics next to RLlib's return (sum rate, sync gap, syncs)."""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

#: Episode metrics; RLlib reduces them per iteration (mean over the episodes that ended in
#: it), like ``episode_return_mean``; the trial smooths both over ~100 episodes.
EPISODE_METRICS = ("sum_rate", "sync_gap", "sync_fraction", "infeasible_syncs")
WINDOW = 100


class DNTMetricsCallback(RLlibCallback):
    """Logs, per episode: mean Σ_u c_ut per slot, mean ‖s_t − s'_t‖² per slot, the
    fraction of slots with a sync and the number of infeasible sync requests."""

    def on_episode_start(self, *, episode: Any, **kwargs: Any) -> None:
        episode.custom_data.update(slots=0, rate=0.0, gap=0.0, syncs=0, infeasible=0)

    def on_episode_step(self, *, episode: Any, **kwargs: Any) -> None:
        info = episode.get_infos(-1)
        if "sum_rate" not in info:  # the reset info
            return
        data = episode.custom_data
        data["slots"] += 1
        data["rate"] += info["sum_rate"]
        data["gap"] += info["sync_error"]
        data["syncs"] += int(info["synced"])
        data["infeasible"] += int(info["infeasible_sync"])

    def on_episode_end(self, *, episode: Any, metrics_logger: Any, **kwargs: Any) -> None:
        data = episode.custom_data
        slots = max(data["slots"], 1)
        values = {
            "sum_rate": data["rate"] / slots,
            "sync_gap": data["gap"] / slots,
            "sync_fraction": data["syncs"] / slots,
            "infeasible_syncs": data["infeasible"],
        }
        for key, value in values.items():
            metrics_logger.log_value(f"dnt_{key}", value, reduce="mean", window=WINDOW)
