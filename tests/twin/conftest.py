"""Shared tiny configs and one tiny trained twin for the twin tests (no Ray)."""

from __future__ import annotations

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.train import TrainResult, train_twin

#: A twin small enough to train in well under a second.
TINY = {
    "num_users": 2,
    "history": 3,
    "gru_hidden": 8,
    "twin_trajectories": 20,
    "episode_length": 8,
    "twin_max_epochs": 2,
}


@pytest.fixture
def tiny_values() -> dict[str, int]:
    """The tiny config as a dict of fields."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_config() -> SystemConfig:
    return SystemConfig.from_dict(TINY)


@pytest.fixture(scope="session")
def tiny_trained(tiny_config: SystemConfig) -> TrainResult:
    return train_twin(tiny_config, progress=False)
