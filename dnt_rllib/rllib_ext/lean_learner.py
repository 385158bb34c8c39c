"""SAC and DQN learners that do RLlib's arithmetic and little else (``learner: {kind: lean}``).

Subclasses of RLlib's ``SACTorchLearner`` and ``DQNTorchLearner``: the same forward passes
(the module's own ``_forward_train``), the same losses, the same Adam optimisers with the
same learning rates and schedules, the same target-network rule and schedule
(``target_network_update_freq``, τ), the same gradient clipping. What they drop is the
per-update work that is not arithmetic (docs/speed.md, "The lean learner"):

- **one backward pass** over the sum of the losses, where RLlib's SAC runs one
  ``backward(retain_graph=True)`` per optimiser. SAC's losses touch disjoint parameter sets
  (the critics' targets, the actor's Q-values and the temperature's entropy are all
  detached, eq. (13) and Haarnoja et al.'s discrete SAC), so every gradient is the same;
- **one finiteness check** of all gradients (``torch._foreach_norm``: a norm is finite iff
  every entry is), where RLlib checks each tensor twice; a gradient that is not finite
  falls back to RLlib's rule (``nan_to_num`` unless ``torch_skip_nan_gradients``);
- **multi-tensor (``foreach``) Adam steps and Polyak updates**, where RLlib steps Adam
  tensor by tensor and updates the targets through ``state_dict``/``load_state_dict``;
- **the forward pass through the networks' own ``nn.Sequential`` layers** (discrete SAC with
  MLP encoders and heads, which is every SAC module this project builds; anything else
  takes the module's ``_forward_train``), where RLlib's module passes dictionaries through
  its encoder and head wrappers, and with the next observations' actor pass under
  ``no_grad`` (the critics' target is detached: RLlib records that graph and never uses it);
- **the loss statistics logged without the TD-error series**, which only a prioritised
  buffer reads (it is logged when the replay buffer is prioritised), and without
  ``module.train()`` walking every submodule each update (the learner's module stays in
  training mode; RLlib's ``forward_train`` sets it again on every call).

``tests/rllib_ext/test_lean_learner.py`` checks that one lean update and one RLlib update from
the same weights, optimiser state and batch give the same losses and weights, and that they
still agree after 100 updates.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.dqn.dqn_learner import LAST_TARGET_UPDATE_TS, NUM_TARGET_UPDATES
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_LOG_PROBS,
    ACTION_LOG_PROBS_NEXT,
    ACTION_PROBS,
    ACTION_PROBS_NEXT,
    LOGPS_KEY,
    QF_LOSS_KEY,
    QF_MAX_KEY,
    QF_MEAN_KEY,
    QF_MIN_KEY,
    QF_PREDS,
    QF_TARGET_NEXT,
    QF_TWIN_LOSS_KEY,
    QF_TWIN_PREDS,
    TD_ERROR_MEAN_KEY,
)
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import POLICY_LOSS_KEY
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.models.torch.encoder import TorchMLPEncoder
from ray.rllib.core.models.torch.heads import TorchMLPHead
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, TD_ERROR_KEY

logger = logging.getLogger(__name__)

#: ``learner.kind`` values: the lean learners of this module, or RLlib's own (comparison).
LEARNER_KINDS = ("lean", "rllib")
#: Updates per ``metrics.reduce()`` (RLlib: 1). An iteration of a trial holds ~50 updates.
REDUCE_EVERY = 10


class LeanUpdateMixin:
    """The update loop shared by :class:`LeanSACLearner` and :class:`LeanDQNLearner`."""

    def build(self) -> None:
        super().build()
        self._prioritised = "Prioritized" in str(self.config.replay_buffer_config.get("type", ""))
        #: updates until the next ``metrics.reduce()`` (1: every update, as RLlib)
        self._reduce_every = 1 if self._prioritised else REDUCE_EVERY
        self._since_reduce = 0
        self._fuse_optimizers()
        for module in self.module.values():  # RLlib's forward_train sets it every update
            module.train()

    def _fuse_optimizers(self) -> None:
        """Adam's fused kernel (one pass over each tensor; the same update rule)."""
        for optim in self._named_optimizers.values():
            for group in optim.param_groups:
                group["foreach"], group["fused"] = False, True
            optim._step_supports_amp_scaling = True

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        super()._set_optimizer_state(state)
        self._fuse_optimizers()  # a restored state brings RLlib's param-group flags back

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """RLlib's ``Learner.update``; its metrics are reduced (and returned) once every
        :data:`REDUCE_EVERY` updates, with the loss statistics of that update; between
        those, the counters accumulate and each module gets an empty result (RLlib's own
        training step syncs the weights of the modules a result names)."""
        self._since_reduce += 1
        due = self.stats_due()
        super().update(*args, **{**kwargs, "_no_metrics_reduce": True})
        if not due:
            return {module_id: {} for module_id in self.module._rl_modules}
        self._since_reduce = 0
        return self.metrics.reduce()

    def stats_due(self) -> bool:
        """Whether this update's loss statistics are reported (the reducing one)."""
        return self._since_reduce >= self._reduce_every

    def _uncompiled_update(self, batch: dict[str, Any], **kwargs: Any) -> tuple[Any, Any, Any]:
        """Forward, losses, one backward, one finiteness check, the optimiser steps."""
        self._compute_off_policyness(batch)
        fwd_out = {mid: self.forward_train(self.module[mid], b) for mid, b in batch.items()}
        loss_per_module = self.compute_losses(fwd_out=fwd_out, batch=batch)
        self._zero_grads()
        total = sum(loss_per_module.values())
        if isinstance(total, torch.Tensor) and total.grad_fn is not None:
            total.backward()
        grads = {pid: p.grad for pid, p in self._params.items() if p.grad is not None}
        if self.config.grad_clip is not None:
            grads = self.postprocess_gradients(grads)
        self._apply_lean(grads)
        return fwd_out, loss_per_module, {}

    def forward_train(self, module: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The module's ``_forward_train`` (without ``forward_train``'s ``train()`` walk)."""
        return module._forward_train(batch)

    def _zero_grads(self) -> None:
        for param in self._params.values():
            param.grad = None

    def _apply_lean(self, grads: dict[Any, torch.Tensor]) -> None:
        """RLlib's ``apply_gradients`` with one finiteness check and fused Adam steps."""
        for pid, grad in grads.items():
            self._params[pid].grad = grad
        tensors = list(grads.values())
        if tensors and not self.config.torch_skip_nan_gradients:
            finite = bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())
            if not finite:  # RLlib's rule, tensor by tensor, only when needed
                for pid, grad in grads.items():
                    if not torch.isfinite(grad).all():
                        logger.warning(f"Gradients {pid} contain `nan/inf` values.")
                        self._params[pid].grad = torch.nan_to_num(grad)
        for optim in self._named_optimizers.values():
            optim.step()

    def _target_tensors(self, module_id: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every tensor of the module's (main, target) network pairs, as RLlib's
        ``update_target_network`` reads them from their state dicts: parameters and buffers
        (listed once per module; restoring a checkpoint copies into the same tensors)."""
        module = self.module[module_id].unwrapped()
        cached = self.__dict__.setdefault("_lean_targets", {}).get(module_id)
        if cached is None or cached[0] is not module:
            mains: list[torch.Tensor] = []
            targets: list[torch.Tensor] = []
            for main, target in module.get_target_network_pairs():
                mains += [*main.state_dict(keep_vars=True).values()]
                targets += [*target.state_dict(keep_vars=True).values()]
            cached = self._lean_targets[module_id] = (module, mains, targets)
        return cached[1], cached[2]

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """The learning-rate schedules (RLlib's), then DQN's target rule with foreach ops."""
        TorchLearner.after_gradient_based_update(self, timesteps=timesteps)
        timestep = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        for module_id in self.module._rl_modules:
            config = self.config.get_config_for_module(module_id)
            due = timestep - self.last_update_ts_by_mid[module_id]
            if due < config.target_network_update_freq:
                continue
            polyak(*self._target_tensors(module_id), config.tau)
            self.metrics.log_value((module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum")
            self.last_update_ts_by_mid[module_id] = timestep
            self.metrics.log_value((module_id, LAST_TARGET_UPDATE_TS), timestep, reduce="max")


@torch.no_grad()
def polyak(mains: list[torch.Tensor], targets: list[torch.Tensor], tau: float) -> None:
    """target ← τ·main + (1 − τ)·target for every pair of tensors (RLlib's
    ``update_target_network``), in two foreach ops."""
    torch._foreach_mul_(targets, 1.0 - tau)
    torch._foreach_add_(targets, mains, alpha=tau)


class LeanSACLearner(LeanUpdateMixin, SACTorchLearner):
    """RLlib's discrete SAC (twin Q, entropy tuning), updated by :class:`LeanUpdateMixin`."""

    def forward_train(self, module: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """``DefaultSACTorchRLModule._forward_train_discrete``'s outputs, computed through each
        network's ``nn.Sequential`` (MLP encoder, then MLP head); the next observations'
        actor pass and the targets without a graph. Other modules: their own forward."""
        nets = _mlp_chains(module)
        if nets is None:
            return module._forward_train(batch)
        pi, qf, qf_twin, target_qf, target_qf_twin = nets
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        with torch.no_grad():
            probs_next = torch.softmax(pi(next_obs), dim=-1)
            q_target_next = torch.min(target_qf(next_obs), target_qf_twin(next_obs))
        probs = torch.softmax(pi(obs), dim=-1)
        return {
            ACTION_PROBS_NEXT: probs_next,
            ACTION_LOG_PROBS_NEXT: probs_next.log(),
            QF_TARGET_NEXT: q_target_next,
            QF_PREDS: qf(obs),
            QF_TWIN_PREDS: qf_twin(obs),
            ACTION_PROBS: probs,
            ACTION_LOG_PROBS: probs.log(),
        }

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """``SACTorchLearner._compute_loss_for_module_discrete``, term by term; the statistics
        it logs are the same (the TD-error series only for a prioritised buffer)."""
        if Columns.LOSS_MASK in batch or QF_TARGET_NEXT not in fwd_out:
            raise ValueError("learner.kind = lean trains discrete, non-recurrent SAC only")
        log_alpha = self.curr_log_alpha[module_id]
        alpha = torch.exp(log_alpha)
        probs_next, logp_next = fwd_out[ACTION_PROBS_NEXT], fwd_out[ACTION_LOG_PROBS_NEXT]
        next_v = (probs_next * (fwd_out[QF_TARGET_NEXT] - alpha.detach() * logp_next)).sum(-1)
        next_v = (1.0 - batch[Columns.TERMINATEDS].float()) * next_v.squeeze(-1)
        target_q = (batch[Columns.REWARDS] + (config.gamma ** batch["n_step"]) * next_v).detach()
        actions = batch[Columns.ACTIONS].to(dtype=torch.int64).unsqueeze(-1)
        huber = torch.nn.HuberLoss(reduction="none", delta=1.0)
        qf_pred = fwd_out[QF_PREDS].gather(dim=-1, index=actions).squeeze(-1)
        critic_loss = torch.mean(batch["weights"] * huber(qf_pred, target_q))
        td_error = torch.abs(qf_pred - target_q)
        losses = {QF_LOSS_KEY: critic_loss}
        if config.twin_q:
            twin_pred = fwd_out[QF_TWIN_PREDS].gather(dim=-1, index=actions).squeeze(-1)
            losses[QF_TWIN_LOSS_KEY] = torch.mean(batch["weights"] * huber(twin_pred, target_q))
            td_error = 0.5 * (td_error + torch.abs(twin_pred - target_q))
        probs, logp = fwd_out[ACTION_PROBS], fwd_out[ACTION_LOG_PROBS]
        qf = torch.min(fwd_out[QF_PREDS], fwd_out[QF_TWIN_PREDS]).detach()
        policy_loss = (probs * (alpha.detach() * logp - qf)).sum(-1).mean()
        entropy = (logp * probs).sum(-1)
        alpha_loss = -torch.mean(log_alpha * (entropy.detach() + self.target_entropy[module_id]))
        total = policy_loss + alpha_loss + sum(losses.values())
        if self._prioritised:
            self.metrics.log_value((module_id, TD_ERROR_KEY), td_error, reduce="item_series")
        if not self.stats_due():
            return total
        with torch.no_grad():
            stats = {
                POLICY_LOSS_KEY: policy_loss,
                **losses,
                "alpha_loss": alpha_loss,
                "alpha_value": alpha[0],
                "log_alpha_value": log_alpha[0].clone(),
                "target_entropy": self.target_entropy[module_id],
                LOGPS_KEY: logp.mean(),
                QF_MEAN_KEY: fwd_out[QF_PREDS].mean(),
                QF_MAX_KEY: fwd_out[QF_PREDS].max(),
                QF_MIN_KEY: fwd_out[QF_PREDS].min(),
                TD_ERROR_MEAN_KEY: td_error.mean(),
            }
        self.metrics.log_dict(stats, key=module_id, window=1)
        return total


class LeanDQNLearner(LeanUpdateMixin, DQNTorchLearner):
    """RLlib's DQN (double Q, n-step, Huber or MSE), updated by :class:`LeanUpdateMixin`.

    Its loss is RLlib's own: DQN has one optimiser and one loss, so RLlib already takes one
    backward pass; what is cut is the rest of the update (module docstring)."""


def _mlp_chains(module: Any) -> tuple[torch.nn.Sequential, ...] | None:
    """(actor, critic, twin critic, their targets) of a discrete twin-Q SAC module as
    ``nn.Sequential`` chains of its MLP encoders' and heads' layers, or None for any other
    module (cached on the module, None too, so the update's hot path decides once: the layers
    are the module's own, so training and loading a checkpoint change them in place)."""
    if "_lean_chains" not in module.__dict__:
        module.__dict__["_lean_chains"] = _build_chains(module)
    return module.__dict__["_lean_chains"]


def _build_chains(module: Any) -> tuple[torch.nn.Sequential, ...] | None:
    """:func:`_mlp_chains`, uncached."""
    if not isinstance(module.action_space, gym.spaces.Discrete):
        return None
    chains = []
    for name in ("pi", "qf", "qf_twin", "target_qf", "target_qf_twin"):
        encoder, head = getattr(module, f"{name}_encoder", None), getattr(module, name, None)
        if not (isinstance(encoder, TorchMLPEncoder) and isinstance(head, TorchMLPHead)):
            return None
        if head.clip_log_std:
            return None
        chains.append(torch.nn.Sequential(encoder.net.mlp, head.net.mlp))
    return tuple(chains)


LEAN_CLASSES: dict[str, type] = {"SAC": LeanSACLearner, "DQN": LeanDQNLearner}
