"""The set model (:mod:`dnt_rllib.rllib_ext.set_model`): its outputs do not depend on the
order of the users or of the RBs, the same weights run at two (U, N), and its pooled
features are the ones computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core import Columns
from ray.rllib.core.models.base import ENCODER_OUT

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.bench.set_encoder import autograd_pool
from dnt_rllib.env.observation import SetLayout
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.rllib_ext.set_model import (
    ItemEncoder,
    ReluMeanMax,
    SetEncoder,
    SetEncoderConfig,
)
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec

MODEL = {"kind": "set", "set_hiddens": [16, 16], "fcnet_hiddens": [16]}


def cell(users: int, rbs: int, **changes: object) -> SystemConfig:
    return SystemConfig(twin="hold", observation_mode="set_memory", num_users=users,
                        num_rbs=rbs, episode_length=8, history=3, frame_stack=2,
                        mobility_model="gauss_markov", **changes)  # fmt: skip


def full_module(algorithm: str, config: SystemConfig) -> torch.nn.Module:
    """The learner's module (every network) of a set-model trial on ``config``, seeded."""
    torch.manual_seed(0)
    spec = TrialSpec.make(config, algorithm, model=MODEL)
    env = DNTSyncEnv(config)
    spaces = {"default_policy": (env.observation_space, env.action_space)}
    rl_spec = build_algorithm_config(spec, RLlibDNTEnv).get_rl_module_spec(spaces=spaces)
    return rl_spec.build()


def observations(config: SystemConfig, count: int = 4) -> np.ndarray:
    """(count, dim): the observations of a few slots of one episode, syncing every other."""
    env = DNTSyncEnv(config)
    rows = [env.reset(seed=3)[0]]
    for t in range(count - 1):
        rows.append(env.step(t % 2)[0])
    return np.stack(rows)


def permuted(obs: np.ndarray, config: SystemConfig, users: np.ndarray, rbs: np.ndarray
             ) -> np.ndarray:  # fmt: skip
    """``obs`` with its users reordered by ``users`` and its RBs by ``rbs`` in every frame,
    cut by hand: 2 headers, G = 4 + 1 + M globals, F_u = 7 (Gauss–Markov), 2 per RB."""
    u, n, m = config.num_users, config.num_rbs, config.history
    g, f = 2 + 4 + 1 + m, 7
    frame = g + u * f + 2 * n
    out = obs.copy()
    for k in range(config.frame_stack):
        at = k * frame + g
        block = obs[:, at : at + u * f].reshape(-1, u, f)
        out[:, at : at + u * f] = block[:, users].reshape(len(obs), -1)
        at += u * f
        block = obs[:, at : at + 2 * n].reshape(-1, n, 2)
        out[:, at : at + 2 * n] = block[:, rbs].reshape(len(obs), -1)
    return out


def outputs(algorithm: str, module: torch.nn.Module, obs: np.ndarray) -> list[torch.Tensor]:
    """The Q-values (SAC: both critics, DQN) and action logits (SAC, PPO; and PPO's
    values) of ``obs``."""
    batch = {Columns.OBS: torch.from_numpy(obs)}
    with torch.no_grad():
        if algorithm == "DQN":
            return [module.af(module.encoder(batch)[ENCODER_OUT])]
        if algorithm == "SAC":
            logits = module.pi(module.pi_encoder(batch)[ENCODER_OUT])
            return [logits, module.qf(module.qf_encoder(batch)[ENCODER_OUT]),
                    module.qf_twin(module.qf_twin_encoder(batch)[ENCODER_OUT])]  # fmt: skip
        out = module.forward_inference(batch)
        return [out[Columns.ACTION_DIST_INPUTS], module.compute_values(batch)]


@pytest.mark.parametrize("algorithm", ["SAC", "DQN", "PPO"])
def test_permuting_users_or_rbs_leaves_q_values_and_action_probabilities(algorithm: str) -> None:
    config = cell(5, 4)
    module = full_module(algorithm, config)
    obs = observations(config)
    base = outputs(algorithm, module, obs)
    ident_u, ident_n = np.arange(5), np.arange(4)
    swapped_users = permuted(obs, config, np.array([3, 0, 4, 2, 1]), ident_n)
    swapped_rbs = permuted(obs, config, ident_u, np.array([2, 3, 1, 0]))
    assert not np.array_equal(swapped_users, obs) and not np.array_equal(swapped_rbs, obs)
    for other in (swapped_users, swapped_rbs):
        for a, b in zip(base, outputs(algorithm, module, other), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the outputs do read the users: moving one user changes them
    moved = obs.copy()
    moved[:, 2 + 8] += 0.5  # frame 0, user 0's x
    assert not torch.allclose(base[0], outputs(algorithm, module, moved)[0])


@pytest.mark.parametrize("algorithm", ["SAC", "DQN", "PPO"])
def test_the_same_weights_run_at_two_cell_sizes(algorithm: str) -> None:
    small, big = cell(3, 2), cell(11, 7)
    trained = full_module(algorithm, small)
    other = full_module(algorithm, big)
    other.load_state_dict(trained.state_dict(), strict=True)  # no weight is sized by U or N
    obs = observations(big)
    for a, b in zip(outputs(algorithm, trained, obs), outputs(algorithm, other, obs), strict=True):
        torch.testing.assert_close(a, b)
    # every user and RB twice: the same means and maxima, so the same outputs
    u, n = 11, 7
    twice = listed_twice(obs, big)
    assert twice.shape == (4, 2 * (2 + 8 + 2 * u * 7 + 2 * 2 * n))
    for a, b in zip(outputs(algorithm, trained, obs), outputs(algorithm, trained, twice),
                    strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def listed_twice(obs: np.ndarray, config: SystemConfig) -> np.ndarray:
    """``obs`` of a cell with every user and every RB listed twice (headers 2U and 2N)."""
    u, n, g, f = config.num_users, config.num_rbs, 2 + 4 + 1 + config.history, 7
    frame = g + u * f + 2 * n
    frames = []
    for k in range(config.frame_stack):
        part = obs[:, k * frame : (k + 1) * frame]
        head = part[:, :g].copy()
        head[:, 0] *= 2  # U·2^-16 → 2U·2^-16
        head[:, 1] *= 2
        users = part[:, g : g + u * f]
        rbs = part[:, g + u * f :]
        frames += [head, users, users, rbs, rbs]
    return np.concatenate(frames, axis=1)


def identity_items(encoder: ItemEncoder) -> None:
    """Make φ the identity on non-negative inputs: one ReLU layer, W = I, b = 0."""
    with torch.no_grad():
        encoder.last.weight.copy_(torch.eye(encoder.last.weight.shape[0]))
        encoder.last.bias.zero_()


def test_pooled_features_of_two_users_by_hand() -> None:
    """φ, ψ = ReLU (one layer, W = I, b = 0): the pooled vector is [mean_u relu(x_u),
    max_u relu(x_u), mean_n relu(z_n), max_n relu(z_n), g], here for U = 2 users and N = 1
    RB of one frame, G = 2, F_u = 2."""
    config = SetEncoderConfig(input_dims=[10], globals=2, user_features=2, frames=1,
                              item_hiddens=[2], hidden_layer_dims=[4])  # fmt: skip
    encoder = SetEncoder(config)
    identity_items(encoder.users)
    identity_items(encoder.rbs)
    unit = 2.0**-16
    # headers, globals | user 1, user 2 | the RB
    obs = torch.tensor([[2 * unit, 1 * unit, 0.5, -0.5, 0.1, 0.8, -0.3, 0.4, 0.25, -1.0]])
    pooled = encoder.pooled(obs)
    # users after the ReLU: (0.1, 0.8), (0, 0.4); the RB: (0.25, 0)
    # mean, max over the users | mean, max of the one RB | the globals
    expected = [0.05, 0.6, 0.1, 0.8, 0.25, 0.0, 0.25, 0.0, 0.5, -0.5]
    torch.testing.assert_close(pooled, torch.tensor([expected]))
    with pytest.raises(ValueError, match="headers say U = 3, N = 1"):
        encoder.pooled(torch.cat([obs[:, :1] * 1.5, obs[:, 1:]], dim=1))


@pytest.mark.parametrize("hiddens", [[3], [4, 3]])
def test_item_pooling_matches_autograds_mean_and_max(hiddens: list[int]) -> None:
    """The fused last layer and pooling give autograd's values and gradients of
    [mean_i relu(x_i W + b), max_i relu(x_i W + b)] (weights, bias and, with an inner
    layer, the items' inputs), in float64."""
    torch.manual_seed(0)
    encoder = ItemEncoder(5, hiddens).double()
    items = torch.randn(6, 7, 5, dtype=torch.float64)
    mix = torch.randn(2 * hiddens[-1], dtype=torch.float64)

    fused, reference = encoder(items), autograd_pool(encoder, items)
    torch.testing.assert_close(fused, reference)
    params = list(encoder.parameters())
    got = torch.autograd.grad((fused * mix).sum(), params)
    want = torch.autograd.grad((reference * mix).sum(), params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    x = torch.cat([items, items.new_ones(6, 7, 1)], dim=-1).requires_grad_()
    weight = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ReluMeanMax.apply, (x, weight))


def test_two_stacked_frames_make_one_input_per_user() -> None:
    """k = 2: user u's input is its frame-0 features then its frame-1 features."""
    config = SetEncoderConfig(input_dims=[18], globals=1, user_features=2, frames=2,
                              item_hiddens=[4], hidden_layer_dims=[4])  # fmt: skip
    encoder = SetEncoder(config)
    unit = 2.0**-16
    # one frame: 2 headers + 1 global + 2 users × 2 + 1 RB × 2 = 9 entries
    f0 = [2 * unit, unit, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    f1 = [2 * unit, unit, -0.9, -0.1, -0.2, -0.3, -0.4, -0.5, -0.6]
    glob, users, rbs = encoder.split(torch.tensor([f0 + f1]))
    torch.testing.assert_close(glob, torch.tensor([[0.9, -0.9]]))
    torch.testing.assert_close(users, torch.tensor([[[0.1, 0.2, -0.1, -0.2],
                                                     [0.3, 0.4, -0.3, -0.4]]]))  # fmt: skip
    torch.testing.assert_close(rbs, torch.tensor([[[0.5, 0.6, -0.5, -0.6]]]))
    assert SetLayout(globals=1, user_features=2, users=2, rbs=1).frame == 9
