"""Storage on a Ray cluster: what ``tune`` checks before the twin or the fits start.

Tune writes each trial's checkpoints to ``storage_path`` from the node the trial runs on, and
every trial reads the twin cache from its own node. On one machine any folder does; on a
cluster whose trials may run on other nodes, a folder of the driver's machine is one those
nodes cannot see (Ray stops each trial with "A local path on the head node is not accessible
by worker nodes"; the twin and the references are computed again on every node). Shared
storage is named once, by ``DNT_SHARED_STORAGE`` (:mod:`dnt_rllib.shared_storage`).
"""

from __future__ import annotations

from pathlib import Path

from dnt_rllib import shared_storage
from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.validation import ConfigError, short

ENV = shared_storage.SHARED_STORAGE_ENV


def trials_elsewhere() -> str | None:
    """Why the connected Ray cluster's trials may run on other nodes than this one (more
    than one node, or this one has no CPU), or None when this node is the whole cluster."""
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    here = ray.get_runtime_context().get_node_id()
    cpus = next((n["Resources"].get("CPU", 0) for n in nodes if n["NodeID"] == here), 0)
    if len(nodes) > 1:
        return f"a Ray cluster of {len(nodes)} nodes"
    if cpus == 0:
        return "a Ray cluster whose head has no CPU for trials (they run on nodes that join)"
    return None


def unshared(path: str) -> bool:
    """Whether ``path`` is a folder of this machine that other nodes may not see: not a URI
    and not under a folder ``DNT_SHARED_STORAGE`` names."""
    root = shared_storage.shared_root()
    if shared_storage.is_uri(path):
        return False
    return root is None or shared_storage.is_uri(root) or not Path(path).is_relative_to(root)


def check_cluster_storage(exp: ExperimentConfig) -> None:
    """Refuse, in one line and before any work, Tune storage or a twin cache that other
    nodes of the connected cluster cannot see (see the module doc). A twin cache is fine
    when ``DNT_SHARED_STORAGE`` is a URI: each node's cache is mirrored there."""
    where = trials_elsewhere()
    if where is None:
        return
    root = shared_storage.shared_root()
    cache = str(Path(exp.env.twin_cache_dir).resolve())
    fields = [("storage_path", exp.storage_path)]
    if not (root is not None and shared_storage.is_uri(root)):
        fields.append(("env.twin_cache_dir", cache))
    for field, path in fields:
        if unshared(path):
            fix = (f"{ENV} is {short(root)}, not above it" if root is not None
                   else f"export {ENV}=s3://BUCKET/PREFIX or a folder every node mounts "
                   "(cluster/*.yaml do), and leave the YAML's value out")  # fmt: skip
            raise ConfigError(
                f"experiment.{field} = {short(path)}: a folder of this machine, but this "
                f"is {where}, whose other nodes cannot see it; {fix}"
            )
