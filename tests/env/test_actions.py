"""Actions outside the action space are refused, not mapped onto some RB."""

from __future__ import annotations

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv
from dnt_rllib.env import DNTSyncVectorEnv

HOLD = {"twin": "hold", "num_users": 3, "num_rbs": 3, "episode_length": 4}


@pytest.mark.parametrize(
    ("mode", "action"), [("rb", -1), ("rb", 4), ("binary", 5), ("binary", 1.7), ("binary", True)]
)
def test_env_refuses_actions_outside_its_space(mode: str, action: object) -> None:
    env = DNTSyncEnv({**HOLD, "action_mode": mode})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^action .*: must be an integer in 0\.\."):
        env.step(action)


@pytest.mark.parametrize("action", [0, 1, np.int64(1), np.array(1)])
def test_env_takes_its_actions(action: object) -> None:
    env = DNTSyncEnv(HOLD)
    env.reset(seed=0)
    env.step(action)


@pytest.mark.parametrize(
    ("mode", "actions"),
    [("rb", [-1, 0]), ("binary", [5, 0]), ("binary", [1.7, 0.0]), ("binary", [0])],
)
def test_vector_env_refuses_actions_outside_its_space(mode: str, actions: list) -> None:
    env = DNTSyncVectorEnv(2, {**HOLD, "action_mode": mode})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"^actions .*: must be 2 integers in 0\.\."):
        env.step(np.asarray(actions))
    env.step(np.array([0, 1]))
