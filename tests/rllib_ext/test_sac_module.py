"""SAC's discrete log-probabilities stay finite when the actor saturates
(:mod:`dnt_rllib.rllib_ext.sac_module`): with logits 400 apart, p·log p is 0 (its limit) and
every gradient finite, where RLlib's own module gives NaN; unsaturated, the two agree."""

from __future__ import annotations

import pytest
import torch
from ray.rllib.algorithms.sac.sac_learner import ACTION_LOG_PROBS, ACTION_PROBS
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.rllib_ext.sac_module import FiniteLogProbSACTorchRLModule
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, observation_mode="decision")


def sac_module(module_class: type) -> DefaultSACTorchRLModule:
    """The trial's SAC module (``build_algorithm_config``), built as ``module_class``."""
    spec = TrialSpec.make(CONFIG, "SAC", model={"fcnet_hiddens": [8]})
    algo_config = build_algorithm_config(spec, RLlibDNTEnv)
    env = DNTSyncEnv(CONFIG)
    module_spec = algo_config.get_rl_module_spec(
        spaces={"default_policy": (env.observation_space, env.action_space)}
    )
    assert module_spec.module_class is FiniteLogProbSACTorchRLModule
    module_spec.module_class = module_class
    torch.manual_seed(0)
    module = module_spec.build()
    module.make_target_networks()  # as the learner does
    return module


def entropy_term_and_grads(module: DefaultSACTorchRLModule, gap: float) -> tuple:
    """Σ p·log p over a batch whose actor logits are ``gap`` apart, and the gradients of
    the actor's parameters."""
    with torch.no_grad():  # logits = the head's bias: (gap/2, −gap/2) for every observation
        module.pi.net.mlp[-1].weight.zero_()
        module.pi.net.mlp[-1].bias.copy_(torch.tensor([gap / 2, -gap / 2]))
    obs = torch.zeros(4, module.observation_space.shape[0])
    out = module._forward_train_discrete({Columns.OBS: obs, Columns.NEXT_OBS: obs})
    term = (out[ACTION_PROBS] * out[ACTION_LOG_PROBS]).sum()
    params = list(module.pi.parameters()) + list(module.pi_encoder.parameters())
    return term, out[ACTION_LOG_PROBS], torch.autograd.grad(term, params)


def test_saturated_actor_has_finite_log_probs_and_gradients() -> None:
    term, log_probs, grads = entropy_term_and_grads(
        sac_module(FiniteLogProbSACTorchRLModule), 400.0
    )
    assert torch.isfinite(log_probs).all()
    assert term.item() == 0.0  # p = 1 and p = 0: both p·log p are 0
    assert all(torch.isfinite(g).all() for g in grads)
    # RLlib's own: p = 0 gives log p = −inf and NaN gradients (an upgrade that fixes it shows)
    _, log_probs, grads = entropy_term_and_grads(sac_module(DefaultSACTorchRLModule), 400.0)
    assert torch.isinf(log_probs).any()
    assert not all(torch.isfinite(g).all() for g in grads)


def test_unsaturated_log_probs_are_rllibs() -> None:
    """Logits 3 apart: p = (1/(1+e^−3), 1/(1+e^3)), log p as computed by hand, and the
    same gradients as RLlib's module."""
    ours = entropy_term_and_grads(sac_module(FiniteLogProbSACTorchRLModule), 3.0)
    theirs = entropy_term_and_grads(sac_module(DefaultSACTorchRLModule), 3.0)
    expected = torch.log(torch.sigmoid(torch.tensor([3.0, -3.0])))
    torch.testing.assert_close(ours[1][0], expected)
    torch.testing.assert_close(ours[0], theirs[0])
    for a, b in zip(ours[2], theirs[2], strict=True):
        torch.testing.assert_close(a, b)
    assert ours[0].item() == pytest.approx(4 * float((expected.exp() * expected).sum()), rel=1e-5)
