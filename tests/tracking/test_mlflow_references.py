"""The reference policies as MLflow runs of their own: one run per policy, network and
evaluation episodes, with the trained runs' metric names, and never read as trained runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.names import PARENT_RUN_TAG, PARENT_TAG, REFERENCE_TAG
from dnt_rllib.report.runs import load_runs
from dnt_rllib.tracking.mlflow_runs import MLflowTracking

REFERENCES = ("threshold", "best_periodic", "greedy", "ceiling", "never")


def trial(trial_id: str, algorithm: str, seed: int, epsilon: float = 0.987) -> Any:
    spec = parse_experiment({"algorithm": algorithm, "env": {"epsilon": epsilon}}).trial_spec()
    config = replace(spec, seed=seed).to_params()  # the trial's config, as Tune holds it
    return SimpleNamespace(trial_id=trial_id, config=config, __str__=lambda: trial_id)


def final_result(offset: float, step: int = 5) -> dict[str, float]:
    """A final evaluation as a trial reports it: its policy's figures (return 690 + offset)
    and reference i's under ``ref/<label>/`` (return 700 + 10 i + offset, Δ 10 (i − 1))."""
    out: dict[str, float] = {"iteration": step, "eval/return": 690.0 + offset,
                             "eval/diff_threshold": -10.0 + offset,
                             "ref/best_periodic/best_period": 4}  # fmt: skip
    for i, label in enumerate(REFERENCES, start=1):
        out[f"ref/{label}/eval/return"] = 700.0 + 10 * i + offset
        out[f"ref/{label}/eval/diff_threshold"] = 10.0 * (i - 1)
        out[f"ref/{label}/eval/share"] = i / 10
    return out


def curve_result(step: int, policy: float) -> dict[str, float]:
    """A learning-curve point: the policy's Δ, and each reference's constant line."""
    out = {"iteration": step, "curve/return": 700.0 + policy, "curve/diff_threshold": policy}
    for i, label in enumerate(REFERENCES, start=1):
        out[f"ref/{label}/curve/return"] = 700.0 + 10 * i
        out[f"ref/{label}/curve/diff_threshold"] = 10.0 * (i - 1)
    return out


def test_each_network_gets_one_reference_run_per_policy(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MLflowTracking(uri, "first", tags={"tune_experiment": "/x/first"})
    sac, dqn = trial("a", "SAC", 0), trial("b", "DQN", 1)
    other = trial("c", "SAC", 0, epsilon=0.9)
    dqn.config["env"]["observation_mode"] = "decision"  # sees more; plays the same episodes
    tracking.on_trial_result(0, [], sac, final_result(0.0))
    tracking.on_trial_result(0, [], dqn, final_result(0.5))  # same network: nothing new
    tracking.on_trial_result(0, [], other, final_result(-3.0))

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([tracking.experiment_id])
    refs = [r for r in runs if REFERENCE_TAG in r.data.tags]
    assert len(runs) == 1 + 3 + 10 and len(refs) == 10  # the parent, 3 trials, 5 × 2 networks
    parent = [r.info.run_id for r in runs if PARENT_TAG in r.data.tags]
    assert len(parent) == 1 and parent[0] not in {r.info.run_id for r in refs}
    assert all(r.data.tags[PARENT_RUN_TAG] == parent[0] for r in runs if r.info.run_id != parent[0])
    by = {(r.data.params["env.epsilon"], r.data.tags[REFERENCE_TAG]): r for r in refs}
    threshold = by[("0.987", "threshold")]
    assert threshold.info.run_name == "threshold (reference)"
    assert threshold.data.params["algorithm"] == "reference: threshold"
    # the first trial's figures (label 1: 700 + 10), under the trained runs' names
    assert threshold.data.metrics == {"eval/return": 710.0, "eval/diff_threshold": 0.0,
                                      "eval/share": 0.1}  # fmt: skip
    ceiling = by[("0.9", "ceiling")]
    assert ceiling.data.metrics["eval/return"] == 700 + 40 - 3.0
    assert ceiling.data.metrics["eval/share"] == 0.4
    assert by[("0.987", "best_periodic")].data.params["best_period"] == "4"
    assert {r.info.status for r in refs} == {"FINISHED"}
    # a trained run holds its own figures only, under the same names
    (sac_run,) = [r for r in runs if r.data.tags.get("ray.trial_id") == "a"]
    assert sac_run.data.metrics == {"iteration": 5.0, "eval/return": 690.0,
                                    "eval/diff_threshold": -10.0}  # fmt: skip
    # its final figures at step 0, as the reference runs' (MLflow then draws them as bars)
    for key in ("eval/return", "eval/diff_threshold"):
        history = client.get_metric_history(sac_run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(0, sac_run.data.metrics[key])]
        history = client.get_metric_history(threshold.info.run_id, key)
        assert [m.step for m in history] == [0]
    (iteration,) = client.get_metric_history(sac_run.info.run_id, "iteration")
    assert iteration.step == 5

    # the report reads the trained runs, each with its network's references
    loaded = {r.run_id: r for r in load_runs(client, "first")}
    assert sorted(r.algorithm for r in loaded.values()) == ["DQN", "SAC", "SAC"]
    report_sac = loaded[sac_run.info.run_id]
    assert report_sac.final("policy") == 690.0 and report_sac.final("ceiling") == 740.0
    assert report_sac.final("never", "diff_threshold") == 40.0 and report_sac.best_period == 4


def test_reference_runs_draw_their_lines_at_the_trained_runs_curve_steps(
    tmp_path: Path,
) -> None:
    """SAC's curve at iterations 1, 2, 4 and DQN's at 1, 3: each reference run holds its
    constant curve value once at each of the steps 1, 2, 3, 4, so the chart of
    ``curve/diff_threshold`` draws both learners against the references' lines."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MLflowTracking(uri, "first", tags={"tune_experiment": "/x/first"})
    sac, dqn = trial("a", "SAC", 0), trial("b", "DQN", 0)
    for step in (1, 2, 4):
        tracking.on_trial_result(0, [], sac, curve_result(step, policy=-step))
    for step in (1, 3):
        tracking.on_trial_result(0, [], dqn, curve_result(step, policy=-2 * step))
    client = mlflow.MlflowClient(uri)
    refs = {r.data.tags[REFERENCE_TAG]: r.info.run_id
            for r in client.search_runs([tracking.experiment_id])
            if REFERENCE_TAG in r.data.tags}  # fmt: skip
    assert sorted(refs) == sorted(REFERENCES)
    ceiling = client.get_metric_history(refs["ceiling"], "curve/diff_threshold")
    assert sorted((m.step, m.value) for m in ceiling) == [(s, 30.0) for s in (1, 2, 3, 4)]
    never = client.get_metric_history(refs["never"], "curve/return")
    assert sorted((m.step, m.value) for m in never) == [(s, 750.0) for s in (1, 2, 3, 4)]
    (sac_run,) = [r for r in client.search_runs([tracking.experiment_id])
                  if r.data.tags.get("ray.trial_id") == "a"]  # fmt: skip
    mine = client.get_metric_history(sac_run.info.run_id, "curve/diff_threshold")
    assert sorted((m.step, m.value) for m in mine) == [(1, -1.0), (2, -2.0), (4, -4.0)]


def test_a_dqn_run_logs_dqn_settings_only(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MLflowTracking(uri, "first", tags={})
    tracking.on_trial_start(0, [], trial("d", "DQN", 0))
    (run,) = mlflow.MlflowClient(uri).search_runs([tracking.experiment_id])
    training = {k for k in run.data.params if k.startswith("training.")}
    assert "training.lr" in training and "training.epsilon" in training
    assert not training & {"training.actor_lr", "training.critic_lr", "training.alpha_lr"}
