"""Training data of the GRU twin: simulated trajectories cut into (M states → next state) windows.

Trajectories come from :meth:`dnt_rllib.physics.network.Network.trajectories`, i.e. the
simulator's own mobility (eq. 1) for the same network instance. Each trajectory of T states
gives T − M windows: the input ``S'_t = (s_{t−M+1}, …, s_t)`` (§III-A, "Input") and the target
``s_{t+1}``. The train/validation split is by whole trajectories, so no state is shared by a
training and a validation window.

Pure numpy: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.network import Network
from dnt_rllib.validation import ConfigError

#: Share of the trajectories held out for validation (early stopping).
VALIDATION_FRACTION = 0.1

#: Stream ids mixed with ``network_seed`` so training data, the split and torch draw apart.
TRAIN_DATA_STREAM = 1
SPLIT_STREAM = 2
TORCH_STREAM = 3
EVAL_DATA_STREAM = 4


@dataclass(frozen=True)
class Normalisation:
    """Affine maps between raw area coordinates and the model's units.

    Inputs: ``(s − centre) / half`` maps the area onto [−1, 1] per coordinate. Outputs (eq. 10
    in normalised displacement coordinates): the model predicts ``(s_{t+1} − s_t) / step``,
    and the prediction in area coordinates is ``s_t + step · output``.
    """

    centre: np.ndarray  # (2U,) area centre, repeated per user
    half: np.ndarray  # (2U,) half side of the area, repeated per user
    step: float  # Δl [m]

    @classmethod
    def from_config(cls, config: SystemConfig) -> Normalisation:
        d = config.state_dim
        centre = np.tile(np.asarray(config.bs_position, dtype=np.float64), d // 2)
        return cls(centre=centre, half=np.full(d, config.area_size / 2), step=config.step_size)

    def inputs(self, states: np.ndarray) -> np.ndarray:
        """Raw states (…, 2U) → normalised model inputs in [−1, 1]."""
        return (states - self.centre) / self.half

    def states(self, inputs: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`inputs`."""
        return inputs * self.half + self.centre

    def targets(self, next_states: np.ndarray, last_states: np.ndarray) -> np.ndarray:
        """Normalised displacement ``(s_{t+1} − s_t) / Δl`` the model is trained to output."""
        return (next_states - last_states) / self.step

    def predictions(self, outputs: np.ndarray, last_states: np.ndarray) -> np.ndarray:
        """Model outputs → next states in area coordinates (inverse of :meth:`targets`)."""
        return last_states + self.step * outputs

    def to_dict(self) -> dict[str, list[float] | float]:
        return {"centre": self.centre.tolist(), "half": self.half.tolist(), "step": self.step}

    @classmethod
    def from_dict(cls, values: dict) -> Normalisation:
        return cls(
            centre=np.asarray(values["centre"], dtype=np.float64),
            half=np.asarray(values["half"], dtype=np.float64),
            step=float(values["step"]),
        )


@dataclass(frozen=True)
class Windows:
    """``inputs`` (n, M, 2U) raw histories and ``targets`` (n, 2U) raw next states."""

    inputs: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def make_windows(trajectories: np.ndarray, history: int) -> Windows:
    """Cut trajectories (count, T, 2U) into every (M states → next state) window, T − M each."""
    _, length, dim = trajectories.shape
    if length <= history:
        raise ValueError(f"trajectories of {length} states give no window of M = {history} + 1")
    # (count, T − M + 1, 2U, M) → drop the last start (it has no target) → (count·(T − M), M, 2U)
    views = np.lib.stride_tricks.sliding_window_view(trajectories, history, axis=1)
    inputs = np.moveaxis(views[:, :-1], -1, -2).reshape(-1, history, dim)
    targets = trajectories[:, history:].reshape(-1, dim)
    return Windows(inputs=np.ascontiguousarray(inputs), targets=np.ascontiguousarray(targets))


def split_trajectories(
    trajectories: np.ndarray, seed: int, fraction: float = VALIDATION_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train, validation) split by whole trajectories; validation gets ≥ 1."""
    count = len(trajectories)
    n_val = min(max(1, round(fraction * count)), count - 1)
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(count)
    return trajectories[order[n_val:]], trajectories[order[:n_val]]


def simulate(config: SystemConfig, count: int, stream: int, seed: int = 0) -> np.ndarray:
    """``count`` trajectories of T = ``episode_length`` states from the simulator (count, T, 2U).

    The generator is ``default_rng([network_seed, stream, seed])``: training data and
    evaluation data use different streams, so evaluation is always on fresh trajectories.
    """
    rng = np.random.default_rng([config.network_seed, stream, seed])
    return Network.from_config(config).trajectories(rng, count, config.episode_length)


def training_data(config: SystemConfig) -> tuple[Windows, Windows]:
    """(train, validation) windows for ``config``: ``twin_training_trajectories`` trajectories of
    T slots (``twin_trajectories``, fewer for the shared twin at large U)."""
    if config.episode_length <= config.history:
        raise ConfigError(
            f"SystemConfig.episode_length = {config.episode_length}: must exceed history = "
            f"{config.history} to give the GRU twin training windows"
        )
    trajectories = simulate(config, config.twin_training_trajectories, TRAIN_DATA_STREAM)
    train, val = split_trajectories(trajectories, config.network_seed)
    return make_windows(train, config.history), make_windows(val, config.history)
