"""RLlib's discrete SAC module with log-probabilities that stay finite.

RLlib 2.60's ``DefaultSACTorchRLModule._forward_train_discrete`` takes the actor's
log-probabilities as ``softmax(logits).log()``. Once the logits of the two actions lie
more than ~104 apart (float32), the smaller probability underflows to 0, its log is −inf,
and the losses' ``p · log p`` terms give NaN gradients for every parameter they reach, the
temperature's included. The learner zeroes those gradients (RLlib's ``nan_to_num`` rule), so
each update whose batch holds such a state is lost, silently but for a log warning (one
seed of ``cells200_set.yaml`` warned thousands of times from iteration ~320 on).
:class:`FiniteLogProbSACTorchRLModule` takes ``log(max(p, tiny))`` instead (tiny: the smallest
normal float): the same value and gradient wherever p ≥ tiny, a finite value and a zero
gradient where p underflowed, so ``p · log p`` is 0 there, its limit. (TorchRL's discrete
SAC clamps its probabilities the same way, pytorch/rl#1750.)
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_LOG_PROBS,
    ACTION_LOG_PROBS_NEXT,
    ACTION_PROBS,
    ACTION_PROBS_NEXT,
)
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule


class FiniteLogProbSACTorchRLModule(DefaultSACTorchRLModule):
    """RLlib's SAC module; a discrete action's log-probabilities are ``log(max(p, tiny))``."""

    def _forward_train_discrete(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = super()._forward_train_discrete(batch)
        for probs, log_probs in ((ACTION_PROBS, ACTION_LOG_PROBS),
                                 (ACTION_PROBS_NEXT, ACTION_LOG_PROBS_NEXT)):  # fmt: skip
            p = out[probs]
            out[log_probs] = p.clamp_min(torch.finfo(p.dtype).tiny).log()
        return out
