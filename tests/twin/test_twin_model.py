"""The GRU of eqs. (6)–(10): shapes, normalisation, and the numpy path against torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.base import Twin
from dnt_rllib.twin.data import Normalisation
from dnt_rllib.twin.gru import GRUPredictor, TorchGRUTwin
from dnt_rllib.twin.inference import NumpyGRUTwin


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def paper_gru(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Eqs. (6)–(10) written literally, one sample (M, 2U) → (2U,), for reference."""
    n = w["recurrent_h.weight"].shape[0]
    W, b = w["input.weight"], w["input.bias"]
    Wr, Wz, Wh = W[:n], W[n : 2 * n], W[2 * n :]
    br, bz, bh = b[:n], b[n : 2 * n], b[2 * n :]
    Ur, Uz = w["recurrent_rz.weight"][:n], w["recurrent_rz.weight"][n:]
    Uh = w["recurrent_h.weight"]
    h = np.zeros(n)
    for s in x:
        r = sigmoid(Wr @ s + Ur @ h + br)  # (6)
        h_tilde = np.tanh(Wh @ s + Uh @ (h * r) + bh)  # (7)
        z = sigmoid(Wz @ s + Uz @ h + bz)  # (8)
        h = (1 - z) * h_tilde + z * h  # (9)
    return w["output.weight"] @ h + w["output.bias"]  # (10)


def random_model(state_dim: int, hidden: int, seed: int = 0, scale: float = 2.0) -> GRUPredictor:
    """A model with weights large enough that the gates are not all near 1/2."""
    torch.manual_seed(seed)
    model = GRUPredictor(state_dim, hidden)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


def weights_of(model: GRUPredictor) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def histories(config: SystemConfig, batch: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (batch, config.history, config.num_users, 2)
    return rng.uniform(config.area_low, config.area_high, size=shape).reshape(*shape[:2], -1)


CONFIG = SystemConfig(num_users=3, history=4)


def test_shapes_and_protocol() -> None:
    model = random_model(CONFIG.state_dim, 16)
    norm = Normalisation.from_config(CONFIG)
    x = torch.zeros(7, CONFIG.history, CONFIG.state_dim)
    assert model(x).shape == (7, CONFIG.state_dim)
    for twin in (TorchGRUTwin(model, norm), NumpyGRUTwin(weights_of(model), norm, CONFIG.history)):
        assert isinstance(twin, Twin)
        out = twin.predict(histories(CONFIG, 5))
        assert out.shape == (5, CONFIG.state_dim)
        assert out.dtype == np.float64


def test_normalisation_round_trip() -> None:
    config = SystemConfig(num_users=3, bs_position=(10.0, -20.0), area_size=60.0, step_size=5.0)
    norm = Normalisation.from_config(config)
    s = histories(config, 11)
    x = norm.inputs(s)
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_allclose(norm.states(x), s, rtol=0, atol=1e-12)
    last, nxt = s[:, -1], s[:, -2]
    np.testing.assert_allclose(norm.predictions(norm.targets(nxt, last), last), nxt, atol=1e-12)
    np.testing.assert_allclose(norm.targets(last + config.step_size, last), 1.0)
    again = Normalisation.from_dict(norm.to_dict())
    assert np.array_equal(again.centre, norm.centre) and np.array_equal(again.half, norm.half)
    assert again.step == norm.step


def test_torch_model_is_eqs_6_to_10() -> None:
    model = random_model(CONFIG.state_dim, 12)
    x = np.random.default_rng(2).uniform(-1, 1, size=(4, CONFIG.history, CONFIG.state_dim))
    got = model.double()(torch.from_numpy(x)).detach().numpy()
    want = np.stack([paper_gru(weights_of(model), xi) for xi in x])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("hidden", [8, 128])
def test_numpy_matches_torch(hidden: int) -> None:
    model = random_model(CONFIG.state_dim, hidden, seed=hidden)
    norm = Normalisation.from_config(CONFIG)
    h = histories(CONFIG, 64)
    w = weights_of(model)
    float32_ref = TorchGRUTwin(model, norm).predict(h)
    np.testing.assert_allclose(
        NumpyGRUTwin(w, norm, CONFIG.history).predict(h), float32_ref, rtol=0, atol=1e-5
    )
    float64_ref = TorchGRUTwin(
        random_model(CONFIG.state_dim, hidden, seed=hidden).double(), norm
    ).predict(h)
    exact = NumpyGRUTwin(w, norm, CONFIG.history, dtype=np.float64).predict(h)
    np.testing.assert_allclose(exact, float64_ref, rtol=0, atol=1e-10)


def test_numpy_batch_one_equals_batched_and_returns_fresh_arrays() -> None:
    model = random_model(CONFIG.state_dim, 16)
    twin = NumpyGRUTwin(weights_of(model), Normalisation.from_config(CONFIG), CONFIG.history)
    h = histories(CONFIG, 6)
    batched = twin.predict(h)
    first = twin.predict(h[:1])
    for i in range(6):
        np.testing.assert_allclose(twin.predict(h[i : i + 1])[0], batched[i], atol=1e-5)
    assert not np.shares_memory(first, twin.predict(h[:1]))
    with pytest.raises(ValueError, match="state dimension"):
        twin.predict(h[:, :, :-2])


def test_inference_module_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from dnt_rllib.twin.inference import NumpyGRUTwin\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
