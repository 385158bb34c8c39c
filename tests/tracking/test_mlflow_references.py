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

LABELS = ("policy", "threshold", "best_periodic", "greedy", "ceiling", "never")


def trial(trial_id: str, algorithm: str, seed: int, epsilon: float = 0.987) -> Any:
    spec = parse_experiment({"algorithm": algorithm, "env": {"epsilon": epsilon}}).trial_spec()
    config = replace(spec, seed=seed).to_params()  # the trial's config, as Tune holds it
    return SimpleNamespace(trial_id=trial_id, config=config, __str__=lambda: trial_id)


def final_result(offset: float) -> dict[str, float]:
    """A final evaluation: label i's mean return 700 + 10 i + offset, its Δ vs threshold."""
    out: dict[str, float] = {"iteration": 5, "eval/best_period": 4}
    for i, label in enumerate(LABELS):
        out[f"eval/{label}/mean_return"] = 700.0 + 10 * i + offset
        out[f"eval/{label}/diff_threshold"] = 10.0 * (i - 1)
        out[f"eval/{label}/share"] = i / 10
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
    assert threshold.data.metrics["eval/policy/mean_return"] == 710.0
    assert threshold.data.metrics["eval/policy/diff_threshold"] == 0.0
    ceiling = by[("0.9", "ceiling")]
    assert ceiling.data.metrics["eval/policy/mean_return"] == 700 + 40 - 3.0
    assert ceiling.data.metrics["eval/policy/share"] == 0.4
    assert by[("0.987", "best_periodic")].data.params["best_period"] == "4"
    assert {r.info.status for r in refs} == {"FINISHED"}

    # the report reads the trained runs only
    assert sorted(r.algorithm for r in load_runs(client, "first")) == ["DQN", "SAC", "SAC"]


def test_a_dqn_run_logs_dqn_settings_only(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MLflowTracking(uri, "first", tags={})
    tracking.on_trial_start(0, [], trial("d", "DQN", 0))
    (run,) = mlflow.MlflowClient(uri).search_runs([tracking.experiment_id])
    training = {k for k in run.data.params if k.startswith("training.")}
    assert "training.lr" in training and "training.epsilon" in training
    assert not training & {"training.actor_lr", "training.critic_lr", "training.alpha_lr"}
