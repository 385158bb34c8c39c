"""A set model (``model: {kind: set}``): weights that do not depend on U or N.

RLlib's default SAC, DQN and PPO modules, losses and heads stay as they are; only their
encoder changes, through a Catalog per algorithm (:data:`SET_CATALOGS`) whose encoder is
:class:`SetEncoder`. It reads the flat ``'set'``/``'set_memory'`` observation
(:mod:`dnt_rllib.env.observation`: per frame ``[U·2^−16, N·2^−16 | G globals | U users ×
F_u | N RBs × 2]``), takes U and N from each batch's layout headers, and computes (a
Deep Sets encoder, Zaheer et al. 2017)

    e_u = φ(x_u),  e_n = ψ(z_n),
    z = ρ([mean_u e_u, max_u e_u, mean_n e_n, max_n e_n, g])

with φ, ψ ReLU MLPs shared by every user and every RB (``set_hiddens``), ρ an MLP
(``fcnet_hiddens``, i.e. ``width``/``depth``) and g the slot's globals. φ's and ψ's last
layer and their pooling are one autograd function (:class:`ReluMeanMax`): per item and unit
it keeps only the ReLU's sign, and its weight gradient is a batched product with the inputs,
not the four full-size (B, U, width) passes of autograd's mean and max. With k stacked
frames a user's k frames are one input x_u (k·F_u entries), and likewise an RB's and the
globals. Mean and max are invariant to the order of the users and of the RBs, and none of
φ, ψ, ρ has a size set by U or N: the same weights run on any cell whose frames have the
same G, F_u and k (the observation mode, the mobility model, M and ``frame_stack``), which
the model config carries (:func:`set_model_config`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from ray.rllib.algorithms.dqn.dqn_catalog import DQNCatalog
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT, Encoder
from ray.rllib.core.models.configs import ModelConfig
from ray.rllib.core.models.torch.base import TorchModel
from ray.rllib.models.utils import get_activation_fn

from dnt_rllib.env.observation import SET_HEADER_UNIT, SetLayout, set_layout
from dnt_rllib.trial.settings import SET_HIDDENS

#: The ``model_config`` key of the layout that :func:`set_model_config` adds.
LAYOUT_KEY = "set_layout"


def set_model_config(model: dict[str, Any], env: Any) -> dict[str, Any]:
    """RLlib's ``model_config`` for a set model on the env config ``env``: ``model`` without
    ``kind``, with ``set_hiddens`` filled in and the frame layout (G, F_u, k) of
    ``env``'s set observation under :data:`LAYOUT_KEY` (U and N are read from the
    observation)."""
    layout = set_layout(env)
    out = {k: v for k, v in model.items() if k != "kind"}
    out.setdefault("set_hiddens", list(SET_HIDDENS))
    out[LAYOUT_KEY] = {"globals": layout.globals, "user_features": layout.user_features,
                       "frames": layout.frames}  # fmt: skip
    return out


def mlp(sizes: list[int], activation: str) -> torch.nn.Sequential:
    """Linear layers between ``sizes``, each followed by ``activation``."""
    act = get_activation_fn(activation, framework="torch")
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers.append(torch.nn.Linear(a, b))
        if act is not None:
            layers.append(act())
    return torch.nn.Sequential(*layers)


class ReluMeanMax(torch.autograd.Function):
    """``[mean_i relu(x_i W), max_i relu(x_i W)]`` (B, 2·width) of items x (B, I, K) whose
    last entry is 1 (the bias row of W (K, width)); equal to autograd's, cheaper."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        h = torch.matmul(x, weight).relu_()
        if any(ctx.needs_input_grad):
            top, at = h.max(1)
            ctx.save_for_backward(x, weight, h, top, at)
        else:
            top = h.amax(1)
        return torch.cat([h.mean(1), top], dim=-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        x, weight, h, top, at = ctx.saved_tensors
        width = h.shape[-1]
        g_mean = grad[:, :width] / h.shape[1]
        g_top = grad[:, width:] * (top > 0)  # an all-zero unit passes no gradient
        on = torch.sign(h)  # relu'(x W): 1 where the unit is active
        rows = torch.gather(x, 1, at.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, width, K)
        g_weight = torch.einsum("bkw,bw->kw", torch.bmm(x.transpose(1, 2), on), g_mean)
        g_weight = g_weight + torch.einsum("bwk,bw->kw", rows, g_top)
        g_x = None
        if ctx.needs_input_grad[0]:
            g_h = on.mul_(g_mean.unsqueeze(1))
            g_h.scatter_add_(1, at.unsqueeze(1), g_top.unsqueeze(1))
            g_x = g_h @ weight.t()
        return g_x, g_weight


class ItemEncoder(torch.nn.Module):
    """φ of every item, pooled: ``[mean_i φ(x_i), max_i φ(x_i)]`` (B, 2·hiddens[-1]) of
    items (B, I, K), φ a ReLU MLP ``K → hiddens``."""

    def __init__(self, inputs: int, hiddens: list[int]) -> None:
        super().__init__()
        self.inner = mlp([inputs, *hiddens[:-1]], "relu")
        self.last = torch.nn.Linear([inputs, *hiddens][-2], hiddens[-1])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        x = self.inner(items)
        x = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)
        weight = torch.cat([self.last.weight.t(), self.last.bias.unsqueeze(0)])
        return ReluMeanMax.apply(x, weight)


@dataclass
class SetEncoderConfig(ModelConfig):
    """:class:`SetEncoder`'s sizes: a frame's globals G and user features F_u, the frames k,
    the per-item MLPs' layers and the pooled MLP's layers (its last is the latent size)."""

    globals: int = 4
    user_features: int = 5
    frames: int = 1
    item_hiddens: list[int] = field(default_factory=lambda: list(SET_HIDDENS))
    hidden_layer_dims: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"

    @property
    def output_dims(self) -> tuple[int, ...]:
        return (self.hidden_layer_dims[-1],)

    def build(self, framework: str = "torch") -> SetEncoder:
        if framework != "torch":
            raise ValueError("the set model is torch only")
        return SetEncoder(self)


class SetEncoder(TorchModel, Encoder):
    """The observation's users and RBs, each through a shared MLP, pooled by mean and max,
    joined with the globals and passed through an MLP (module docstring)."""

    def __init__(self, config: SetEncoderConfig) -> None:
        TorchModel.__init__(self, config)
        Encoder.__init__(self, config)
        k, width = config.frames, config.item_hiddens[-1]
        self.users = ItemEncoder(k * config.user_features, config.item_hiddens)
        self.rbs = ItemEncoder(k * SetLayout.RB_FEATURES, config.item_hiddens)
        pooled = 4 * width + k * config.globals
        self.net = mlp([pooled, *config.hidden_layer_dims], config.activation)

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(globals (B, k·G), users (B, U, k·F_u), RBs (B, N, 2k)) of a batch of flat
        observations (B, k·frame), U and N from the first row's headers."""
        cfg = self.config
        k, g, f = cfg.frames, cfg.globals, cfg.user_features
        b, dim = obs.shape
        u, n = (round(float(x) / SET_HEADER_UNIT) for x in obs[0, : SetLayout.HEADERS])
        layout = SetLayout(globals=g, user_features=f, users=u, rbs=n, frames=k)
        if k * layout.frame != dim:
            raise ValueError(
                f"set observation of {dim} entries: its headers say U = {u}, N = {n}, which "
                f"with G = {g}, F_u = {f}, k = {k} give {k * layout.frame}"
            )
        frames = obs.reshape(b, k, layout.frame)
        at = SetLayout.HEADERS + g
        glob = frames[:, :, SetLayout.HEADERS : at].reshape(b, k * g)
        users = frames[:, :, at : at + u * f].reshape(b, k, u, f).transpose(1, 2)
        rbs = frames[:, :, at + u * f :].reshape(b, k, n, SetLayout.RB_FEATURES).transpose(1, 2)
        return glob, users.reshape(b, u, k * f), rbs.reshape(b, n, k * SetLayout.RB_FEATURES)

    def pooled(self, obs: torch.Tensor) -> torch.Tensor:
        """[mean_u φ(x_u), max_u φ(x_u), mean_n ψ(z_n), max_n ψ(z_n), g] (B, 4·width + k·G)."""
        glob, users, rbs = self.split(obs)
        return torch.cat([self.users(users), self.rbs(rbs), glob], dim=-1)

    def _forward(self, inputs: dict, **kwargs: Any) -> dict:
        obs = inputs[Columns.OBS]
        flat = obs.reshape(-1, obs.shape[-1])
        if flat.shape[0] == 0:
            out = flat.new_zeros(0, self.config.output_dims[0])
        else:
            out = self.net(self.pooled(flat))
        return {ENCODER_OUT: out.reshape(*obs.shape[:-1], -1)}


class SetEncoderCatalog:
    """A Catalog mixin whose encoder is :class:`SetEncoder` (the rest is the algorithm's)."""

    @classmethod
    def _get_encoder_config(
        cls, observation_space: Any, model_config_dict: dict, action_space: Any = None
    ) -> SetEncoderConfig:
        layout = model_config_dict.get(LAYOUT_KEY)
        if layout is None:
            raise ValueError(f"the set model needs model_config[{LAYOUT_KEY!r}]")
        return SetEncoderConfig(
            input_dims=list(observation_space.shape),
            globals=layout["globals"],
            user_features=layout["user_features"],
            frames=layout["frames"],
            item_hiddens=list(model_config_dict["set_hiddens"]),
            hidden_layer_dims=list(model_config_dict["fcnet_hiddens"]),
            activation=model_config_dict["fcnet_activation"],
        )


class SetSACCatalog(SetEncoderCatalog, SACCatalog):
    """RLlib's SAC catalog with the set encoder (actor and both critics)."""


class SetDQNCatalog(SetEncoderCatalog, DQNCatalog):
    """RLlib's DQN catalog with the set encoder (Q-network and its target)."""


class SetPPOCatalog(SetEncoderCatalog, PPOCatalog):
    """RLlib's PPO catalog with the set encoder (actor, and critic unless shared)."""


SET_CATALOGS: dict[str, type] = {"SAC": SetSACCatalog, "DQN": SetDQNCatalog,
                                 "PPO": SetPPOCatalog}  # fmt: skip
