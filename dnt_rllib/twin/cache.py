"""The twin cache: one pretrained GRU twin per network, trained once, shared by every process.

Anything that needs the GRU twin for a config (the env, a Tune trial, the evaluation) calls
:func:`load_or_train`. The file is ``<cache dir>/gru-<key>.pt`` (``gru_shared-<key>.pt`` for
the shared twin), where the key hashes the fields that decide the twin — the model and
mobility fields (the mobility model and its memory only when they are not the random walk,
so random-walk keys are unchanged), the training settings, the move probabilities, the
package version and the checkpoint format, which differs between the joint and the shared
GRU, so their keys never collide — and nothing else (not the cache folder, nor RL-only
fields such as ε, N, interference and its model, γ or the action and observation modes). The
folder is ``cache_dir`` if given, else ``config.twin_cache_dir`` (relative paths resolve
against the current working directory).

Concurrency: a missing twin is trained under ``filelock.FileLock(<file>.lock)``; the winner
writes a temporary file in the same folder and ``os.replace``-s it into place, so a reader
sees either no file or a complete one, and the other processes waiting on the lock load the
winner's file instead of training again. Within a process, loaded twins are memoised. With
a URI ``DNT_SHARED_STORAGE`` (a cluster's S3 bucket), a twin another node trained is fetched
from its mirror instead, and one trained here is published there
(:mod:`dnt_rllib.shared_storage`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from dnt_rllib import shared_storage
from dnt_rllib.common import short_hash, usual_file_mode
from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.checkpoint import (
    KINDS,
    MOBILITY_FIELDS,
    MODEL_FIELDS,
    TRAINING_FIELDS,
    config_meta,
    load_checkpoint,
    save_checkpoint,
    twin_format,
)
from dnt_rllib.twin.inference import NumpyGRUTwin, NumpySharedGRUTwin
from dnt_rllib.validation import check_output

if TYPE_CHECKING:
    from dnt_rllib.twin.train import TrainResult

log = logging.getLogger(__name__)

#: Config fields in the cache key (besides the move probabilities, version and format).
KEY_FIELDS = (*MODEL_FIELDS, *MOBILITY_FIELDS, *TRAINING_FIELDS)

_memo: dict[Path, NumpyGRUTwin | NumpySharedGRUTwin] = {}
_memo_lock = threading.Lock()


def check_cache_dir(config: SystemConfig) -> None:
    """Refuse, before any work, a ``twin_cache_dir`` that is a file or lies under one: the
    twin, the threshold fit and the references are cached there. A read-only folder is
    taken (it may hold them already; a missing one fails before it is computed)."""
    check_output(config.twin_cache_dir, "SystemConfig.twin_cache_dir =", folder=True,
                 writable=False)  # fmt: skip


def cache_key(config: SystemConfig) -> str:
    """16 hex digits of SHA-256 over the fields that decide the twin (see module doc)."""
    meta = config_meta(config)
    payload: dict[str, Any] = {k: meta[k] for k in MODEL_FIELDS}
    payload.update({k: meta[k] for k in MOBILITY_FIELDS if k in meta})  # not random walk
    payload.update(meta["training"])
    payload.update(
        move_probs=meta["move_probs"], version=meta["package_version"], format=meta["format"]
    )
    return short_hash(payload, compact=True)


def cache_path(config: SystemConfig, cache_dir: str | Path | None = None) -> Path:
    """Where the twin for ``config`` lives: ``<cache dir>/<kind>-<key>.pt`` (absolute), the
    kind 'gru' or 'gru_shared'."""
    folder = Path(cache_dir if cache_dir is not None else config.twin_cache_dir)
    kind = KINDS[twin_format(config)][0]
    return (folder / f"{kind}-{cache_key(config)}.pt").resolve()


def ensure_checkpoint(
    config: SystemConfig,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    force: bool = False,
) -> tuple[Path, TrainResult | None]:
    """Make sure the cache holds the twin for ``config``; train it under the lock if missing.

    Returns (path, the :class:`~dnt_rllib.twin.train.TrainResult` if this call trained, else
    None). ``force`` retrains even if the file exists.
    """
    path = cache_path(config, cache_dir)
    if path.is_file() and not force:
        return path, None
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file() and not force:  # another process trained it while we waited
            return path, None
        if not force and shared_storage.fetch(path):  # another node trained it
            return path, None
        from dnt_rllib.twin.train import train_twin

        log.info("training the GRU twin %s", path.name)
        result = train_twin(config, progress=progress)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, usual_file_mode())  # mkstemp makes 0600: a shared cache must be readable
        try:
            save_checkpoint(tmp, result.model.state_dict(), config, result.info())
            os.replace(tmp, path)
            shared_storage.publish(path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    with _memo_lock:
        _memo.pop(path, None)
    return path, result


def load_or_train(
    config: SystemConfig, cache_dir: str | Path | None = None, *, progress: bool = True
) -> NumpyGRUTwin | NumpySharedGRUTwin:
    """The numpy GRU twin for ``config`` (joint or shared) from the cache, trained once if
    missing.

    Raises :class:`~dnt_rllib.twin.checkpoint.TwinCheckpointError` if the cached file is
    corrupt or does not match ``config`` (the key covers every checked field, so that means
    a damaged file: delete it to retrain).
    """
    path = cache_path(config, cache_dir)
    with _memo_lock:
        twin = _memo.get(path)
    if twin is not None:
        return twin
    ensure_checkpoint(config, cache_dir, progress=progress)
    twin = load_checkpoint(path, config, check_training=True).twin()
    with _memo_lock:
        _memo[path] = twin
    return twin


def clear_memo() -> None:
    """Forget the twins loaded in this process (files stay)."""
    with _memo_lock:
        _memo.clear()
