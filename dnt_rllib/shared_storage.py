"""Storage every node of a Ray cluster sees, named once: ``DNT_SHARED_STORAGE``.

The cluster launcher configs export it on every node (``cluster/cluster.yaml``: an S3 URI;
``cluster/local.yaml``: a folder every machine mounts), and ``tune`` passes it on to its Ray
workers. Where a YAML gives no ``storage_path``, Tune writes under ``<root>/ray_results``
(:func:`dnt_rllib.experiment.schema.default_storage_path`); where it gives no
``env.twin_cache_dir``, the twin cache is ``<root>/twins`` when the root is a folder.

A URI root (``s3://…``, ``file://…``) cannot hold the cache's file locks, so each node
keeps its own cache folder and this module mirrors it: a file missing from a node's cache
is fetched from ``<root>/twins/<name>`` before anything computes it (:func:`fetch`), and
a file a node computed is copied there (:func:`publish`). The names are content keys (the
twin's, the fit's, the references' hashes), so a copy is never stale; two nodes that miss
the same file at once both compute it and publish the same content.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The environment variable naming the shared storage (a URI or a mounted folder).
SHARED_STORAGE_ENV = "DNT_SHARED_STORAGE"
#: The shared storage's sub-folders: Tune's results, and the twin cache (or its mirror).
RESULTS_DIR = "ray_results"
CACHE_DIR = "twins"


def shared_root() -> str | None:
    """``DNT_SHARED_STORAGE`` without a trailing '/', or None when unset or empty."""
    value = os.environ.get(SHARED_STORAGE_ENV, "").strip()
    return value.rstrip("/") or None


def is_uri(path: str) -> bool:
    """Whether ``path`` is a URI (``scheme://…``), not a folder of this machine."""
    return "://" in path


def mirror_root() -> str | None:
    """``<root>/twins`` when the shared storage is a URI: where node caches are mirrored."""
    root = shared_root()
    return f"{root}/{CACHE_DIR}" if root is not None and is_uri(root) else None


def remote(path: Path) -> tuple[Any, str] | None:
    """The mirror's file system and its path for the cache file ``path``
    (``<mirror>/<path.name>``), or None without a URI root."""
    root = mirror_root()
    if root is None:
        return None
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(f"{root}/{path.name}")


def held(fs: Any, base: str) -> bool:
    """Whether the mirror's file system ``fs`` holds the file ``base``."""
    import pyarrow.fs as pafs

    return fs.get_file_info(base).type == pafs.FileType.File


def fetch(path: Path) -> bool:
    """Copy ``<mirror>/<path.name>`` to ``path`` if the mirror holds it; whether it did.
    A no-op (False) without a URI root."""
    found = remote(path)
    if found is None or not held(*found):
        return False
    import pyarrow.fs as pafs

    fs, base = found
    partial = path.with_name(f".{path.name}.fetch")
    pafs.copy_files(base, str(partial), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
    os.replace(partial, path)  # readers see no file or a whole one
    log.info("fetched %s from %s", path.name, mirror_root())
    return True


def publish(path: Path) -> None:
    """Copy the cache file ``path`` to the mirror (a no-op without a URI root)."""
    found = remote(path)
    if found is None:
        return
    import pyarrow.fs as pafs

    fs, base = found
    fs.create_dir(base.rsplit("/", 1)[0], recursive=True)
    partial = f"{base}.{os.getpid()}.partial"  # moved into place whole (S3: one PUT)
    pafs.copy_files(str(path), partial, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)  # fmt: skip
    fs.move(partial, base)


def share(path: Path) -> None:
    """Publish the cache file ``path`` if the mirror lacks it (a no-op without a URI root,
    or without the file): what this node found in its cache from before, other nodes fetch."""
    found = remote(path)
    if found is not None and path.is_file() and not held(*found):
        publish(path)
