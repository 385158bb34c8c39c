"""Mobility: the paper's random walk, eq. (1), and the Gauss–Markov option.

Each user u moves by one of five displacements each slot — stay, +y ("forward"),
−y ("backward"), −x ("left"), +x ("right") — with fixed probabilities p_u (a row of the U×5
matrix ``move_probs``). Border rule: a move that would leave the square area is reflected
back into it (x → 2·high − x), so a user keeps its step length and never sticks to a wall.

Gauss–Markov (Liang & Haas 1999; `SystemConfig`'s docstring has the law): user u keeps a
velocity v, v' = α v + (1 − α) μ_u + sqrt(1 − α²) σ_u w and s' = s + v', with μ_u and σ_u
the mean and per-axis spread of its random-walk step (:func:`gauss_markov_params`); at the
border the coordinate is reflected and that velocity component flips.
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


def gauss_markov_params(move_probs: np.ndarray, step_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(μ_u (U×2), σ_u (U,)): the mean velocity and per-axis velocity spread of Gauss–Markov
    users, matched to their random-walk step: μ_u = E[m_u], 2σ_u² = Var‖m_u‖ (summed)."""
    mean, variance = move_moments(move_probs, step_size)
    return mean, np.sqrt(np.maximum(variance, 0.0) / 2.0)


def stationary_velocity(normals: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """v ~ N(μ_u, σ_u² I₂), the stationary law of the Gauss–Markov velocity (…, U, 2)."""
    return mean + std[:, None] * normals


def reflect_velocity(
    positions: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold positions into [low, high] (any overshoot, however far) and flip each velocity
    component whose coordinate was folded an odd number of times; coordinates already
    inside are returned exactly."""
    out = (positions < low) | (positions > high)
    if not out.any():
        return positions, velocity
    width = high - low
    folds = np.floor((positions - low) / width)
    phase = np.mod(positions - low, 2.0 * width)
    folded = low + np.where(phase > width, 2.0 * width - phase, phase)
    flip = out & (np.mod(folds, 2.0) != 0.0)
    return np.where(out, folded, positions), np.where(flip, -velocity, velocity)


def gauss_markov_move(
    positions: np.ndarray,
    velocity: np.ndarray,
    normals: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    memory: float,
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss–Markov slot given one N(0, 1) draw per user and axis: positions, velocity
    and normals (…, U, 2), μ (U, 2), σ (U,). Returns (s', v') after the border reflection."""
    noise = np.sqrt(1.0 - memory * memory) * std[:, None] * normals
    velocity = memory * velocity + (1.0 - memory) * mean + noise
    return reflect_velocity(positions + velocity, velocity, low, high)


def bayes_one_step(history: np.ndarray, mean: np.ndarray, memory: float) -> np.ndarray:
    """The Bayes-optimal Gauss–Markov prediction away from the walls, in closed form:

        E[s_{t+1} | s_t, s_{t−1}, …] = s_t + α (s_t − s_{t−1}) + (1 − α) μ_u,

    since s_t − s_{t−1} = v_t and E[v_{t+1} | v_t] = α v_t + (1 − α) μ_u (the velocity is
    Markov, so older states add nothing). Its error per axis is (1 − α²) σ_u². ``history``
    (…, k ≥ 2, 2U) holds flattened states, oldest first; ``mean`` μ (U, 2). Returns (…, 2U).
    """
    last, previous = history[..., -1, :], history[..., -2, :]
    return last + memory * (last - previous) + (1.0 - memory) * mean.reshape(-1)
