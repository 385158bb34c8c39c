"""Random-walk mobility, eq. (1).

Each user u moves by one of five displacements each slot — stay, +y ("forward"),
−y ("backward"), −x ("left"), +x ("right") — with fixed probabilities p_u (a row of the U×5
matrix ``move_probs``). Border rule: a move that would leave the square area is reflected
back into it (x → 2·high − x), so a user keeps its step length and never sticks to a wall.
"""

from __future__ import annotations

import numpy as np

#: Unit displacements in the order of eq. (1): stay, +y, −y, −x, +x.
MOVES = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [1.0, 0.0]])

#: Dirichlet concentration of the four move directions (higher → less drift).
DIRECTION_CONCENTRATION = 2.0


def draw_move_probs(
    rng: np.random.Generator, num_users: int, stay_range: tuple[float, float]
) -> np.ndarray:
    """Per-user move probabilities p_u (U×5), drawn once per network instance.

    p_u1 (stay) ~ U(stay_range); the remaining mass is split over the four directions by
    a Dirichlet(2, 2, 2, 2) draw, so users differ both in how often and where they move.
    """
    stay = rng.uniform(stay_range[0], stay_range[1], size=num_users)
    directions = rng.dirichlet(np.full(4, DIRECTION_CONCENTRATION), size=num_users)
    return np.column_stack([stay, directions * (1.0 - stay)[:, None]])


def initial_positions(
    rng: np.random.Generator,
    num_users: int,
    low: np.ndarray,
    high: np.ndarray,
    episodes: int | None = None,
) -> np.ndarray:
    """Start positions l_u0 (U×2, or B×U×2 for B ``episodes``), uniform over the area (§IV)."""
    shape = (num_users, 2) if episodes is None else (episodes, num_users, 2)
    return rng.uniform(low, high, size=shape)


def reflect(positions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Fold coordinates that overshoot the area back inside (one reflection suffices
    because a step is shorter than half the area)."""
    positions = np.minimum(positions, 2.0 * high - positions)
    return np.maximum(positions, 2.0 * low - positions)


def step_positions(
    rng: np.random.Generator,
    positions: np.ndarray,
    move_cdf: np.ndarray,
    step_size: float,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """One slot of eq. (1) for all users (U×2) with a single vectorised draw.

    ``move_cdf`` is ``np.cumsum(move_probs, axis=1)``; returns new positions (U×2).
    """
    return move(positions, rng.random(positions.shape[0]), move_cdf, step_size, low, high)


def move(
    positions: np.ndarray,
    uniforms: np.ndarray,
    move_cdf: np.ndarray,
    step_size: float,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """Eq. (1) given one U(0, 1) draw per user: positions (…, U, 2), uniforms (…, U).

    User u takes the first move whose cumulative probability exceeds its draw, so a batch
    of envs sharing one network moves in one go.
    """
    choice = (uniforms[..., None] >= move_cdf[:, :-1]).sum(axis=-1)
    return reflect(positions + step_size * MOVES[choice], low, high)


def move_moments(move_probs: np.ndarray, step_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean displacement (U×2) and total displacement variance (U,) of one slot.

    The variance E‖m‖² − ‖E m‖² is the Bayes-optimal one-step squared error of any
    predictor of a user's next position away from the border (summed over x and y).
    """
    mean = step_size * move_probs @ MOVES
    second = step_size**2 * (1.0 - move_probs[:, 0])
    return mean, second - (mean**2).sum(axis=1)
