"""The twin's interface: a one-step predictor of the DNT state (eq. 4's ŝ_t)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Twin(Protocol):
    """Predicts the next state from the last M DNT states.

    ``history`` has shape (batch, M, 2U) in raw area coordinates, user-major
    ([x_1, y_1, …, x_U, y_U]); the result has shape (batch, 2U).
    """

    def predict(self, history: np.ndarray) -> np.ndarray: ...


class HoldLastTwin:
    """The simplest twin: users are assumed not to move (ŝ_{t+1} = s'_t)."""

    def predict(self, history: np.ndarray) -> np.ndarray:
        return np.array(history[:, -1, :], dtype=np.float64)
