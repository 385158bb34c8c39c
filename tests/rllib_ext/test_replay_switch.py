"""The ``replay`` YAML switch: validated like every key, searchable, carried to the trial,
the RLlib config and MLflow."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from ray.rllib.algorithms.dqn import DQN
from ray.rllib.algorithms.sac import SAC

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.rllib_ext.fast_replay import BatchReplayDQN, BatchReplaySAC
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.tracking.mlflow_runs import trial_params
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.tuning.space import param_space
from dnt_rllib.validation import ConfigError


@pytest.mark.parametrize(
    ("replay", "algorithm", "cls"),
    [
        (None, "SAC", BatchReplaySAC),  # the default: the fast path
        ({"kind": "fast"}, "DQN", BatchReplayDQN),
        ({"kind": "rllib"}, "SAC", SAC),
        ({"kind": "rllib"}, "DQN", DQN),
    ],
)
def test_kind_picks_the_algorithm_class(replay: dict | None, algorithm: str, cls: type) -> None:
    raw = {"algorithm": algorithm, **({"replay": replay} if replay else {})}
    base = parse_experiment(raw).trial_spec()
    config = build_algorithm_config(base, RLlibDNTEnv)
    assert config.algo_class is cls
    assert config.replay_buffer_config["type"] == "EpisodeReplayBuffer"  # as RLlib validates
    assert trial_params(base)["replay.kind"] == (replay or {"kind": "fast"})["kind"]


def test_a_trial_saved_before_the_switch_rebuilds_on_rllib_replay() -> None:
    saved = parse_experiment({"algorithm": "SAC"}).trial_spec().to_params()
    del saved["replay"]
    spec = TrialSpec.from_params(saved)
    assert build_algorithm_config(spec, RLlibDNTEnv).algo_class is SAC


@pytest.mark.parametrize(
    ("replay", "message"),
    [
        ({"kind": "episodes"}, "experiment.replay.kind = 'episodes': must be one of"),
        ({"capacity": 5}, "experiment.replay: unknown field 'capacity'; allowed fields: kind"),
        ("fast", "experiment.replay: must be a mapping"),
    ],
)
def test_bad_replay_is_one_line(replay: object, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        parse_experiment({"algorithm": "SAC", "replay": replay})


def test_replay_kind_is_searchable() -> None:
    exp = parse_experiment(
        {"algorithm": "SAC", "search_space": {"replay.kind": {"grid": ["fast", "rllib"]}}}
    )
    assert param_space(exp)["replay"]["kind"] == {"grid_search": ["fast", "rllib"]}
    with pytest.raises(ConfigError, match=r"replay\.kind = 'ring'"):
        parse_experiment(
            {"algorithm": "SAC", "search_space": {"replay.kind": {"grid": ["fast", "ring"]}}}
        )


def test_fast_path_refuses_a_prioritised_buffer() -> None:
    buffer = {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 1000}
    training = {"DQN": {"replay_buffer_config": buffer}}
    with pytest.raises(
        ConfigError,
        match=r"^experiment\.training\.DQN\.replay_buffer_config"
        r"\.type = .*replay\.kind = fast samples uniformly",
    ):
        parse_experiment({"algorithm": "DQN", "training": training})  # the default: fast
    searched = {"replay.kind": {"grid": ["rllib", "fast"]}}
    with pytest.raises(ConfigError, match=r"replay\.kind = fast samples uniformly"):
        parse_experiment({"algorithm": "DQN", "training": training, "search_space": searched})
    raw = {"algorithm": "DQN", "training": training, "replay": {"kind": "rllib"}}
    base = replace(parse_experiment(raw).trial_spec(), replay="fast")
    with pytest.raises(ValueError, match=r"replay\.kind = fast samples uniformly"):
        BatchReplayDQN._create_local_replay_buffer_if_necessary(
            None, build_algorithm_config(base, RLlibDNTEnv)
        )


def test_a_buffer_config_without_type_stays_an_episode_buffer() -> None:
    """RLlib's default type is the prioritised buffer; the paper's is kept unless named."""
    training = {"DQN": {"replay_buffer_config": {"capacity": 1000}}}
    base = parse_experiment({"algorithm": "DQN", "training": training}).trial_spec()
    buffer = build_algorithm_config(base, RLlibDNTEnv).replay_buffer_config
    assert buffer["type"] == "EpisodeReplayBuffer" and buffer["capacity"] == 1000
