"""``model: {kind: set}`` in an experiment YAML: accepted on a set observation with the
binary action, refused in one line naming the field otherwise (before any work)."""

from __future__ import annotations

from typing import Any

import pytest

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.validation import ConfigError

SET_ENV = {"observation_mode": "set", "twin": "hold"}

BAD: list[tuple[dict[str, Any], str]] = [
    ({"model": {"kind": "deepsets"}},
     "experiment.model.kind = 'deepsets': must be one of 'mlp', 'set'"),
    ({"model": {"kind": "set", "use_lstm": True}, "env": SET_ENV, "algorithm": "DQN",
      "replay": {"kind": "rllib"}, "learner": {"kind": "rllib"}},
     "model.use_lstm = true with model.kind = set: the set encoder is not recurrent"),
    ({"model": {"kind": "set"}, "env": {"observation_mode": "decision"}},
     "model.kind = set with env.observation_mode = decision: the set encoder reads"),
    ({"model": {"kind": "set"}, "env": {**SET_ENV, "action_mode": "rb"}},
     "model.kind = set with env.action_mode = rb: its N + 1 actions"),
    ({"model": {"kind": "set"}, "env": SET_ENV,
      "search_space": {"env.observation_mode": {"grid": ["set", "memory"]}}},
     "env.observation_mode = memory"),
    ({"model": {"set_hiddens": [8]}, "env": SET_ENV}, "model.set_hiddens with model.kind = mlp"),
    ({"model": {"kind": "set", "set_hiddens": []}, "env": SET_ENV}, "set_hiddens = []"),
    ({"model": {"kind": "set", "set_hiddens": [8192, 8192, 8192]}, "env": SET_ENV},
     "the per-user and per-RB layers hold 269 M weights"),  # 4·8192² + 13·8192
    ({"env": SET_ENV, "search_space": {"model.kind": {"grid": ["mlp", "set"]}}},
     "model.kind is not searched"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "says"), BAD)
def test_refused_in_one_line(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment({"algorithm": "SAC", **raw})
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("algorithm", ["SAC", "DQN", "PPO"])
@pytest.mark.parametrize("mode", ["set", "set_memory"])
def test_accepted_on_a_set_observation(algorithm: str, mode: str) -> None:
    model = {"kind": "set", "set_hiddens": [32], "width": 64}
    exp = parse_experiment({"algorithm": algorithm, "env": {"observation_mode": mode},
                            "model": model})  # fmt: skip
    assert exp.model == model
