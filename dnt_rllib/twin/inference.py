"""The GRU twin's light inference path: eqs. (6)–(10) in numpy over exported weights.

Env workers call ``predict`` with batch 1 every slot; torch costs ~290 µs a call there and
has its own intra-op thread pool, so the env uses this path instead (torch stays for
training). This module never imports torch. The weights are rearranged once, so a call is a
few small BLAS products and elementwise ops:

- the input normalisation ``(s − centre) / half`` is folded into W and its bias, and the
  output map ``s_t + Δl · (W^o h + b^o)`` into W^o and b^o, so raw coordinates go in and out;
- the W-terms of eqs. (6)–(8) for all M steps are one (batch·M, 2U) × (2U, 3N^h) product;
- step 1 starts from h_0 = 0, so its recurrent products vanish;
- σ(a) = (1 + tanh(a/2))/2, with the halvings folded into the weights (tanh is cheaper).

It matches the torch model (:class:`~dnt_rllib.twin.gru.GRUPredictor`) to float rounding:
in the default float32 to ~4e-6 m of torch's float32 run (N^h = 128, a 100 m area), with
``dtype=np.float64`` to ~1e-14 m of torch in float64. At U = 10, M = 5, N^h = 128 a call
costs ~35 µs at batch 1 and ~105 µs at batch 8 (float32; float64 ~45 and ~235 µs) against
~290 µs for torch at batch 1; it is single-threaded (BLAS stays on one thread at these
sizes), so Ray workers sharing a machine do not oversubscribe it.

:class:`NumpySharedGRUTwin` is the shared twin (``twin: gru_shared``): the same
:class:`NumpyGRUTwin` over the cell's weights (state dimension 2), called on the
(batch·U, M, 2) histories of the users, plus the offsets Δl·b_u.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from dnt_rllib.twin.data import Normalisation

#: The weight names of :class:`~dnt_rllib.twin.gru.GRUPredictor`'s ``state_dict``.
WEIGHT_NAMES = (
    "input.weight",
    "input.bias",
    "recurrent_rz.weight",
    "recurrent_h.weight",
    "output.weight",
    "output.bias",
)


_blas: ThreadpoolController | None = None


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS uses one thread. Where it already does (Ray workers,
    whose OMP_NUM_THREADS is 1, and the CLIs, which limit it at start) this costs a
    ctypes call per library instead of setting and restoring threads on every prediction
    (~17 µs, a third of a batch-1 prediction)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    if all(lib.get_num_threads() == 1 for lib in _blas.lib_controllers):
        return nullcontext()
    return _blas.limit(limits=1)


#: Most values of the shared twin's per-call temporaries (its cell's W-terms of eqs. 6–8
#: for all M steps): a larger batch of users is predicted in chunks of rows.
CHUNK_VALUES = 1 << 22

#: The weight names of :class:`~dnt_rllib.twin.gru.SharedGRUPredictor`'s ``state_dict``.
SHARED_WEIGHT_NAMES = (*(f"cell.{name}" for name in WEIGHT_NAMES), "user_bias")


def weight_shapes(state_dim: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """The shape of each of :data:`WEIGHT_NAMES` for state dimension 2U and N^h units."""
    d, n = state_dim, hidden
    return {
        "input.weight": (3 * n, d),
        "input.bias": (3 * n,),
        "recurrent_rz.weight": (2 * n, n),
        "recurrent_h.weight": (n, n),
        "output.weight": (d, n),
        "output.bias": (d,),
    }


class NumpyGRUTwin:
    """A :class:`~dnt_rllib.twin.base.Twin` evaluating eqs. (6)–(10) in numpy.

    ``weights`` maps :data:`WEIGHT_NAMES` to arrays (torch layout: out × in); ``norm`` is the
    normalisation the model was trained with; ``history`` is M. ``predict(history)`` takes
    (batch, M, 2U) raw area coordinates and returns a new (batch, 2U) float64 array.
    ``dtype`` is the precision of the input projection and the recurrence (float32: the
    weights' own precision and half the work; float64: the reference); the add-back of
    the last state is always float64.
    """

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        norm: Normalisation,
        history: int,
        dtype: type[np.floating] = np.float32,
    ) -> None:
        w = {k: np.asarray(weights[k], dtype=np.float64) for k in WEIGHT_NAMES}
        self.norm = norm
        self.history = history
        self.dtype = np.dtype(dtype)
        self.state_dim = w["input.weight"].shape[1]
        self.hidden = n = w["recurrent_h.weight"].shape[0]
        d = self.state_dim
        for name, shape in weight_shapes(d, n).items():
            if w[name].shape != shape:
                raise ValueError(f"GRU weight {name} has shape {w[name].shape}, expected {shape}")
        if norm.centre.shape != (d,) or norm.half.shape != (d,):
            raise ValueError(f"normalisation does not have the state dimension {d}")
        # σ(a) = (1 + tanh(a/2)) / 2: the gate pre-activations of eqs. (6), (8) are halved here,
        # and the ½ of r is folded into U^h̃ (z keeps an explicit ½).
        gate = np.ones(3 * n)
        gate[: 2 * n] = 0.5
        # W-terms of eqs. (6)-(8) with the input normalisation folded in: s @ w_in + b_in
        w_in = w["input.weight"].T / norm.half[:, None] * gate
        b_in = (w["input.bias"] - (norm.centre / norm.half) @ w["input.weight"].T) * gate
        self._w_in = np.ascontiguousarray(w_in, dtype=dtype)
        self._b_in = b_in.astype(dtype)
        self._u_rz = np.ascontiguousarray(0.5 * w["recurrent_rz.weight"].T, dtype=dtype)
        self._u_h = np.ascontiguousarray(0.5 * w["recurrent_h.weight"].T, dtype=dtype)
        # eq. (10) with the output map folded in: s_t + h @ w_out + b_out
        self._w_out = np.ascontiguousarray(w["output.weight"].T * norm.step, dtype=dtype)
        self._b_out = w["output.bias"] * norm.step
        self._half = np.full((1, n), 0.5, dtype=dtype)

    def predict(self, history: np.ndarray) -> np.ndarray:
        """Next states (batch, 2U) from raw histories (batch, M, 2U), eqs. (6)–(10).

        BLAS runs on one thread here, wherever the twin is used (an env in a library, a
        notebook, a Ray worker): these products are small, and OpenBLAS's default threads
        make a batch of 64 predictions ~50× slower on a busy 2-core machine.
        """
        with one_blas_thread():
            return self._predict(history)

    def _predict(self, history: np.ndarray) -> np.ndarray:
        history = np.asarray(history, dtype=np.float64)
        batch, steps, d = history.shape
        if d != self.state_dim:
            raise ValueError(f"history has state dimension {d}, the twin expects {self.state_dim}")
        n, n2 = self.hidden, 2 * self.hidden
        u_rz, u_h, half = self._u_rz, self._u_h, self._half
        proj = history.reshape(batch * steps, d).astype(self.dtype) @ self._w_in
        proj += self._b_in
        # (M, batch, ·) so that step t is a cheap first-axis index
        proj = proj.reshape(batch, steps, 3 * n).transpose(1, 0, 2)
        p_rz, p_h = proj[:, :, :n2], proj[:, :, n2:]
        # Step 1 from h_0 = 0: eq. (9) is h = (1 − z) ⊙ h̃ = ½ (h̃ − t_z ⊙ h̃), h̃ = tanh(W^h̃ x).
        h = np.tanh(p_h[0])
        t_z = np.tanh(p_rz[0][:, n:])
        t_z *= h
        h -= t_z
        h *= half
        for t in range(1, steps):
            g = h @ u_rz
            g += p_rz[t]
            np.tanh(g, out=g)  # [t_r, t_z] with r = (1 + t_r)/2, z = (1 + t_z)/2, eqs. (6), (8)
            a = h * g[:, :n]
            a += h  # a = 2 (h ⊙ r); the ½ sits in u_h
            h_tilde = a @ u_h
            h_tilde += p_h[t]
            np.tanh(h_tilde, out=h_tilde)  # eq. (7)
            e = h - h_tilde  # eq. (9): h̃ + z ⊙ (h − h̃) = ½ ((h + h̃) + t_z ⊙ (h − h̃))
            h += h_tilde
            e *= g[:, n:]
            h += e
            h *= half
        out = history[:, -1, :] + self._b_out  # eq. (10), mapped back to area coordinates
        out += h @ self._w_out
        return out


class NumpySharedGRUTwin:
    """A :class:`~dnt_rllib.twin.base.Twin` for the shared GRU: :class:`NumpyGRUTwin` over the
    cell (state dimension 2) applied to each user's positions, plus Δl·b_u (eq. 10's offset).

    ``weights`` maps :data:`SHARED_WEIGHT_NAMES` to arrays; ``norm`` is the normalisation
    over the whole state (2U), the same for every user; ``predict`` takes (batch, M, 2U) raw
    area coordinates and returns a new (batch, 2U) float64 array.
    """

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        norm: Normalisation,
        history: int,
        dtype: type[np.floating] = np.float32,
    ) -> None:
        bias = np.asarray(weights["user_bias"], dtype=np.float64)
        if bias.ndim != 2 or bias.shape[1] != 2:
            raise ValueError(f"GRU weight user_bias has shape {bias.shape}, expected (U, 2)")
        self.num_users = len(bias)
        self.state_dim = d = 2 * self.num_users
        if norm.centre.shape != (d,) or norm.half.shape != (d,):
            raise ValueError(f"normalisation does not have the state dimension {d}")
        centre, half = norm.centre.reshape(-1, 2), norm.half.reshape(-1, 2)
        if not (np.all(centre == centre[0]) and np.all(half == half[0])):
            raise ValueError("normalisation differs between users; the shared twin needs one")
        self.norm = norm
        self.history = history
        self.cell = NumpyGRUTwin(
            {name: weights[f"cell.{name}"] for name in WEIGHT_NAMES},
            Normalisation(centre=centre[0], half=half[0], step=norm.step),
            history,
            dtype=dtype,
        )
        if self.cell.state_dim != 2:
            raise ValueError(f"shared GRU cell has state dimension {self.cell.state_dim}, not 2")
        self.hidden = self.cell.hidden
        self.dtype = self.cell.dtype
        self._offset = norm.step * bias.reshape(-1)  # Δl·b_u, user-major like a state

    def predict(self, history: np.ndarray) -> np.ndarray:
        """Next states (batch, 2U) from raw histories (batch, M, 2U): the cell on each user's
        (M, 2) positions, eqs. (6)–(10), plus Δl·b_u."""
        history = np.asarray(history, dtype=np.float64)
        batch, steps, d = history.shape
        if d != self.state_dim:
            raise ValueError(f"history has state dimension {d}, the twin expects {self.state_dim}")
        users = d // 2
        per_user = history.reshape(batch, steps, users, 2).transpose(0, 2, 1, 3)
        per_user = per_user.reshape(batch * users, steps, 2)
        # in chunks of rows: the cell's temporaries are rows × M × 3N^h, U times a joint
        # GRU's for the same batch, and a batch of thousands of histories at large U would
        # otherwise need gigabytes
        chunk = max(1, CHUNK_VALUES // (steps * 3 * self.hidden))
        out = np.empty((batch * users, 2))
        for i in range(0, batch * users, chunk):
            out[i : i + chunk] = self.cell.predict(per_user[i : i + chunk])
        out = out.reshape(batch, d)
        out += self._offset
        return out
