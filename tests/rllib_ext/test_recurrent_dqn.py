"""DQN's module with an LSTM explores one action per env and slot on a vector env (RLlib's
own ε-greedy broadcasts a (B, 1) greedy batch against (B,) random draws into (B, B))."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import tree
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.core.columns import Columns

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.rllib_ext.recurrent_dqn import RecurrentDQNTorchRLModule
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.trial.trained_policy import build_module

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=7, history=3)
ENVS = 3


def batch_of(module: RecurrentDQNTorchRLModule) -> dict:
    """One slot of ``ENVS`` envs, as an env runner hands it to the module: (B, T = 1, obs)."""
    dim = DNTSyncEnv.spaces(CONFIG)[0].shape[0]
    obs = torch.randn((ENVS, 1, dim), generator=torch.Generator().manual_seed(0))
    state = tree.map_structure(lambda s: s[None].repeat(ENVS, 1, 1), module.get_initial_state())
    return {Columns.OBS: obs, Columns.STATE_IN: state}


@pytest.fixture(scope="module")
def module() -> RecurrentDQNTorchRLModule:
    spec = TrialSpec.make(
        CONFIG,
        "DQN",
        replay="rllib",
        model={"fcnet_hiddens": [8], "use_lstm": True, "lstm_cell_size": 4},
    )
    built = build_module(spec)
    assert type(built) is RecurrentDQNTorchRLModule and built.is_stateful()
    return built


def test_exploring_gives_one_action_per_env_and_slot(module: RecurrentDQNTorchRLModule) -> None:
    batch = batch_of(module)
    with torch.no_grad():
        out = module.forward_exploration(batch, t=0)  # ε = 1 at t = 0: every action random
        theirs = DefaultDQNTorchRLModule._forward_exploration(module, batch, 0)
    assert out[Columns.ACTIONS].shape == (ENVS, 1)
    assert set(out[Columns.ACTIONS].reshape(-1).tolist()) <= {0, 1}
    assert out[Columns.STATE_OUT]["h"].shape == (ENVS, 1, 4)
    assert theirs[Columns.ACTIONS].shape == (ENVS, ENVS)  # RLlib's: why the class exists


def test_with_no_exploration_it_acts_greedily(
    module: RecurrentDQNTorchRLModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = batch_of(module)
    never = SimpleNamespace(update=lambda t: None, get_current_value=lambda: 0.0)
    monkeypatch.setattr(module, "epsilon_schedule", never)
    with torch.no_grad():
        out = module.forward_exploration(batch, t=0)
        greedy = module.forward_inference(batch)
    assert torch.equal(out[Columns.ACTIONS], greedy[Columns.ACTIONS])
    assert torch.equal(out[Columns.STATE_OUT]["c"], greedy[Columns.STATE_OUT]["c"])


def test_a_stateless_dqn_keeps_rllibs_module() -> None:
    spec = TrialSpec.make(CONFIG, "DQN", replay="rllib", model={"fcnet_hiddens": [8]})
    assert type(build_module(spec)) is not RecurrentDQNTorchRLModule
