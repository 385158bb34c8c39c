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
from dnt_rllib.twin.base import HoldLastTwin
from dnt_rllib.twin.evaluation import bayes_rollout_mse, evaluate_twin, oracle_predict


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


def test_evaluate_refuses_gauss_markov_before_training(
    tmp_path: Path, tiny_values: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its Bayes references are the random walk's, which would mislead for Gauss–Markov."""
    cfg = tmp_path / "gm.yaml"
    cache = tmp_path / "cache"
    values = {**tiny_values, "mobility_model": "gauss_markov", "twin_cache_dir": str(cache)}
    cfg.write_text(yaml.safe_dump(values))
    assert main(["evaluate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: mobility_model = 'gauss_markov'") and "\n" not in err
    assert not cache.exists()  # nothing trained


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
    mc = bayes_rollout_mse(network, centre[:, -1], 3, 4000, rng)
    np.testing.assert_allclose(mc[:, 0], ev.k_bayes[:3], rtol=0.1)
