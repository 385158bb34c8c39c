"""The experiment YAML schema: shipped configs load, bad ones fail with one line."""

from pathlib import Path

import pytest

from dnt_rllib.experiment.schema import load_experiment, parse_experiment
from dnt_rllib.tuning.checks import check_rllib
from dnt_rllib.tuning.space import param_space
from dnt_rllib.validation import ConfigError

CONFIGS = sorted((Path(__file__).parents[2] / "tune_configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_pass_rllib_validation(path: Path) -> None:
    exp = load_experiment(path)
    check_rllib(exp)
    space = param_space(exp)
    assert space["env"]["twin_cache_dir"].startswith("/")


def test_paper_sac_yaml_has_the_paper_hyperparameters() -> None:
    from dnt_rllib.trial.settings import PAPER_TRAINING

    exp = load_experiment(Path(__file__).parents[2] / "tune_configs" / "paper_sac.yaml")
    sac = {**PAPER_TRAINING["SAC"], **exp.training.get("SAC", {})}
    assert (sac["actor_lr"], sac["critic_lr"], sac["gamma"], sac["initial_alpha"]) == (
        1e-4,
        1e-3,
        0.8,
        0.05,
    )
    assert sac["alpha_lr"] == 0.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "experiment.algorithm: missing"),
        ({"algorithm": "A2C"}, "experiment.algorithm = 'A2C': must be one of 'SAC', 'DQN', 'PPO'"),
        ({"algorithm": "SAC", "epochs": 3}, "experiment: unknown field 'epochs'"),
        (
            {"algorithm": "SAC", "env": {"epsilon": 1.5}},
            "experiment.env: SystemConfig.epsilon = 1.5: must be a number in (0, 1)",
        ),
        (
            {"algorithm": "SAC", "training": {"SAC": {"lr": 0.1}}},
            "experiment.training.SAC.lr: SAC uses actor_lr, critic_lr and alpha_lr",
        ),
        (
            {"algorithm": "SAC", "training": {"SAC": {"gamma": 1.5}}},
            "experiment.training.SAC.gamma = 1.5: must be a number in [0, 1]",
        ),
        (
            {"algorithm": "SAC", "training": {"SAC": {"learning_rate": 0.1}}},
            "experiment.training.SAC.learning_rate: not a SAC training setting",
        ),
        (
            {"algorithm": "SAC", "search_space": {"env.epsilon": {"grid": [0.5, 2.0]}}},
            "experiment.search_space.env.epsilon: SystemConfig.epsilon = 2.0",
        ),
        (
            {"algorithm": "SAC", "search_space": {"env.gamma": {"grid": [0.5]}}},
            "experiment.search_space.env.gamma: unknown env field 'gamma'",
        ),
        (
            {"algorithm": "SAC", "search_space": {"env.num_rbs": {"sweep": [1, 2]}}},
            "experiment.search_space.env.num_rbs: must be one domain",
        ),
        (
            {"algorithm": "SAC", "resources": {"num_env_runners": -1}},
            "experiment.resources.num_env_runners = -1: must be an integer in [0, 64]",
        ),
        ({"algorithm": "SAC", "stop": {"iterations": 3}}, "experiment.stop: unknown field"),
        (
            {"algorithm": "DQN", "model": {"hidden": [3]}},
            "experiment.model.hidden: not a DefaultModelConfig field",
        ),
        (
            {
                "algorithm": "SAC",
                "search_space": {
                    "algorithm": {"grid": ["SAC", "DQN"]},
                    "training.actor_lr": {"grid": [0.1]},
                },
            },
            "experiment.search_space.training.actor_lr: not a DQN training setting",
        ),
    ],
)
def test_bad_experiments_give_one_line(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment(raw)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_missing_and_unsafe_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(tmp_path / "nope.yaml")
    evil = tmp_path / "evil.yaml"
    evil.write_text("algorithm: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(evil)


def test_search_space_maps_onto_trial_parameters() -> None:
    exp = parse_experiment(
        {
            "algorithm": "SAC",
            "search_space": {
                "algorithm": {"grid": ["SAC", "DQN"]},
                "seed": {"grid": [0, 1]},
                "env.epsilon": {"uniform": [0.9, 0.99]},
                "training.gamma": {"choice": [0.8, 0.9]},
            },
        }
    )
    space = param_space(exp)
    assert space["algorithm"] == {"grid_search": ["SAC", "DQN"]}
    assert space["seed"] == {"grid_search": [0, 1]}
    assert type(space["env"]["epsilon"]).__name__ == "Float"
    assert type(space["training"]["DQN"]["gamma"]).__name__ == "Categorical"
    assert set(space["training"]) == {"SAC", "DQN"}


def test_the_memory_options_are_swept_like_any_env_field() -> None:
    exp = parse_experiment(
        {
            "algorithm": "SAC",
            "search_space": {
                "env.interference_model": {"grid": ["iid", "markov"]},
                "env.mobility_model": {"choice": ["random_walk", "gauss_markov"]},
                "env.mobility_memory": {"uniform": [0.5, 0.9]},
            },
        }
    )
    assert exp.search_space["env.interference_model"] == ("grid", ["iid", "markov"])
    space = param_space(exp)
    assert space["env"]["interference_model"] == {"grid_search": ["iid", "markov"]}
    assert type(space["env"]["mobility_model"]).__name__ == "Categorical"
    with pytest.raises(ConfigError) as err:
        parse_experiment(
            {"algorithm": "SAC",
             "search_space": {"env.interference_model": {"grid": ["iid", "bursty"]}}}
        )  # fmt: skip
    assert str(err.value) == (
        "experiment.search_space.env.interference_model: SystemConfig.interference_model = "
        "'bursty': must be one of 'iid', 'markov'"
    )


#: Values RLlib would resolve by name (a class, callable or config dict it imports), and
#: values of the wrong kind that RLlib itself never checks: each refused before Ray starts.
NOT_ACCEPTED: list[tuple[str, dict, str]] = [
    ("DQN", {"replay_buffer_config": {"type": "builtins.exec", "_args": ["import os"]}},
     "experiment.training.DQN.replay_buffer_config.type = 'builtins.exec': must be one of"),
    ("DQN", {"replay_buffer_config": {"type": "EpisodeReplayBuffer", "_args": ["x"]}},
     "experiment.training.DQN.replay_buffer_config._args: not accepted"),
    ("DQN", {"replay_buffer_config": "builtins.exec"},
     "experiment.training.DQN.replay_buffer_config = 'builtins.exec': must be a mapping"),
    ("DQN", {"replay_buffer_config": {"capacity": -5}},
     "experiment.training.DQN.replay_buffer_config.capacity = -5: must be an integer"),
    ("DQN", {"learner_class": "os.system"},
     "experiment.training.DQN.learner_class: not accepted: RLlib would resolve its value by name"),
    ("DQN", {"learner_connector": "os.system"}, "learner_connector: not accepted: RLlib"),
    ("DQN", {"optimizer": {"type": "os.system"}}, "optimizer: not accepted: RLlib"),
    ("DQN", {"before_learn_on_batch": "os.system"}, "before_learn_on_batch: not accepted"),
    ("DQN", {"model": {"custom_model": "os.system"}}, "DQN.model: not accepted: RLlib"),
    ("SAC", {"policy_model_config": {}}, "SAC.policy_model_config: not accepted: RLlib"),
    ("SAC", {"q_model_config": {}}, "SAC.q_model_config: not accepted: RLlib"),
    ("DQN", {"num_atoms": 51}, "DQN.num_atoms: an RLlib DQN setting this project does not"),
    ("SAC", {"twin_q": "no"}, "experiment.training.SAC.twin_q = 'no': must be true or false"),
    ("DQN", {"epsilon": "lots"}, "experiment.training.DQN.epsilon = 'lots': must be a number"),
    ("DQN", {"epsilon": [[5, 1.0], [10, 0.1]]}, "DQN.epsilon = [[5, 1.0], [10, 0.1]]: must be"),
    ("SAC", {"target_entropy": "high"}, "SAC.target_entropy = 'high': must be one of 'auto'"),
]  # fmt: skip


@pytest.mark.parametrize(("algorithm", "training", "says"), NOT_ACCEPTED,
                         ids=[str(t) for _, t, _ in NOT_ACCEPTED])  # fmt: skip
def test_training_takes_plain_values_only(algorithm: str, training: dict, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment({"algorithm": algorithm, "training": {algorithm: training}})
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_searched_training_value_is_checked_for_every_algorithm() -> None:
    bad = {"type": "builtins.exec"}
    space = {
        "algorithm": {"grid": ["SAC", "DQN"]},
        "training.replay_buffer_config": {"grid": [bad]},
    }
    raw = {"algorithm": "SAC", "search_space": space}
    with pytest.raises(ConfigError, match=r"^experiment\.search_space\.training\.replay_buffer"):
        parse_experiment(raw)


def test_accepted_training_values_reach_rllib() -> None:
    buffer = {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 5000, "alpha": 0.6}
    training = {"DQN": {"epsilon": [[0, 1.0], [500, 0.05]], "td_error_loss_fn": "mse",
                        "grad_clip": None, "replay_buffer_config": buffer},
                "SAC": {"twin_q": False, "target_entropy": "auto", "grad_clip": 40.0}}  # fmt: skip
    raw = {"algorithm": "SAC", "training": training, "replay": {"kind": "rllib"},
           "search_space": {"algorithm": {"grid": ["SAC", "DQN"]}}}  # fmt: skip
    check_rllib(parse_experiment(raw))


def test_the_main_jobs_are_the_tuned_settings_side_by_side_in_mlflow() -> None:
    """sac.yaml and dqn.yaml: sac_tuned's and dqn_tuned's settings, one seed, and one MLflow
    experiment, so running both gives MLflow's Compare its SAC and DQN runs."""
    folder = Path(__file__).parents[2] / "tune_configs"
    for algo in ("sac", "dqn"):
        main, tuned = (load_experiment(folder / f"{algo}{s}.yaml") for s in ("", "_tuned"))
        assert main.training == tuned.training and main.model == tuned.model
        assert main.env == tuned.env and main.reward == tuned.reward
        assert main.search_space == {} and main.mlflow_experiment == "main"
