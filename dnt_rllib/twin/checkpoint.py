"""GRU twin checkpoints: weights plus the metadata that make them valid, saved and loaded safely.

A checkpoint is a ``torch.save`` file of one plain dict: ``"weights"`` (name → tensor, the
:class:`~dnt_rllib.twin.gru.GRUPredictor` state dict, or the
:class:`~dnt_rllib.twin.gru.SharedGRUPredictor` one for ``twin: gru_shared``) and ``"meta"``
(str, int, float and lists only). ``meta["format"]`` names the kind: :data:`FORMAT` (the
joint GRU) or :data:`SHARED_FORMAT` (the shared one). It is read with
``torch.load(..., weights_only=True)``, which refuses any pickled object other than tensors
and plain containers, so a checkpoint from elsewhere cannot run code.

``meta`` records what the twin is valid for: U, M, N^h, Δl, the area, the network seed and the
move probabilities it was trained on (and, for Gauss–Markov users, the mobility model and
its memory α), the normalisation, the package version and the training settings.
:func:`load_checkpoint` checks them against a config and fails with one
:class:`TwinCheckpointError` line naming the first field that differs; a missing, corrupt
or malformed file fails the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnt_rllib.common import first_line
from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.network import Network
from dnt_rllib.twin.data import Normalisation
from dnt_rllib.twin.inference import (
    SHARED_WEIGHT_NAMES,
    WEIGHT_NAMES,
    NumpyGRUTwin,
    NumpySharedGRUTwin,
)

#: Identifies the file layout of the joint GRU; bump when ``meta`` or the weight names change.
FORMAT = "dnt_rllib.twin.gru/1"
#: The same for the shared GRU (``twin: gru_shared``).
SHARED_FORMAT = "dnt_rllib.twin.gru_shared/1"
#: Format → (the ``twin`` value it serves, its weight names, its numpy twin).
KINDS: dict[str, tuple[str, tuple[str, ...], type]] = {
    FORMAT: ("gru", WEIGHT_NAMES, NumpyGRUTwin),
    SHARED_FORMAT: ("gru_shared", SHARED_WEIGHT_NAMES, NumpySharedGRUTwin),
}

#: Config fields a twin must agree on to be valid at all (the model and the mobility).
MODEL_FIELDS = (
    "num_users",
    "history",
    "gru_hidden",
    "step_size",
    "area_size",
    "bs_position",
    "network_seed",
    "stay_prob_range",
)

#: Mobility-model fields a twin must agree on, recorded only when the model is not the
#: paper's random walk: a random-walk checkpoint's meta (and cache key) is what it was
#: before these options existed, so cached twins stay valid; a missing entry reads as the
#: random walk.
MOBILITY_FIELDS = ("mobility_model", "mobility_memory")

#: Config fields that only decide how it was trained (checked when loading from the cache).
TRAINING_FIELDS = ("episode_length", "twin_trajectories", "twin_learning_rate", "twin_max_epochs")


def twin_format(config: SystemConfig) -> str:
    """The checkpoint format of ``config``'s GRU twin: :data:`SHARED_FORMAT` for
    ``gru_shared``, else :data:`FORMAT` (a 'hold' config's twin CLI trains the joint GRU)."""
    return SHARED_FORMAT if config.twin == "gru_shared" else FORMAT


class TwinCheckpointError(ValueError):
    """A twin checkpoint is missing, unreadable, malformed or made for another config."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the weights (float32 values in float64 arrays) and the metadata."""

    path: Path
    weights: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def norm(self) -> Normalisation:
        return Normalisation.from_dict(self.meta["norm"])

    @property
    def kind(self) -> str:
        """The ``twin`` value the weights are for: 'gru' or 'gru_shared'."""
        return KINDS[self.meta["format"]][0]

    def twin(self, dtype: type[np.floating] = np.float32) -> NumpyGRUTwin | NumpySharedGRUTwin:
        """The numpy inference twin over these weights."""
        numpy_twin = KINDS[self.meta["format"]][2]
        return numpy_twin(self.weights, self.norm, int(self.meta["history"]), dtype=dtype)

    def torch_state(self) -> dict[str, Any]:
        """The weights as a torch state dict (imports torch)."""
        import torch

        return {k: torch.tensor(v, dtype=torch.float32) for k, v in self.weights.items()}


def package_version() -> str:
    from dnt_rllib import __version__

    return __version__


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def config_meta(config: SystemConfig, move_probs: np.ndarray | None = None) -> dict[str, Any]:
    """The metadata a checkpoint for ``config`` must carry (without training results)."""
    if move_probs is None:
        move_probs = Network.from_config(config).move_probs
    meta: dict[str, Any] = {"format": twin_format(config), "package_version": package_version()}
    meta.update({k: _plain(getattr(config, k)) for k in MODEL_FIELDS})
    if config.mobility_model != "random_walk":
        meta.update({k: getattr(config, k) for k in MOBILITY_FIELDS})
    meta["move_probs"] = np.asarray(move_probs, dtype=np.float64).tolist()
    meta["norm"] = Normalisation.from_config(config).to_dict()
    meta["training"] = {k: getattr(config, k) for k in TRAINING_FIELDS}
    return meta


def save_checkpoint(
    path: str | Path,
    weights: dict[str, Any],
    config: SystemConfig,
    training_info: dict[str, float | int] | None = None,
) -> Path:
    """Write ``weights`` (the state dict of ``config``'s GRU: a GRUPredictor or, for
    ``gru_shared``, a SharedGRUPredictor) with the metadata of ``config`` to ``path``.

    Not atomic by itself: the cache writes to a temporary name and renames.
    """
    import torch

    meta = config_meta(config)
    meta["training"].update(training_info or {})
    state = {}
    for name in KINDS[meta["format"]][1]:
        value = weights[name]
        tensor = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.tensor(value)
        state[name] = tensor.to(torch.float32).clone().contiguous()
    path = Path(path)
    torch.save({"weights": state, "meta": meta}, path)
    return path


def load_checkpoint(
    path: str | Path, config: SystemConfig | None = None, *, check_training: bool = False
) -> Checkpoint:
    """Read a checkpoint safely; with ``config``, check it is valid for that config.

    ``check_training`` also requires the training settings (trajectories, T, learning rate,
    epochs) to agree, as the cache does. Raises :class:`TwinCheckpointError` (one line).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise TwinCheckpointError(f"twin checkpoint {path}: no such file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, or a refused pickle global
        reason = first_line(exc)
        raise TwinCheckpointError(
            f"twin checkpoint {path}: unreadable or unsafe ({type(exc).__name__}: {reason[:120]})"
        ) from None
    weights, meta = _unpack(path, raw)
    if config is not None:
        check_meta(path, meta, config, check_training=check_training)
    return Checkpoint(path=path, weights=weights, meta=meta)


def _unpack(path: Path, raw: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import torch

    def bad(why: str) -> TwinCheckpointError:
        return TwinCheckpointError(f"twin checkpoint {path}: malformed ({why})")

    if not isinstance(raw, dict) or not isinstance(raw.get("weights"), dict):
        raise bad("no 'weights' dict")
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        raise bad("no 'meta' dict")
    if meta.get("format") not in KINDS:
        raise bad(f"format {meta.get('format')!r}, expected {FORMAT!r} or {SHARED_FORMAT!r}")
    _, names, numpy_twin = KINDS[meta["format"]]
    for key in (*MODEL_FIELDS, "move_probs", "norm", "training", "package_version"):
        if key not in meta:
            raise bad(f"meta has no {key!r}")
    if not isinstance(meta["norm"], dict) or not isinstance(meta["training"], dict):
        raise bad("meta 'norm' and 'training' must be dicts")
    weights: dict[str, np.ndarray] = {}
    for name in names:
        tensor = raw["weights"].get(name)
        if not isinstance(tensor, torch.Tensor):
            raise bad(f"no weight {name!r}")
        array = tensor.detach().cpu().to(torch.float64).numpy()
        if not np.all(np.isfinite(array)):
            raise bad(f"weight {name!r} is not finite")
        weights[name] = array
    try:
        numpy_twin(weights, Normalisation.from_dict(meta["norm"]), int(meta["history"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise bad(str(exc)) from None
    return weights, meta


def _same(a: Any, b: Any) -> bool:
    try:
        return _equal(a, b)
    except (TypeError, ValueError):
        return False


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        a_arr = np.asarray(a, dtype=np.float64)
        b_arr = np.asarray(b, dtype=np.float64)
        return a_arr.shape == b_arr.shape and bool(np.allclose(a_arr, b_arr, rtol=1e-12, atol=0))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def check_meta(
    path: Path, meta: dict[str, Any], config: SystemConfig, *, check_training: bool = False
) -> None:
    """Raise :class:`TwinCheckpointError` naming the first field where ``meta`` and ``config``
    disagree."""
    expected = config_meta(config)

    def differs(name: str, have: Any, want: Any) -> TwinCheckpointError:
        return TwinCheckpointError(
            f"twin checkpoint {path} does not match the config: {name} is {have!r} in the "
            f"checkpoint, {want!r} in the config"
        )

    if meta["format"] != expected["format"]:
        raise differs("twin", KINDS[meta["format"]][0], KINDS[expected["format"]][0])
    if meta["package_version"] != expected["package_version"]:
        raise differs("package_version", meta["package_version"], expected["package_version"])
    for name in MODEL_FIELDS:
        if not _same(meta[name], expected[name]):
            raise differs(name, meta[name], expected[name])
    for name in MOBILITY_FIELDS:
        have, want = meta.get(name), expected.get(name)
        if not (have is None and want is None) and not _same(have, want):
            shown = {None: "random_walk"} if name == "mobility_model" else {}
            raise differs(name, shown.get(have, have), shown.get(want, want))
    if not _same(meta["move_probs"], expected["move_probs"]):
        raise TwinCheckpointError(
            f"twin checkpoint {path} does not match the config: move_probs differ "
            "(the network's mobility changed)"
        )
    for key in ("centre", "half", "step"):
        if not _same(meta["norm"][key], expected["norm"][key]):
            raise differs(f"norm.{key}", meta["norm"][key], expected["norm"][key])
    if check_training:
        for name in TRAINING_FIELDS:
            have = meta["training"].get(name)
            if have is None or not _same(have, expected["training"][name]):
                raise differs(name, have, expected["training"][name])
