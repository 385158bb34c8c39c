"""The GRU prediction model of §III-A in torch, eqs. (6)–(10), used for training.

The cell is written out as in the paper (not ``torch.nn.GRU``, whose candidate state applies
the reset gate after the recurrent product): with x_t the normalised state s'_t,

    r_t = σ(W^r x_t + U^r h_{t−1} + b^r)                      (6)
    h̃_t = tanh(W^h̃ x_t + U^h̃ (h_{t−1} ⊙ r_t) + b^h̃)          (7)
    z_t = σ(W^z x_t + U^z h_{t−1} + b^z)                      (8)
    h_t = (1 − z_t) ⊙ h̃_t + z_t ⊙ h_{t−1}                     (9)
    ŝ'_{t+1} = W^o h_M + b^o                                  (10)

The paper's equations carry no bias vectors; we add them (b^r, b^z, b^h̃, b^o), so the model
can output a constant mean move. h_0 = 0, and the M input states are read oldest first.
Eq. (10)'s output is in normalised displacement coordinates (see
:class:`~dnt_rllib.twin.data.Normalisation`); :class:`TorchGRUTwin` maps it back to area
coordinates. The numpy twin (:mod:`dnt_rllib.twin.inference`) evaluates the same equations.

:class:`SharedGRUPredictor` (``twin: gru_shared``) applies one such cell, with state
dimension 2, to every user's own M positions, and adds a learned per-user offset b_u to
eq. (10): users move independently, so the cell's size and its training data do not grow
with U, and b_u carries what the cell cannot see in M states, the user's mean move.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dnt_rllib.twin.data import Normalisation


class GRUPredictor(nn.Module):
    """Eqs. (6)–(10): M normalised states (batch, M, 2U) → normalised displacement (batch, 2U).

    Parameters: ``input`` stacks [W^r; W^z; W^h̃] (3N^h × 2U, bias [b^r; b^z; b^h̃]),
    ``recurrent_rz`` stacks [U^r; U^z] (2N^h × N^h), ``recurrent_h`` is U^h̃ (N^h × N^h),
    ``output`` is W^o (2U × N^h, bias b^o).
    """

    def __init__(self, state_dim: int, hidden: int) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.hidden = hidden
        self.input = nn.Linear(state_dim, 3 * hidden)
        self.recurrent_rz = nn.Linear(hidden, 2 * hidden, bias=False)
        self.recurrent_h = nn.Linear(hidden, hidden, bias=False)
        self.output = nn.Linear(hidden, state_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run eqs. (6)–(9) over the M inputs, then eq. (10) on h_M."""
        n = self.hidden
        projected = self.input(x)  # the W-terms of eqs. (6)–(8) for all M steps at once
        h = x.new_zeros(x.shape[0], n)
        for t in range(x.shape[1]):
            p = projected[:, t]
            rz = torch.sigmoid(p[:, : 2 * n] + self.recurrent_rz(h))  # eqs. (6), (8)
            r, z = rz[:, :n], rz[:, n:]
            h_tilde = torch.tanh(p[:, 2 * n :] + self.recurrent_h(h * r))  # eq. (7)
            h = (1.0 - z) * h_tilde + z * h  # eq. (9)
        return self.output(h)  # eq. (10)


class TorchGRUTwin:
    """A :class:`~dnt_rllib.twin.base.Twin` over a torch :class:`GRUPredictor` (reference path).

    ``predict`` takes raw histories (batch, M, 2U) and returns raw next states (batch, 2U);
    the add-back of the last state is done in float64.
    """

    def __init__(self, model: GRUPredictor, norm: Normalisation) -> None:
        self.model = model.eval()
        self.norm = norm
        self.dtype = next(model.parameters()).dtype

    @torch.no_grad()
    def outputs(self, history: np.ndarray) -> np.ndarray:
        """Eq. (10)'s normalised displacement for raw histories (batch, M, 2U)."""
        x = torch.as_tensor(self.norm.inputs(np.asarray(history, dtype=np.float64)))
        return self.model(x.to(self.dtype)).double().numpy()

    def predict(self, history: np.ndarray) -> np.ndarray:
        history = np.asarray(history, dtype=np.float64)
        return self.norm.predictions(self.outputs(history), history[:, -1, :])


class SharedGRUPredictor(nn.Module):
    """One :class:`GRUPredictor` cell (state dimension 2) shared by all U users, eqs. (6)–(10)
    per user, plus a per-user offset b_u in eq. (10): (batch, M, 2U) → (batch, 2U).

    User u's output is ``cell(x_u) + b_u``, where x_u (M, 2) is u's own normalised
    positions: the (batch, M, 2U) history is read as (batch·U, M, 2), a batch of users.
    Parameters: ``cell.*`` (the :class:`GRUPredictor` weights for state dimension 2) and
    ``user_bias`` (U × 2, b_u, zero at initialisation).
    """

    def __init__(self, num_users: int, hidden: int) -> None:
        super().__init__()
        self.num_users = num_users
        self.hidden = hidden
        self.cell = GRUPredictor(2, hidden)
        self.user_bias = nn.Parameter(torch.zeros(num_users, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Eqs. (6)–(10) for each user of (batch, M, 2U) normalised histories."""
        batch, steps, dim = x.shape
        users = dim // 2
        per_user = x.reshape(batch, steps, users, 2).transpose(1, 2).reshape(-1, steps, 2)
        out = self.cell(per_user).reshape(batch, users, 2) + self.user_bias
        return out.reshape(batch, dim)

    def forward_users(self, x: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """The same for one user per row: x (n, M, 2) normalised positions of users
        ``users`` (n,) → (n, 2). Training feeds user-windows this way."""
        return self.cell(x) + self.user_bias[users]
