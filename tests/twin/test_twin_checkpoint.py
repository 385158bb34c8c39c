"""Checkpoints: round trip, metadata mismatch, corrupt, missing and unsafe files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.checkpoint import (
    TwinCheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from dnt_rllib.twin.gru import GRUPredictor, TorchGRUTwin
from dnt_rllib.twin.train import TrainResult


@pytest.fixture
def saved(tmp_path: Path, tiny_config: SystemConfig, tiny_trained: TrainResult) -> Path:
    path = tmp_path / "twin.pt"
    save_checkpoint(path, tiny_trained.model.state_dict(), tiny_config, tiny_trained.info())
    return path


def histories(config: SystemConfig, batch: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (batch, config.history, config.num_users, 2)
    return rng.uniform(config.area_low, config.area_high, size=shape).reshape(*shape[:2], -1)


def test_round_trip_gives_identical_predictions(
    saved: Path, tiny_config: SystemConfig, tiny_trained: TrainResult
) -> None:
    ckpt = load_checkpoint(saved, tiny_config, check_training=True)
    h = histories(tiny_config)
    reference = TorchGRUTwin(tiny_trained.model, tiny_trained.norm).predict(h)
    np.testing.assert_allclose(ckpt.twin().predict(h), reference, rtol=0, atol=1e-5)
    model = GRUPredictor(tiny_config.state_dim, tiny_config.gru_hidden)
    model.load_state_dict(ckpt.torch_state())
    np.testing.assert_array_equal(TorchGRUTwin(model, ckpt.norm).predict(h), reference)
    again = load_checkpoint(saved, tiny_config).twin().predict(h)
    np.testing.assert_array_equal(again, ckpt.twin().predict(h))
    assert ckpt.meta["training"]["best_epoch"] == tiny_trained.best_epoch


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"history": 4}, "history"),
        ({"num_users": 3}, "num_users"),
        ({"gru_hidden": 9}, "gru_hidden"),
        ({"step_size": 3.0}, "step_size"),
        ({"area_size": 80.0}, "area_size"),
        ({"network_seed": 1}, "network_seed"),
        ({"stay_prob_range": (0.1, 0.5)}, "stay_prob_range"),
    ],
)
def test_mismatch_names_the_field(
    saved: Path, tiny_config: SystemConfig, change: dict, field: str
) -> None:
    with pytest.raises(TwinCheckpointError) as err:
        load_checkpoint(saved, tiny_config.replace(**change))
    message = str(err.value)
    assert "\n" not in message
    assert f"{field} is" in message and str(saved) in message


def test_the_mobility_model_must_match(tmp_path: Path, tiny_config: SystemConfig) -> None:
    """A twin for Gauss–Markov users (untrained weights: only the metadata matters here) is
    refused for random-walk users and for another α, naming the field; a random-walk
    checkpoint's meta holds no mobility entries, as before these options existed."""
    gauss = tiny_config.replace(mobility_model="gauss_markov", mobility_memory=0.5)
    weights = GRUPredictor(gauss.state_dim, gauss.gru_hidden).state_dict()
    path = save_checkpoint(tmp_path / "gm.pt", weights, gauss)
    assert load_checkpoint(path, gauss).meta["mobility_memory"] == 0.5
    for other, message in [
        (tiny_config, "mobility_model is 'gauss_markov' in the checkpoint, 'random_walk' in"),
        (gauss.replace(mobility_memory=0.6), "mobility_memory is 0.5 in the checkpoint, 0.6"),
    ]:
        with pytest.raises(TwinCheckpointError, match=message):
            load_checkpoint(path, other)
    walk = save_checkpoint(tmp_path / "walk.pt", weights, tiny_config)
    meta = load_checkpoint(walk, tiny_config.replace(mobility_memory=0.1)).meta
    assert "mobility_model" not in meta and "mobility_memory" not in meta
    with pytest.raises(TwinCheckpointError, match="mobility_model is 'random_walk' in the c"):
        load_checkpoint(walk, gauss)


def test_training_fields_are_checked_only_when_asked(
    saved: Path, tiny_config: SystemConfig
) -> None:
    other = tiny_config.replace(twin_trajectories=30, epsilon=0.5, num_rbs=3)
    load_checkpoint(saved, other)  # the model is valid for this network
    with pytest.raises(TwinCheckpointError, match="twin_trajectories is 20"):
        load_checkpoint(saved, other, check_training=True)


def test_package_version_mismatch(
    saved: Path, tiny_config: SystemConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dnt_rllib

    monkeypatch.setattr(dnt_rllib, "__version__", "9.9.9")
    with pytest.raises(TwinCheckpointError, match="package_version is '0"):
        load_checkpoint(saved, tiny_config)


def test_missing_and_corrupt_files(tmp_path: Path, saved: Path, tiny_config: SystemConfig) -> None:
    cases = {
        "missing": None,
        "garbage": b"\x00not a checkpoint" * 10,
        "truncated": saved.read_bytes()[:200],
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.pt"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(TwinCheckpointError) as err:
            load_checkpoint(path, tiny_config)
        assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_malformed_content(tmp_path: Path, tiny_config: SystemConfig) -> None:
    path = tmp_path / "bad.pt"
    torch.save({"weights": {"input.weight": torch.zeros(2)}, "meta": {"format": "x"}}, path)
    with pytest.raises(TwinCheckpointError, match="malformed"):
        load_checkpoint(path, tiny_config)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_loading_never_runs_pickled_code(tmp_path: Path, tiny_config: SystemConfig) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weights": _Exploit(marker), "meta": {}}, path)
    with pytest.raises(TwinCheckpointError, match="unreadable or unsafe"):
        load_checkpoint(path, tiny_config)
    assert not marker.exists()
