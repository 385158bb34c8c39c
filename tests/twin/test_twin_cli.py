"""``python -m dnt_rllib.twin``: train and evaluate on a tiny config; bad configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.network import Network
from dnt_rllib.twin.__main__ import main
from dnt_rllib.twin.accuracy import bayes_rollout_mse, evaluate_twin, oracle_predict
from dnt_rllib.twin.base import HoldLastTwin


@pytest.fixture
def tiny_yaml(tmp_path: Path, tiny_values: dict[str, int]) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**tiny_values, "twin_cache_dir": str(tmp_path / "cache")}))
    return path


def test_train_then_evaluate(
    tmp_path: Path, tiny_yaml: Path, tiny_config: SystemConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["train", "--config", str(tiny_yaml), "--out", str(out), "--quiet"]) == 0
    assert (out / "twin.pt").is_file() and "history" in json.loads(
        (out / "training.json").read_text()
    )
    assert "trained" in capsys.readouterr().out
    assert main(["train", "--config", str(tiny_yaml), "--quiet"]) == 0
    assert "already cached" in capsys.readouterr().out
    args = ["evaluate", "--config", str(tiny_yaml), "--out", str(out), "--episodes", "20"]
    assert main([*args, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "mean ratio GRU/Bayes" in text and "k-step" in text
    for name in ("fig2.png", "evaluation.json", "evaluation.txt"):
        assert (out / name).stat().st_size > 0
    result = json.loads((out / "evaluation.json").read_text())
    assert len(result["ratio"]) == tiny_config.num_users and len(result["k_gru"]) == 10
    assert main([*args, "--checkpoint", str(out / "twin.pt")]) == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("history: 0\n", "SystemConfig.history"),
        ("bogus: 1\n", "bogus"),
        ("history: [\n", "not valid YAML"),
        ("- 1\n", "must be a YAML mapping"),
        ("episode_length: 5\n", "episode_length"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, content: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    out = tmp_path / "out"
    for command in ("train", "evaluate"):
        assert main([command, "--config", str(cfg), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    assert not out.exists()


def test_evaluate_refuses_gauss_markov_without_two_states_before_training(
    tmp_path: Path, tiny_values: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its Bayes references read the velocity from the last two states."""
    cfg = tmp_path / "gm.yaml"
    cache = tmp_path / "cache"
    values = {**tiny_values, "mobility_model": "gauss_markov", "history": 1}
    cfg.write_text(yaml.safe_dump({**values, "twin_cache_dir": str(cache)}))
    assert main(["evaluate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: history = 1") and "history >= 2" in err and "\n" not in err
    assert not cache.exists()  # nothing trained


class GaussMarkovBayesTwin:
    """s_t + α (s_t − s_{t−1}) + (1 − α) μ_u, written out here from the model's law."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def predict(self, history: np.ndarray) -> np.ndarray:
        alpha = self.network.config.mobility_memory
        last, previous = history[:, -1], history[:, -2]
        return last + alpha * (last - previous) + (1 - alpha) * self.network.velocity_mean.ravel()


def test_gauss_markov_references_against_the_closed_form() -> None:
    alpha = 0.6
    config = SystemConfig(num_users=3, mobility_model="gauss_markov", mobility_memory=alpha)
    network = Network.from_config(config)
    sigma2 = network.velocity_std**2
    ev, _ = evaluate_twin(GaussMarkovBayesTwin(network), config, episodes=60)
    assert ev.mobility == "gauss_markov"
    # one step: (1 − α²)σ²; two steps: the noise of v_{t+1} counts (1 + α)² times, + v_{t+2}'s
    np.testing.assert_allclose(ev.bayes, (1 - alpha**2) * sigma2)
    np.testing.assert_allclose(ev.k_bayes[1], (1 - alpha**2) * sigma2 * (1 + (1 + alpha) ** 2))
    # the Bayes twin meets its bound away from the walls; hold-last misses the whole move
    np.testing.assert_allclose(ev.ratio, 1.0, atol=0.1)
    np.testing.assert_allclose(ev.oracle_away, ev.gru_away)
    # hold-last's error is the stationary E‖v‖²/2 = σ² + ‖μ‖²/2
    hold = sigma2 + (network.velocity_mean**2).sum(axis=1) / 2
    np.testing.assert_allclose(ev.hold_away, hold, rtol=0.15)
    # at the walls the reflected-Gaussian oracle does at least as well as the free formula
    assert ev.oracle_all.mean() <= ev.gru_all.mean()
    # Monte Carlo from the centre, velocity = the last displacement, matches the closed form
    middle = np.tile((network.low + network.high) / 2, config.num_users)
    centre = np.broadcast_to(middle, (1, config.history, config.state_dim)).copy()
    centre[0, -1] += network.velocity_mean.ravel()
    mc = bayes_rollout_mse(network, centre, 3, 4000, np.random.default_rng(0))
    np.testing.assert_allclose(mc[:, 0], ev.k_bayes[:3], rtol=0.1)


def test_gauss_markov_oracle_folds_the_gaussian_at_a_wall() -> None:
    config = SystemConfig(num_users=2, mobility_model="gauss_markov", mobility_memory=0.5)
    network = Network.from_config(config)
    history = np.zeros((1, config.history, config.state_dim))
    history[0, -1] = np.repeat(network.high, config.num_users) - 0.1  # just inside the top corner
    free = GaussMarkovBayesTwin(network).predict(history).reshape(-1, 2)
    spread = np.sqrt(1 - 0.5**2) * network.velocity_std[:, None]
    draws = free + spread * np.random.default_rng(1).standard_normal((200_000, *free.shape))
    folded = np.minimum(draws, 2 * network.high - draws).mean(axis=0)
    np.testing.assert_allclose(oracle_predict(history, network).reshape(-1, 2), folded, atol=0.01)


def test_bayes_references_on_a_hold_twin() -> None:
    config = SystemConfig(num_users=3)
    network = Network.from_config(config)
    ev, trajectories = evaluate_twin(HoldLastTwin(), config, episodes=40)
    assert trajectories.shape[1:] == (config.episode_length, config.state_dim)
    # hold-last cannot beat Bayes; the free-walk Bayes error bounds the wall-aware one
    assert np.all(ev.hold_all >= ev.oracle_all * 0.9)
    assert np.all(ev.k_bayes_exact.mean(axis=1) <= ev.k_bayes.mean(axis=1) * 1.05)
    # in the middle of the area the exact Bayes prediction is s_t + E[m]
    centre = np.zeros((1, config.history, config.state_dim))
    mean = network.move_probs @ np.array([[0, 0], [0, 1], [0, -1], [-1, 0], [1, 0]])
    np.testing.assert_allclose(
        oracle_predict(centre, network), config.step_size * mean.reshape(1, -1)
    )
    rng = np.random.default_rng(0)
    mc = bayes_rollout_mse(network, centre, 3, 4000, rng)
    np.testing.assert_allclose(mc[:, 0], ev.k_bayes[:3], rtol=0.1)
