"""`TrialSpec`: the typed contract of a trial, a dict only at Tune's boundary."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.tracking.mlflow_runs import trial_params
from dnt_rllib.trial.spec import EvaluationSpec, Resources, RewardSpec, TrialSpec

RAW = {
    "algorithm": "DQN",
    "seed": 7,
    "env": {"num_users": 4, "num_rbs": 3, "twin": "hold"},
    "training": {"DQN": {"lr": 5.0e-4, "n_step": 3}, "SAC": {"actor_lr": 1.0e-3}},
    "model": {"width": 64, "depth": 3},
    "reward": {"baseline": True},
    "replay": {"kind": "rllib"},
    "resources": {"num_envs_per_env_runner": 4},
    "stop": {"training_iteration": 9},
    "checkpoint": {"frequency": 3},
    "evaluation": {"episodes": 20, "seed": 500, "curve_episodes": 6, "curve_interval": 4},
    "search_space": {"algorithm": {"grid": ["DQN", "SAC"]}},
}


def test_an_experiment_makes_typed_specs_with_the_paper_defaults_filled_in() -> None:
    exp = parse_experiment(RAW)
    dqn, sac = exp.trial_spec(), exp.trial_spec("SAC")
    # the YAML's values over the paper's (Table I: gamma = β = 0.8, λ_Q = 1e-3, α = 0.05)
    assert (dqn.training["lr"], dqn.training["n_step"], dqn.training["gamma"]) == (5e-4, 3, 0.8)
    assert "actor_lr" not in dqn.training and sac.training["actor_lr"] == 1e-3
    assert sac.training["critic_lr"] == 1e-3 and sac.training["initial_alpha"] == 0.05
    assert dqn.model_config["fcnet_hiddens"] == [64, 64, 64]
    assert dqn.reward == RewardSpec(scale=1.0, baseline=True)
    assert (dqn.replay, dqn.learner, dqn.seed) == ("rllib", "lean", 7)  # lean: the default
    assert dqn.resources == Resources(num_env_runners=0, num_envs_per_env_runner=4)
    assert dqn.evaluation.seeds == range(500, 520)
    assert dqn.evaluation.curve_seeds == range(20_000, 20_006)
    assert (dqn.stop, dqn.checkpoint_frequency) == ({"training_iteration": 9}, 3)
    with pytest.raises(FrozenInstanceError):
        dqn.seed = 1  # type: ignore[misc]


def test_the_params_dict_round_trips_through_json() -> None:
    spec = parse_experiment(RAW).trial_spec()
    back = TrialSpec.from_params(json.loads(json.dumps(spec.to_params())))
    assert back == spec
    assert trial_params(back) == trial_params(spec)


def test_a_trial_saved_before_the_sections_keeps_what_it_ran() -> None:
    """A ``dnt_trial.json`` of an older trial: no replay, learner, reward, resources of
    learners or evaluation keys: RLlib's replay buffer and learner, eq. (17) unchanged, one
    learner in the trial process, the evaluation defaults."""
    env = SystemConfig(twin="hold", num_users=3, num_rbs=2)
    old = {"algorithm": "SAC", "seed": 2, "env": env.to_dict(), "training": {"SAC": {}},
           "model": {}, "num_env_runners": 1, "num_envs_per_env_runner": 2}  # fmt: skip
    spec = TrialSpec.from_params(old)
    assert (spec.replay, spec.learner) == ("rllib", "rllib")
    assert spec.reward == RewardSpec(scale=1.0, baseline=False)
    assert spec.resources == Resources(num_env_runners=1, num_envs_per_env_runner=2)
    assert spec.evaluation == EvaluationSpec()
    assert spec.env == env


def test_value_reads_every_kind_of_search_key() -> None:
    spec = parse_experiment(RAW).trial_spec()
    assert spec.value("algorithm") == "DQN" and spec.value("seed") == 7
    assert spec.value("env.num_users") == 4 and spec.value("training.lr") == 5e-4
    assert spec.value("model.width") == 64 and spec.value("reward.baseline") is True
    assert spec.value("replay.kind") == "rllib" and spec.value("learner.kind") == "lean"
