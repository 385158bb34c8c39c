"""RLlib's DQN module with an LSTM (``model: {use_lstm: true}``), exploring on vector envs.

A stateful module's Q-values carry a time axis, (B, T = 1, actions) on an env runner. RLlib's
ε-greedy (``DefaultDQNTorchRLModule._forward_exploration``, ray 2.60) draws the random
actions flat, (B,), and mixes them with the greedy ones, (B, 1), under a mask of shape (B,):
the result broadcasts to (B, B), which the env runner then cannot unbatch as soon as it runs
more than one env (``num_envs_per_env_runner > 1``). :class:`RecurrentDQNTorchRLModule`
draws both in the greedy actions' shape; the rest (Q-values, the greedy action, the
schedule, the state) is RLlib's. Stateless modules keep RLlib's method unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.core.columns import Columns


class RecurrentDQNTorchRLModule(DefaultDQNTorchRLModule):
    """:class:`DefaultDQNTorchRLModule` whose ε-greedy keeps the (B, T) shape of its actions."""

    def _forward_exploration(self, batch: dict[str, Any], t: int) -> dict[str, Any]:
        if not self.is_stateful():
            return super()._forward_exploration(batch, t)
        qf_outs = self.compute_q_values(batch)
        q_values = qf_outs[QF_PREDS]  # (B, T, actions)
        greedy = self.get_exploration_action_dist_cls().from_logits(q_values)
        exploit = greedy.to_deterministic().sample()  # (B, T)
        self.epsilon_schedule.update(t)
        epsilon = self.epsilon_schedule.get_current_value()
        # RLlib's draw: uniform over the actions whose Q-value is not exactly 0 (masked)
        allowed = (torch.nan_to_num(q_values, neginf=0.0) != 0.0).float()
        random = torch.multinomial(allowed.reshape(-1, q_values.shape[-1]), num_samples=1)
        random = random.reshape(exploit.shape)
        explore = torch.rand(exploit.shape, device=exploit.device) < epsilon
        return {
            Columns.ACTIONS: torch.where(explore, random, exploit),
            Columns.STATE_OUT: qf_outs[Columns.STATE_OUT],
        }
