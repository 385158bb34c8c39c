"""Small helpers shared by the layers: a short content hash, a JSON file computed once
however many processes want it, and an exception's first line."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from dnt_rllib import shared_storage


def short_hash(value: Any, compact: bool = False) -> str:
    """16 hex digits of SHA-256 over ``value`` as JSON with sorted keys (``compact``: no
    spaces after separators); what is not JSON is written as its ``str``."""
    separators = (",", ":") if compact else None
    blob = json.dumps(value, sort_keys=True, separators=separators, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def usual_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask (0644 usually)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def load_or_write_json(path: Path, make: Callable[[], Any]) -> Any:
    """The JSON at ``path``; if missing, ``make()`` written there once under
    ``<path>.lock`` (a temporary file ``os.replace``-d into place, readable by all), so that
    processes sharing the folder compute it once and never read half a file. With a URI
    ``DNT_SHARED_STORAGE``, a file another node computed is fetched instead, and one
    computed here is published (:mod:`dnt_rllib.shared_storage`)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file() and not shared_storage.fetch(path):
                record = make()
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                with os.fdopen(fd, "w") as fh:
                    json.dump(record, fh, indent=1)
                os.chmod(tmp, usual_file_mode())
                os.replace(tmp, path)
                shared_storage.publish(path)
    return json.loads(path.read_text())


def first_line(err: BaseException) -> str:
    """An exception's first line of text, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
