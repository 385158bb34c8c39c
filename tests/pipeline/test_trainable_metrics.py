"""The trial's episode metrics: episode-weighted means over the last ~100 episodes."""

import math

import pytest

from dnt_rllib.pipeline.trainable import flat_metrics


def result(episodes: int, value: float) -> dict:
    runners = {"num_episodes": episodes, "episode_return_mean": value if episodes else math.nan}
    for key in ("sum_rate", "sync_gap", "sync_fraction", "infeasible_syncs"):
        runners[f"dnt_{key}"] = value if episodes else math.nan
    return {"env_runners": runners, "num_env_steps_sampled_lifetime": 10}


def test_iterations_without_episodes_keep_the_last_window() -> None:
    recent: list = []
    assert math.isnan(flat_metrics(result(0, 0.0), recent)["episode_return_mean"])
    assert flat_metrics(result(8, 100.0), recent)["episode_return_mean"] == 100.0
    out = flat_metrics(result(0, 0.0), recent)
    assert out["episode_return_mean"] == 100.0 and out["sync_gap"] == 100.0


def test_means_are_weighted_by_episodes_and_cover_about_100() -> None:
    recent: list = []
    flat_metrics(result(60, 0.0), recent)
    out = flat_metrics(result(20, 10.0), recent)
    assert out["episode_return_mean"] == pytest.approx((60 * 0 + 20 * 10) / 80)
    for _ in range(10):
        out = flat_metrics(result(20, 50.0), recent)
    assert out["episode_return_mean"] == 50.0  # the old iterations left the window
    assert 100 <= out["episodes_in_window"] < 120


def test_learning_curve_off_plays_nothing() -> None:
    from dnt_rllib import DNTSyncEnv, SystemConfig
    from dnt_rllib.pipeline.trainable import LearningCurve
    from dnt_rllib.policies import ThresholdRule

    class Fit:
        rule = ThresholdRule(1.0, 0.0)

    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=4))
    params = {"curve_seed": 20_000, "curve_episodes": 0, "curve_interval": 2}
    curve = LearningCurve(params, env, Fit())  # type: ignore[arg-type]
    assert not curve.due(1, done=True) and curve.lines == {}
    on = LearningCurve({**params, "curve_episodes": 3}, env, Fit())  # type: ignore[arg-type]
    assert on.due(1, done=False) and not on.due(3, done=False) and on.due(4, done=False)
    assert len(on.threshold) == 3 and set(on.lines) == {
        f"curve/{k}/mean_return"
        for k in ("never", "greedy", "best_periodic", "threshold", "ceiling")
    }
