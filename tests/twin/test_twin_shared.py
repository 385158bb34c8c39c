"""The shared GRU twin (``twin: gru_shared``): one cell of eqs. (6)–(10) per user, plus b_u.

Expected values come from the paper's equations written out per user (``paper_gru``), from
the fact that users are independent (permutations) and from hand arithmetic, not from the
code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dnt_rllib.config import SHARED_USER_TRAJECTORIES, SystemConfig, check_fits, memory_estimate
from dnt_rllib.twin import make_twin
from dnt_rllib.twin.cache import cache_key, cache_path, clear_memo, ensure_checkpoint
from dnt_rllib.twin.checkpoint import TwinCheckpointError, load_checkpoint, save_checkpoint
from dnt_rllib.twin.data import Normalisation
from dnt_rllib.twin.gru import SharedGRUPredictor, TorchGRUTwin
from dnt_rllib.twin.inference import NumpySharedGRUTwin
from dnt_rllib.twin.train import per_user, train_twin, user_means
from dnt_rllib.validation import ConfigError
from tests.twin.test_twin_model import histories, paper_gru

CONFIG = SystemConfig(num_users=4, history=3, twin="gru_shared")


def random_shared(users: int, hidden: int, seed: int = 0, scale: float = 2.0):
    """A shared model with gates away from 1/2 and distinct, non-zero offsets b_u."""
    torch.manual_seed(seed)
    model = SharedGRUPredictor(users, hidden)
    with torch.no_grad():
        for p in model.cell.parameters():
            p.mul_(scale)
        model.user_bias.copy_(torch.randn(users, 2))
    return model.eval()


def weights_of(model: SharedGRUPredictor) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def cell_weights(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.removeprefix("cell."): v for k, v in w.items() if k.startswith("cell.")}


def test_shared_model_is_the_paper_cell_applied_to_each_user() -> None:
    """User u's output is eqs. (6)–(10) on u's own (M, 2) inputs, plus b_u."""
    model = random_shared(3, 8)
    x = np.random.default_rng(2).uniform(-1, 1, size=(5, 4, 6))
    got = model.double()(torch.from_numpy(x)).detach().numpy()
    w = weights_of(model)
    for u in range(3):
        want = np.stack([paper_gru(cell_weights(w), xi[:, 2 * u : 2 * u + 2]) for xi in x])
        np.testing.assert_allclose(got[:, 2 * u : 2 * u + 2], want + w["user_bias"][u], atol=1e-12)


def test_user_windows_are_each_users_own_positions() -> None:
    """``per_user``: row i·U + u holds user u's M positions of window i and its target."""
    x = torch.arange(2 * 3 * 6, dtype=torch.float64).reshape(2, 3, 6)  # n = 2, M = 3, U = 3
    y = torch.arange(12, dtype=torch.float64).reshape(2, 6)
    xs, users, ys = per_user(x, y)
    assert xs.shape == (6, 3, 2) and ys.shape == (6, 2)
    assert users.tolist() == [0, 1, 2, 0, 1, 2]
    # window 1, user 2: columns 4, 5 of window 1 (its entries are 18 + 6 t + column)
    assert xs[5].tolist() == [[22.0, 23.0], [28.0, 29.0], [34.0, 35.0]]
    assert ys[5].tolist() == [10.0, 11.0]
    rows = torch.tensor([[1.0, 2], [3, 4], [5, 6], [0, 0]])
    means = user_means(torch.tensor([0, 1, 0, 1]), rows, 3)
    assert means.tolist() == [[3.0, 4.0], [1.5, 2.0], [0.0, 0.0]]


@pytest.mark.parametrize("hidden", [8, 64])
def test_numpy_path_matches_torch(hidden: int) -> None:
    model = random_shared(CONFIG.num_users, hidden, seed=hidden)
    norm = Normalisation.from_config(CONFIG)
    h = histories(CONFIG, 32)
    w = weights_of(model)
    exact = NumpySharedGRUTwin(w, norm, CONFIG.history, dtype=np.float64).predict(h)
    reference = TorchGRUTwin(random_shared(CONFIG.num_users, hidden, seed=hidden).double(), norm)
    np.testing.assert_allclose(exact, reference.predict(h), rtol=0, atol=1e-10)
    fast = NumpySharedGRUTwin(w, norm, CONFIG.history).predict(h)
    np.testing.assert_allclose(fast, TorchGRUTwin(model, norm).predict(h), rtol=0, atol=1e-4)
    assert exact.shape == (32, CONFIG.state_dim) and exact.dtype == np.float64


def test_a_large_batch_is_predicted_in_chunks_equal_to_one_call(monkeypatch) -> None:
    """Chunks of 7 rows (of 4 users × 9 histories) give the torch float64 predictions."""
    import dnt_rllib.twin.inference as inference

    model = random_shared(CONFIG.num_users, 8, seed=5)
    norm = Normalisation.from_config(CONFIG)
    h = histories(CONFIG, 9)
    monkeypatch.setattr(inference, "CHUNK_VALUES", 7 * CONFIG.history * 3 * 8)
    twin = NumpySharedGRUTwin(weights_of(model), norm, CONFIG.history, dtype=np.float64)
    reference = TorchGRUTwin(model.double(), norm).predict(h)
    np.testing.assert_allclose(twin.predict(h), reference, rtol=0, atol=1e-10)


def test_numpy_path_adds_each_users_offset_in_metres() -> None:
    """Zero cell output weights leave s_t + Δl·(b^o + b_u) (eq. 10 mapped to metres)."""
    model = random_shared(CONFIG.num_users, 8)
    with torch.no_grad():
        model.cell.output.weight.zero_()
        model.cell.output.bias.copy_(torch.tensor([0.5, -1.0]))
        model.user_bias.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [0.0, 0.0]]))
    twin = NumpySharedGRUTwin(weights_of(model), Normalisation.from_config(CONFIG), 3, np.float64)
    h = histories(CONFIG, 2)
    step = CONFIG.step_size  # 6 m
    moves = step * np.array([1.5, -1.0, 0.5, 1.0, -0.5, 0.0, 0.5, -1.0])
    np.testing.assert_allclose(twin.predict(h), h[:, -1] + moves, atol=1e-12)


def test_permuting_users_permutes_predictions() -> None:
    """Users are independent: with their offsets permuted alike, the predictions of a
    permuted history are the permuted predictions."""
    model = random_shared(CONFIG.num_users, 16, seed=3)
    norm = Normalisation.from_config(CONFIG)
    w = weights_of(model)
    perm = np.array([2, 0, 3, 1])
    columns = np.stack([2 * perm, 2 * perm + 1], axis=1).reshape(-1)
    w_perm = dict(w, user_bias=w["user_bias"][perm])
    h = histories(CONFIG, 9)
    pred = NumpySharedGRUTwin(w, norm, 3, np.float64).predict(h)
    permuted = NumpySharedGRUTwin(w_perm, norm, 3, np.float64).predict(h[:, :, columns])
    np.testing.assert_allclose(permuted, pred[:, columns], rtol=0, atol=1e-12)
    # with equal offsets, the same twin is permutation-equivariant
    w_same = dict(w, user_bias=np.zeros_like(w["user_bias"]))
    same = NumpySharedGRUTwin(w_same, norm, 3, np.float64)
    np.testing.assert_allclose(
        same.predict(h[:, :, columns]), same.predict(h)[:, columns], rtol=0, atol=1e-12
    )


def test_training_trajectories_stay_flat_in_users() -> None:
    """⌈20,000 / U⌉ network trajectories (U user-trajectories each), at least 10, at most
    twin_trajectories; the joint GRU always uses twin_trajectories."""
    assert SHARED_USER_TRAJECTORIES == 20_000
    for users, want in {10: 2000, 100: 200, 300: 67, 500: 40, 5000: 10}.items():
        config = SystemConfig(num_users=users, twin="gru_shared")
        assert config.twin_training_trajectories == want, users
    assert SystemConfig(num_users=100, twin="gru").twin_training_trajectories == 2000
    assert SystemConfig(twin="gru_shared", twin_trajectories=300).twin_training_trajectories == 300


def test_memory_estimate_of_shared_pretraining_is_flat_in_users() -> None:
    def pretraining(config: SystemConfig) -> float:
        return next(v for k, (_, v) in memory_estimate(config).items() if "pretraining" in k)

    shared = [pretraining(SystemConfig(num_users=u, twin="gru_shared")) for u in (100, 500)]
    joint = [pretraining(SystemConfig(num_users=u, twin="gru")) for u in (100, 500)]
    # 200 trajectories of 100 users and 40 of 500 hold the same 20,000 user-trajectories
    assert shared[1] / shared[0] == pytest.approx(1.0, abs=1e-3)
    assert joint[1] / joint[0] > 4.0
    # U = 2,000: the joint GRU's 2,000 trajectories need ~25 GiB, the shared twin's 10 ~0.1
    config = SystemConfig(num_users=2000, twin="gru_shared")
    check_fits(config, limit=16 * 2**30)
    assert pretraining(config) < 2**30
    with pytest.raises(ConfigError, match=r"twin pretraining .* needs ~2\d\.\d GiB"):
        check_fits(SystemConfig(num_users=2000, twin="gru"), limit=16 * 2**30)


def test_bad_twin_values_give_one_line_naming_the_field() -> None:
    for bad in ("gru-shared", "shared", 1, None):
        with pytest.raises(ConfigError, match=r"^SystemConfig\.twin = ") as info:
            SystemConfig(twin=bad)
        assert "\n" not in str(info.value) and "gru_shared" in str(info.value)
    with pytest.raises(ConfigError, match=r"^SystemConfig\.episode_length = 3: must exceed"):
        SystemConfig(twin="gru_shared", history=3, episode_length=3)


def test_cache_key_and_file_differ_from_the_joint_twins(tiny_config: SystemConfig) -> None:
    shared = tiny_config.replace(twin="gru_shared")
    assert cache_key(shared) != cache_key(tiny_config)
    assert cache_key(tiny_config.replace(twin="hold")) == cache_key(tiny_config)
    assert cache_path(shared, "c").name == f"gru_shared-{cache_key(shared)}.pt"
    assert cache_path(tiny_config, "c").name == f"gru-{cache_key(tiny_config)}.pt"
    assert cache_key(shared.replace(num_users=3)) != cache_key(shared)


@pytest.fixture(scope="module")
def tiny_shared(tmp_path_factory: pytest.TempPathFactory):
    from tests.twin.conftest import TINY

    config = SystemConfig(**TINY, twin="gru_shared", num_rbs=2)
    return config, train_twin(config, progress=False)


def test_trained_checkpoint_round_trip(tiny_shared, tmp_path) -> None:
    config, result = tiny_shared
    assert isinstance(result.model, SharedGRUPredictor)
    assert math.isfinite(result.val_loss) and result.epochs_run == config.twin_max_epochs
    path = save_checkpoint(tmp_path / "t.pt", result.model.state_dict(), config, result.info())
    ckpt = load_checkpoint(path, config, check_training=True)
    assert ckpt.kind == "gru_shared"
    twin = ckpt.twin(dtype=np.float64)
    assert isinstance(twin, NumpySharedGRUTwin)
    h = histories(config, 5)
    reference = TorchGRUTwin(result.model, result.norm).predict(h)
    np.testing.assert_allclose(twin.predict(h), reference, rtol=0, atol=1e-4)
    with pytest.raises(TwinCheckpointError, match="twin is 'gru_shared' in the checkpoint, 'gru'"):
        load_checkpoint(path, config.replace(twin="gru"))
    joint = save_checkpoint(
        tmp_path / "j.pt",
        train_twin(config.replace(twin="gru"), progress=False).model.state_dict(),
        config.replace(twin="gru"),
    )
    with pytest.raises(TwinCheckpointError, match="twin is 'gru' in the checkpoint, 'gru_shared'"):
        load_checkpoint(joint, config)


def test_make_twin_trains_once_into_the_cache_and_steps_the_env(tiny_shared, tmp_path) -> None:
    import gymnasium as gym

    config = tiny_shared[0].replace(twin_cache_dir=str(tmp_path))
    clear_memo()
    twin = make_twin(config)
    assert isinstance(twin, NumpySharedGRUTwin)
    assert [p.name for p in tmp_path.glob("*.pt")] == [cache_path(config).name]
    assert ensure_checkpoint(config)[1] is None  # cached: not trained again
    env = gym.make("dnt_rllib/DNTSync-v0", config=config)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert np.isfinite(reward) and info["twin_positions"].shape == (config.num_users, 2)
    assert env.unwrapped.twin is twin
    clear_memo()
