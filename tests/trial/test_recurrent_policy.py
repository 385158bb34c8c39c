"""The greedy policy of a recurrent module (``model: {use_lstm: true}``, PPO and DQN): its
state runs from slot to slot within an episode and starts afresh at each episode's first
slot. Expected actions come from the module's weights, run through the tokenizer, the LSTM
cell's equations and the head by hand (plain tensor algebra, no RLlib or ``nn.LSTM``).

The weights make the state decide: the LSTM's first unit flips its sign every slot, and the
head acts on that sign (sync when it is positive), so the actions alternate 1, 0, 1, … only
if the state is carried; with the state dropped every slot, every action is 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.scoring import run_policy
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.trial.trained_policy import RecurrentGreedy, build_module, greedy_policy

#: An odd number of slots: the state an episode ends with would flip the next one's first
#: action, were it carried over.
CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=7, history=3)
CELL = 4
#: Where each algorithm's LSTM encoder and action head sit in the module.
PARTS = {"PPO": ("encoder.actor_encoder.", "pi.net.mlp.0."), "DQN": ("encoder.", "af.net.mlp.0.")}


def toggling_module(algorithm: str) -> Any:
    """A tiny recurrent module whose LSTM unit 0 flips sign each slot (input gate and output
    gate open, forget gate shut, candidate −5·h + 1), with small random input weights, and
    whose head prefers action 1 by h[0]."""
    model = {"fcnet_hiddens": [8], "use_lstm": True, "lstm_cell_size": CELL}
    module = build_module(TrialSpec.make(CONFIG, algorithm, replay="rllib", model=model))
    encoder, head = PARTS[algorithm]
    gen = torch.Generator().manual_seed(0)
    weights = module.state_dict()
    with torch.no_grad():
        for key in ("tokenizer.net.mlp.0.weight", "tokenizer.net.mlp.0.bias",
                    "lstm.weight_ih_l0", "lstm.weight_hh_l0"):  # fmt: skip
            tensor = weights[encoder + key]
            tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
        gates_ih, gates_hh = (
            weights[encoder + "lstm.bias_ih_l0"],
            weights[encoder + "lstm.bias_hh_l0"],
        )
        gates_ih.zero_(), gates_hh.zero_()
        i, f, g, o = (slice(k * CELL, (k + 1) * CELL) for k in range(4))
        gates_ih[i], gates_ih[f], gates_ih[o] = 10.0, -10.0, 10.0
        gates_ih[g.start] = 1.0
        weights[encoder + "lstm.weight_hh_l0"][g.start, 0] = -5.0
        weights[head + "weight"].zero_(), weights[head + "bias"].zero_()
        weights[head + "weight"][1, 0] = 1.0
    module.eval()
    return module


def by_hand(module: Any, algorithm: str, reset_every_slot: bool = False) -> Callable:
    """The module's greedy action from its weights: relu(W x + b) → the LSTM cell (gates i,
    f, g, o) → the linear head, argmax; (h, c) zero at each episode's first slot."""
    w = {k: v.detach().clone() for k, v in module.state_dict().items()}
    encoder, head = PARTS[algorithm]
    state: dict[str, torch.Tensor] = {}

    def policy(env: DNTSyncEnv, obs: np.ndarray) -> int:
        if env.slot == 0 or reset_every_slot:
            state["h"], state["c"] = torch.zeros(CELL), torch.zeros(CELL)
        x = torch.as_tensor(obs, dtype=torch.float32)
        x = torch.relu(w[encoder + "tokenizer.net.mlp.0.weight"] @ x
                       + w[encoder + "tokenizer.net.mlp.0.bias"])  # fmt: skip
        lstm = {k: w[f"{encoder}lstm.{k}_l0"] for k in ("weight_ih", "bias_ih", "weight_hh",
                                                          "bias_hh")}  # fmt: skip
        gates = (lstm["weight_ih"] @ x + lstm["bias_ih"]
                 + lstm["weight_hh"] @ state["h"] + lstm["bias_hh"])  # fmt: skip
        i, f, g, o = gates.chunk(4)
        state["c"] = torch.sigmoid(f) * state["c"] + torch.sigmoid(i) * torch.tanh(g)
        state["h"] = torch.sigmoid(o) * torch.tanh(state["c"])
        return int(torch.argmax(w[head + "weight"] @ state["h"] + w[head + "bias"]))

    return policy


def actions_of(policy: Callable, seeds: list[int]) -> list[list[int]]:
    """The actions ``policy`` takes in each episode, played through the evaluation's loop."""
    played: list[list[int]] = []

    def recording(env: DNTSyncEnv, obs: np.ndarray) -> int:
        if env.slot == 0:
            played.append([])
        played[-1].append(policy(env, obs))
        return played[-1][-1]

    run_policy(DNTSyncEnv(CONFIG), recording, "policy", seeds)
    return played


@pytest.mark.parametrize("algorithm", ["PPO", "DQN"])
def test_the_greedy_lstm_policy_threads_the_state_as_by_hand(algorithm: str) -> None:
    module = toggling_module(algorithm)
    assert module.is_stateful()
    policy = greedy_policy(module)
    assert isinstance(policy, RecurrentGreedy)
    played = actions_of(policy, [10000])[0]
    assert played == actions_of(by_hand(module, algorithm), [10000])[0]
    assert played == [1, 0, 1, 0, 1, 0, 1]  # unit 0's sign: +, −, +, …
    # with the state dropped every slot, h[0] > 0 every slot: always 1
    assert actions_of(by_hand(module, algorithm, reset_every_slot=True), [10000])[0] == [1] * 7


@pytest.mark.parametrize("algorithm", ["PPO", "DQN"])
def test_the_state_starts_afresh_at_each_episode(algorithm: str) -> None:
    module = toggling_module(algorithm)
    in_a_row = actions_of(greedy_policy(module), [10000, 10001, 10002])
    alone = [actions_of(greedy_policy(module), [seed])[0] for seed in (10000, 10001, 10002)]
    assert in_a_row == alone
    assert in_a_row == actions_of(by_hand(module, algorithm), [10000, 10001, 10002])
