"""The trial's episode metrics: episode-weighted means over the last ~100 episodes."""

import math
from dataclasses import replace
from pathlib import Path

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.trial.spec import EvaluationSpec, TrialSpec
from dnt_rllib.trial.trainable import flat_metrics


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


def test_learning_curve_off_plays_nothing(tmp_path: Path) -> None:
    from dnt_rllib import DNTSyncEnv, SystemConfig
    from dnt_rllib.policies import ThresholdFit
    from dnt_rllib.trial.trainable import LearningCurve

    fit = ThresholdFit(a=1.0, b=0.0, tuning_seeds=(0, 9), tuning_return=0.0, greedy_return=0.0)
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=4, twin_cache_dir=str(tmp_path)))
    spec = TrialSpec.make(env.config, evaluation=EvaluationSpec(curve_episodes=0,
                                                                curve_interval=2))  # fmt: skip
    curve = LearningCurve(spec, env, fit)
    assert not curve.due(1, done=True) and curve.lines == {}
    assert not list(tmp_path.iterdir())  # nothing played, nothing cached
    on = LearningCurve(replace(spec, evaluation=replace(spec.evaluation, curve_episodes=3)),
                       env, fit)  # fmt: skip
    assert on.due(1, done=False) and not on.due(3, done=False) and on.due(4, done=False)
    assert len(on.threshold) == 3 and set(on.lines) == {
        f"ref/{k}/curve/{name}"
        for k in ("never", "greedy", "best_periodic", "threshold", "ceiling")
        for name in ("return", "diff_threshold", "diff_threshold_ci95")
    }
    assert on.lines["ref/threshold/curve/diff_threshold"] == 0.0


def test_every_result_carries_the_latest_search_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    """`train_trial` with a stand-in algorithm and learning curve (no RLlib training): the
    curve plays at iterations 1, 3, 6 and the last (7) and scores 1, 2, 3, 4 there, so
    every result carries the latest score — Tune's schedulers drop a trial whose result
    lacks the metric."""
    from types import SimpleNamespace

    import torch

    from dnt_rllib.names import SEARCH_METRIC
    from dnt_rllib.trial import trainable

    class Algo:
        iteration = 0

        def train(self) -> dict:
            self.iteration += 1
            return result(0, 0.0)

        def get_module(self) -> None:
            return None

        def save_to_path(self, path: object) -> None:
            pass

        def stop(self) -> None:
            pass

    class Curve:
        def __init__(self, params: dict, env: object, fit: object) -> None:
            self.score = 0.0

        def due(self, iteration: int, done: bool) -> bool:
            return done or iteration == 1 or iteration % 3 == 0

        def __call__(self, module: object) -> dict[str, float]:
            self.score += 1.0
            return {"curve/diff_threshold": self.score}

    reports: list[dict] = []
    stand_ins = {
        "build_algorithm_config": lambda params, env: SimpleNamespace(callbacks=lambda cb: None),
        "build_in_trial_dir": lambda config: Algo(),
        "load_or_fit": lambda config, twin: None,
        "LearningCurve": Curve,
        "evaluate_policy": lambda module, params, env, fit: ({"eval/done": 1.0}, {}),
        "save_weights": lambda module, folder: None,
        "quiet_ray_logs": lambda: None,
        "threadpool_limits": lambda n: None,
        "tune": SimpleNamespace(
            get_checkpoint=lambda: None,
            report=lambda metrics, checkpoint=None: reports.append(dict(metrics)),
            Checkpoint=SimpleNamespace(from_directory=lambda folder: folder),
        ),
    }
    for name, value in stand_ins.items():
        monkeypatch.setattr(trainable, name, value)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    spec = TrialSpec.make(SystemConfig(twin="hold", episode_length=4),
                          stop={"training_iteration": 7}, checkpoint_frequency=5)  # fmt: skip
    trainable.train_trial(spec.to_params())
    assert [r["iteration"] for r in reports] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.get(SEARCH_METRIC) for r in reports] == [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 4.0]
    assert "eval/done" in reports[-1]
    # Tune's progress table (its first 4 metrics): the curve's latest Δ leads, and its
    # "total time (s)" adds up the training seconds alone
    assert all(list(r)[:3] == ["vs_threshold", "episode_return_mean", "env_steps"] for r in reports)
    assert [r["vs_threshold"] for r in reports] == [r[SEARCH_METRIC] for r in reports]
    assert all(0 <= r["time_this_iter_s"] < 1 for r in reports)


def test_the_progress_table_leads_with_the_budget_left_and_the_curve() -> None:
    """Budget 900 s, 100.04 s trained: 799.96 left, shown to 0.1 s; no curve yet: NaN."""
    from dnt_rllib.trial.trainable import PROGRESS_COLUMNS, progress_columns

    metrics = {"wall_time_s": 100.04, "episode_return_mean": -18.5, "env_steps": 4096.0}
    shown = progress_columns(metrics, {}, {"time_total_s": 900})
    assert tuple(shown) == PROGRESS_COLUMNS
    assert shown["time_left_s"] == 800.0 and math.isnan(shown["vs_threshold"])
    assert (shown["episode_return_mean"], shown["env_steps"]) == (-18.5, 4096.0)
    later = progress_columns(
        {**metrics, "wall_time_s": 950.0}, {"search": -0.25}, {"time_total_s": 900}
    )
    assert (later["time_left_s"], later["vs_threshold"]) == (0.0, -0.25)
