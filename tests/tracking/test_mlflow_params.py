"""Trial parameters as MLflow params: flat, effective, long values truncated visibly."""

from dataclasses import replace

from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.tracking.mlflow_runs import TRUNCATED, trial_params


def test_params_are_flat_and_hold_the_effective_settings() -> None:
    exp = parse_experiment(
        {"algorithm": "SAC", "env": {"epsilon": 0.9}, "training": {"SAC": {"critic_lr": 3e-4}}}
    )
    params = trial_params(exp.trial_spec())
    assert params["algorithm"] == "SAC" and params["seed"] == "0"
    assert params["env.epsilon"] == "0.9" and params["env.num_users"] == "10"
    assert params["training.critic_lr"] == "0.0003"  # the override
    assert params["training.actor_lr"] == "0.0001"  # the paper's default, still logged
    assert params["model.fcnet_hiddens"] == "[256, 256]"


def test_long_values_are_truncated_with_a_marker_not_dropped() -> None:
    exp = parse_experiment({"algorithm": "DQN"})
    spec = exp.trial_spec()
    params = trial_params(
        replace(spec, training={**spec.training, "epsilon": [[i, 0.5] for i in range(2000)]})
    )
    value = params["training.epsilon"]
    assert len(value) == MAX_PARAM_VAL_LENGTH and value.endswith(TRUNCATED)


def test_params_log_the_layers_width_and_depth_make_and_the_reward() -> None:
    exp = parse_experiment(
        {"algorithm": "DQN", "model": {"width": 64, "depth": 3}, "reward": {"baseline": True}}
    )
    params = trial_params(exp.trial_spec())
    assert params["model.fcnet_hiddens"] == "[64, 64, 64]"
    assert "model.width" not in params
    assert (params["reward.baseline"], params["reward.scale"]) == ("True", "1.0")
