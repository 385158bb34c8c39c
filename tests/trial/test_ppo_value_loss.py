"""PPO's value function learns at this env's returns: the project's PPO config, through
RLlib's own PPO torch learner loss, gives the value head a non-zero gradient when the value
targets are this env's discounted returns (~10²) and the predictions are ~0.

RLlib clips the *squared* value error at ``vf_clip_param`` (``clamp(err², 0, clip)``): at
RLlib's default 10 every such error is clipped, and the gradient is exactly zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.trial.rllib_config import build_algorithm_config

#: The network of the default PPO trial, with the hold-last twin (no GRU to train).
RAW = {"algorithm": "PPO", "env": {"twin": "hold"}}


def discounted_returns(raw: dict[str, Any], gamma: float, episodes: int = 4) -> np.ndarray:
    """G_t = Σ_k γ^k r_{t+k} of every slot of a few episodes of random actions, summed by
    hand from the rewards (the value targets of this size PPO learns from)."""
    env = DNTSyncEnv(parse_experiment(raw).env)
    rng = np.random.default_rng(0)
    returns: list[float] = []
    for seed in range(episodes):
        env.reset(seed=seed)
        rewards, done = [], False
        while not done:
            _, r, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            rewards.append(float(r))
            done = terminated or truncated
        g, back = 0.0, []
        for r in reversed(rewards):
            g = r + gamma * g
            back.append(g)
        returns += back[::-1]
    return np.array(returns)


def value_head_bias_grad(
    raw: dict[str, Any], targets: np.ndarray
) -> tuple[float, np.ndarray, float]:
    """(d loss / d value head's output bias, the value predictions, vf_loss_coeff) of one
    PPO loss through RLlib's learner, built from the trial's config; advantages 0, so only
    the value loss reaches the value head."""
    config = build_algorithm_config(parse_experiment(raw).trial_spec(), RLlibDNTEnv)
    env = DNTSyncEnv(parse_experiment(raw).env)
    learner = config.build_learner(
        spaces={DEFAULT_MODULE_ID: (env.observation_space, env.action_space)}
    )
    module = learner.module[DEFAULT_MODULE_ID]
    env.observation_space.seed(0)
    size = len(targets)
    batch: dict[str, Any] = {
        Columns.OBS: torch.as_tensor(
            np.stack([env.observation_space.sample() for _ in range(size)]), dtype=torch.float32
        )
    }
    with torch.no_grad():
        logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        values = module.compute_values(batch)
    actions = torch.zeros(size, dtype=torch.int64)
    dist = module.get_train_action_dist_cls().from_logits(logits)
    batch |= {
        Columns.ACTIONS: actions,
        Columns.ACTION_LOGP: dist.logp(actions),
        Columns.ACTION_DIST_INPUTS: logits,
        Postprocessing.ADVANTAGES: torch.zeros(size),
        Postprocessing.VALUE_TARGETS: torch.as_tensor(targets, dtype=torch.float32),
    }
    loss = learner.compute_loss_for_module(
        module_id=DEFAULT_MODULE_ID,
        config=config.get_config_for_module(DEFAULT_MODULE_ID),
        batch=batch,
        fwd_out=module.forward_train(batch),
    )
    module.zero_grad()
    loss.backward()
    bias = dict(module.named_parameters())["vf.net.mlp.0.bias"]  # V = w·h + b
    assert bias.numel() == 1 and bias.grad is not None
    return float(bias.grad), values.numpy().astype(np.float64), float(config.vf_loss_coeff)


def test_the_value_loss_has_a_gradient_at_this_envs_returns() -> None:
    gamma = 0.8  # Table I's β, the PPO trial's discount
    assert build_algorithm_config(parse_experiment(RAW).trial_spec(), RLlibDNTEnv).gamma == gamma
    targets = discounted_returns(RAW, gamma)
    assert 30 < targets.mean() < 300  # this env's returns: ~10²
    grad, values, coeff = value_head_bias_grad(RAW, targets)
    assert np.abs(values).max() < 1 and coeff > 0  # an untrained value head: predictions ~0
    # by hand: loss = coeff · mean_i (v_i − G_i)² + terms without v, so ∂/∂b = 2·coeff·mean(v − G)
    assert grad == pytest.approx(2 * coeff * (values - targets).mean(), rel=1e-4)
    assert grad < -10  # pulls the values up towards the returns

    # the contrast: RLlib's default clip, 10, caps every squared error (all > 10 here) and
    # the value head gets nothing
    assert ((values - targets) ** 2).min() > 10
    clipped = {**RAW, "training": {"PPO": {"vf_clip_param": 10}}}
    assert value_head_bias_grad(clipped, targets)[0] == 0.0
