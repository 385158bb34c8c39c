"""`resources.num_learners` / `num_gpus_per_learner`: checked, carried into the trial's
AlgorithmConfig, and reserved by the trial's placement group. No GPU needed."""

import math
from typing import Any

import pytest

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.tracking.mlflow_runs import trial_params
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.tuning.checks import (
    TRIAL_PROCESS_BYTES,
    check_resources,
    trial_memory,
    trial_resources,
)
from dnt_rllib.validation import ConfigError


def experiment(**resources: Any) -> Any:
    return parse_experiment(
        {
            "algorithm": "SAC",
            "search_space": {"algorithm": {"grid": ["SAC", "DQN"]}},
            "resources": resources,
        }
    )


R = "experiment.resources"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"num_learners": -1}, f"{R}.num_learners = -1: must be an integer in [0, 64]"),
        ({"num_learners": 65}, f"{R}.num_learners = 65: must be an integer in [0, 64]"),
        ({"num_learners": 1.5}, f"{R}.num_learners = 1.5: must be an integer"),
        ({"num_learners": True}, f"{R}.num_learners = True: must be an integer"),
        ({"num_gpus_per_learner": -0.5}, f"{R}.num_gpus_per_learner = -0.5: must be a number >= 0"),
        ({"num_gpus_per_learner": "one"}, f"{R}.num_gpus_per_learner = 'one': must be a number"),
        (
            {"num_gpus_per_learner": 1.5},
            f"{R}.num_gpus_per_learner = 1.5: must be >= 0, a fraction below 1 or a whole number",
        ),
        ({"num_gpu": 1}, f"{R}: unknown field 'num_gpu'"),
    ],
)
def test_bad_learner_resources_give_one_line(resources: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        experiment(**resources)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("resources", "learners", "gpus"),
    [
        ({}, 0, 0.0),
        ({"num_gpus_per_learner": 1}, 0, 1.0),
        ({"num_learners": 2, "num_gpus_per_learner": 0.25}, 2, 0.25),
    ],
)
def test_learner_resources_reach_every_algorithm_config(
    resources: dict, learners: int, gpus: float
) -> None:
    exp = experiment(**resources)
    res = exp.trial_spec().resources
    assert (res.num_learners, res.num_gpus_per_learner) == (learners, gpus)
    for algo in ("SAC", "DQN"):
        config = build_algorithm_config(exp.trial_spec(algo), RLlibDNTEnv)
        assert (config.num_learners, config.num_gpus_per_learner) == (learners, gpus)
    params = trial_params(exp.trial_spec("SAC"))
    assert (params["num_learners"], params["num_gpus_per_learner"]) == (str(learners), str(gpus))


def test_trials_written_before_the_fields_learn_on_the_trial_cpu() -> None:
    saved = experiment().trial_spec().to_params()
    for key in ("num_learners", "num_gpus_per_learner"):
        del saved[key]
    spec = TrialSpec.from_params(saved)
    config = build_algorithm_config(spec, RLlibDNTEnv)
    assert (config.num_learners, config.num_gpus_per_learner) == (0, 0)
    assert trial_params(spec)["num_learners"] == "0"


@pytest.mark.parametrize(
    ("resources", "bundles"),
    [
        ({}, [{"CPU": 1}]),  # today's trial: one CPU
        ({"num_env_runners": 2}, [{"CPU": 1}] * 3),
        ({"num_learners": 2}, [{"CPU": 1}] * 3),  # learner actors on CPUs
        ({"num_gpus_per_learner": 1}, [{"CPU": 1, "GPU": 1}]),  # learns in the trial
        ({"num_gpus_per_learner": 0.5}, [{"CPU": 1, "GPU": 0.5}]),
        (
            {"num_env_runners": 1, "num_learners": 2, "num_gpus_per_learner": 1},
            [{"CPU": 1}, {"CPU": 1}, {"GPU": 1}, {"GPU": 1}],
        ),
    ],
)
def test_placement_group_reserves_the_learners(resources: dict, bundles: list) -> None:
    exp = experiment(**resources)
    group = trial_resources(exp)
    assert [{k: v for k, v in b.items() if k != "memory"} for b in group.bundles] == bundles
    assert group.strategy == "PACK"
    # the trial's process declares its memory; env runners and learners do not
    assert group.bundles[0]["memory"] == math.ceil(trial_memory(exp))
    assert not any("memory" in b for b in group.bundles[1:])


def test_trial_memory_is_the_process_its_replay_and_its_evaluation() -> None:
    """SAC and DQN on the default network (U = 10, N = 6, T = 30, M = 5; observations of 47
    entries): 0.6 GiB + 100,000 transitions × (2 × 4 × 47 + 50) B + the threshold rule's
    replay, 6,000 × 16 × 10 × (30 + 3 × 5) B."""
    from dnt_rllib.env.observation import observation_dim

    exp = experiment()
    assert observation_dim(exp.env) == 47
    expected = TRIAL_PROCESS_BYTES + 100_000 * 426 + 6_000 * 160 * 45
    assert trial_memory(exp) == pytest.approx(expected)
    bigger = parse_experiment(
        {"algorithm": "SAC", "training": {"SAC": {"replay_buffer_config": {"capacity": 10**6}}}}
    )
    assert trial_memory(bigger) == pytest.approx(expected + 900_000 * 426)
    ppo = parse_experiment({"algorithm": "PPO"})  # no replay buffer
    assert trial_memory(ppo) == pytest.approx(TRIAL_PROCESS_BYTES + 6_000 * 160 * 45)


def test_a_trial_that_needs_more_memory_than_there_is_is_refused() -> None:
    exp = parse_experiment(
        {"algorithm": "SAC", "training": {"SAC": {"replay_buffer_config": {"capacity": 10**7}}}}
    )
    need = trial_memory(exp)  # 0.6 GiB + 4.0 GiB of replay
    check_resources(exp, {"CPU": 2, "memory": need + 1}, "this machine")
    check_resources(exp, {"CPU": 2}, "a cluster")  # its memory not told: left to Ray
    with pytest.raises(ConfigError) as err:
        check_resources(exp, {"CPU": 2, "memory": 4 * 2**30}, "this machine")
    assert str(err.value) == (
        "experiment.training (replay_buffer_config.capacity; env num_users, num_rbs, "
        f"frame_stack): a trial needs memory {need / 2**30:.2f} GiB (its process, replay "
        "buffer and evaluation), this machine has memory 4.00 GiB for Ray's tasks and "
        "actors; lower them, or run where there are more (--address)"
    )
