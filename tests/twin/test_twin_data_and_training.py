"""Training data (windows, split) and training (eq. 11, early stopping, seeding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.data import make_windows, split_trajectories, training_data
from dnt_rllib.twin.train import TrainResult, train_twin
from dnt_rllib.validation import ConfigError


def test_windows_are_m_states_then_the_next() -> None:
    traj = np.arange(2 * 6 * 4, dtype=float).reshape(2, 6, 4)  # 2 trajectories, T = 6, 2U = 4
    w = make_windows(traj, history=3)
    assert w.inputs.shape == (2 * 3, 3, 4) and w.targets.shape == (6, 4)
    for i, (c, t) in enumerate((c, t) for c in range(2) for t in range(2, 5)):
        np.testing.assert_array_equal(w.inputs[i], traj[c, t - 2 : t + 1])
        np.testing.assert_array_equal(w.targets[i], traj[c, t + 1])
    with pytest.raises(ValueError):
        make_windows(traj, history=6)


def test_split_is_by_trajectory_and_seeded() -> None:
    traj = np.arange(50, dtype=float).reshape(50, 1, 1)
    train, val = split_trajectories(traj, seed=3)
    assert len(val) == 5 and len(train) == 45
    assert not set(train.ravel()) & set(val.ravel())
    again = split_trajectories(traj, seed=3)
    np.testing.assert_array_equal(again[1], val)


def test_training_data_is_deterministic_and_uses_the_network(tiny_config: SystemConfig) -> None:
    a_train, a_val = training_data(tiny_config)
    b_train, _ = training_data(tiny_config)
    np.testing.assert_array_equal(a_train.inputs, b_train.inputs)
    m, t = tiny_config.history, tiny_config.episode_length
    assert len(a_train) + len(a_val) == tiny_config.twin_trajectories * (t - m)
    steps = np.abs(a_train.targets - a_train.inputs[:, -1]).reshape(-1, 2)
    # one move of at most Δl in one coordinate (reflection can shorten it)
    assert np.all(steps.max(axis=1) <= tiny_config.step_size + 1e-9)
    assert np.all(steps.min(axis=1) <= 1e-9)
    other = training_data(tiny_config.replace(network_seed=1))[0]
    assert not np.array_equal(other.inputs, a_train.inputs)


def test_episode_length_must_exceed_history() -> None:
    with pytest.raises(ConfigError, match="episode_length"):
        training_data(SystemConfig(episode_length=5, history=5))


def test_same_config_gives_the_same_weights(
    tiny_config: SystemConfig, tiny_trained: TrainResult
) -> None:
    state = torch.get_rng_state()
    again = train_twin(tiny_config, progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is untouched
    for k, v in tiny_trained.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    other = train_twin(tiny_config.replace(network_seed=5), progress=False)
    assert not torch.equal(other.model.output.bias, tiny_trained.model.output.bias)


def test_short_training_beats_the_hold_last_twin() -> None:
    config = SystemConfig(
        num_users=3,
        history=3,
        gru_hidden=16,
        twin_trajectories=300,
        episode_length=20,
        twin_max_epochs=8,
        twin_learning_rate=1e-2,
    )
    result = train_twin(config, progress=False)
    first = result.history[0]["val_loss"]
    assert result.val_loss < result.hold_val_loss
    assert result.val_loss <= first
    assert 1 <= result.best_epoch <= result.epochs_run <= config.twin_max_epochs
