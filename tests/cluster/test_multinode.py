"""End to end on a real multi-node Ray cluster on this machine (head + worker, 127.0.0.1).

The cluster (``ray.cluster_utils.Cluster``, token authentication on) lives in a helper
process — this file run as a script — so no Ray state leaks into pytest, and the helper's
process group is killed whatever happens. It answers on a pipe of its own (Ray's log lines
go to its stdout and may land mid-line). The real CLI runs ``smoke.yaml`` against it with
``--address``. Run the helper by hand with ``python tests/cluster/test_multinode.py serve DIR 1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from dnt_rllib.names import REFERENCE_RUNS
from dnt_rllib.shared_storage import SHARED_STORAGE_ENV

pytestmark = pytest.mark.e2e
SMOKE = Path(__file__).parents[2] / "tune_configs" / "smoke.yaml"
TRAINABLE = "ImplicitFunc"  # Tune's actor class around a function trainable
LOOPBACK = "127.0.0.1"


# --- the helper process: owns the cluster, answers one-line commands on stdin ---
def serve(temp_dir: str, reply_fd: int) -> None:
    """Start a head and a worker node, 1 CPU each; answer `remove-worker`, `actors`,
    `oom-node`, `quit` on reply_fd."""
    import ray
    import ray._common.utils
    import ray._private.utils
    from ray.cluster_utils import Cluster

    # Other Ray instances may run on this machine: never point their ``ray.init()`` at ours.
    ray._private.utils.write_ray_address = lambda *args, **kwargs: None
    ray._common.utils.reset_ray_address = lambda *args, **kwargs: None
    node_args = {"num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "temp_dir": temp_dir})

    def actors() -> list[dict[str, Any]]:
        if not ray.is_initialized():
            ray.init(address=cluster.address, log_to_driver=False)
        return [
            {
                "class": a["ActorClassName"].rsplit(".", 1)[-1],  # or wrap_function.<locals>.X
                "node": a["Address"]["NodeID"],
                "pid": a["Pid"],
                "state": a["State"],
                "death": str(a.get("DeathCause") or ""),
            }
            for a in ray._private.state.actors().values()
        ]

    try:
        worker = cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        reply(
            reply_fd,
            {
                "address": cluster.address,
                "head": cluster.head_node.node_id,
                "worker": worker.node_id,
            },
        )
        for line in sys.stdin:
            command = line.strip()
            if command == "remove-worker":
                cluster.remove_node(worker, allow_graceful=False)
                reply(reply_fd, {"removed": worker.node_id})
            elif command == "actors":
                reply(reply_fd, actors())
            elif command == "oom-node":
                reply(reply_fd, oom_node(cluster, node_args, actors))
            elif command == "quit":
                break
            else:  # answer, so the test fails rather than waits
                reply(reply_fd, {"error": f"unknown command {command!r}"})
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def oom_node(cluster: Any, node_args: dict[str, Any], actors: Any) -> dict[str, Any]:
    """Add a node whose memory monitor finds it over its threshold (1 % of the machine's
    memory) at its first look, 12 s after it starts: by then the trial that started there
    is training, and Ray kills it for memory as it kills a trial that grew too large. Once
    a trial actor died there, remove the node (its retry runs elsewhere). Returns the node
    and the dead trial actors."""
    settings = {"RAY_memory_usage_threshold": "0.01", "RAY_memory_monitor_refresh_ms": "12000"}
    os.environ.update(settings)  # read by the node's raylet as it starts
    try:
        node = cluster.add_node(**node_args)
    finally:
        for key in settings:
            del os.environ[key]
    deadline = time.time() + 90
    dead: list[dict[str, Any]] = []
    while time.time() < deadline and not dead:
        dead = [a for a in actors() if a["class"] == TRAINABLE and a["node"] == node.node_id
                and a["state"] == "DEAD"]  # fmt: skip
        time.sleep(0.2)
    # gracefully: the GCS learns at once, so a retry already placed there fails now, not
    # after Ray's health checks (~15 s)
    cluster.remove_node(node, allow_graceful=True)
    return {"node": node.node_id, "dead": dead}


def reply(fd: int, message: Any) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


# --- the test side ---
class LocalCluster:
    """Handle of the helper process: its address, node ids, and its commands."""

    def __init__(self, proc: subprocess.Popen, replies: IO[str], env: dict[str, str]) -> None:
        self.proc = proc
        self.replies = replies
        self.env = env
        info = self._read()
        self.address: str = info["address"]
        self.head: str = info["head"]
        self.worker: str = info["worker"]

    def _read(self) -> Any:
        line = self.replies.readline()
        if not line:
            raise RuntimeError(f"cluster helper exited ({self.proc.wait()})")
        return json.loads(line)

    def command(self, name: str) -> Any:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(name + "\n")
        stdin.flush()
        return self._read()

    def trial_nodes(self) -> set[str]:
        """Node ids of every trial actor the cluster ever ran."""
        return {a["node"] for a in self.command("actors") if a["class"] == TRAINABLE}


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A head and a worker node on 127.0.0.1 with their own token; torn down on any exit."""
    temp_dir = tempfile.mkdtemp(prefix="dnt-ray-", dir="/tmp")  # short: Ray's socket paths
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {
        **os.environ,
        "RAY_ADDRESS": "",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "PYTHONUNBUFFERED": "1",
        # Ray turns a loopback --address into the host's outward IP (services.
        # resolve_ip_for_localhost), where our nodes do not listen; its single-host mode
        # keeps 127.0.0.1. It only changes how a process finds its own IP.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    env.pop("RAY_AUTH_TOKEN", None)
    read_fd, write_fd = os.pipe()
    with open(Path(temp_dir) / "helper.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, "serve", temp_dir, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
            pass_fds=(write_fd,),
        )
    os.close(write_fd)  # the helper holds the only write end: its exit reads as EOF
    replies = os.fdopen(read_fd)
    try:
        yield LocalCluster(proc, replies, env)
    finally:
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the helper's session: only our processes
            replies.close()


def smoke_config(tmp_path: Path, **changes: Any) -> Path:
    """smoke.yaml with ``changes``; it names no storage: ``tune_cli`` exports the shared one."""
    config = yaml.safe_load(SMOKE.read_text())
    config.update(**changes)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tune_cli(
    cluster: LocalCluster, cwd: Path, config: Path, shared: bool = True
) -> subprocess.Popen:
    """The real CLI against the cluster, MLflow into ``cwd/tracking/mlflow.db``, Tune's
    storage and the twin cache under ``cwd/shared`` (``DNT_SHARED_STORAGE``, as the cluster
    configs export it: both nodes see this machine's disk)."""
    (cwd / "tracking").mkdir(exist_ok=True)
    address = cluster.address
    env = {
        **cluster.env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'tracking' / 'mlflow.db'}",
        SHARED_STORAGE_ENV: str(cwd / "shared") if shared else "",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dnt_rllib.tune", "--config", str(config), "--address", address],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen, timeout: float = 170, expect: int = 0) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the CLI did not finish in {timeout:.0f} s:\n{out[-3000:]}")
    assert proc.returncode == expect, out[-4000:]
    return out


def trial_results(storage: Path) -> dict[Path, list[dict[str, Any]]]:
    """Each trial folder under ``storage`` that has a checkpoint and a result row, with its
    rows (whole lines only: Tune may be writing the last)."""
    found = {}
    for trial in {checkpoint.parent for checkpoint in storage.glob("*/checkpoint_*")}:
        results = trial / "result.json"
        lines = results.read_text().split("\n")[:-1] if results.exists() else []
        if lines:
            found[trial] = [json.loads(line) for line in lines]
    return found


def check_mlflow_and_checkpoints(cwd: Path, experiment: str, trials: int) -> list:
    """Every trial has a FINISHED MLflow run whose best checkpoint is in the Tune storage."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'tracking' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    found = client.search_runs([exp.experiment_id])
    runs = [r for r in found if "algorithm" in r.data.tags]  # not the reference policies' runs
    assert len(runs) == trials
    # SAC and DQN on one network: its reference policies, logged once; and their parent
    assert len(found) == trials + len(REFERENCE_RUNS) + 1
    storage = cwd / "shared" / "ray_results" / experiment
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "eval/return" in run.data.metrics
        checkpoint = Path(run.data.tags["best_checkpoint"])
        assert checkpoint.is_dir() and storage in checkpoint.parents
    assert not (cwd / "mlflow.db").exists()  # nothing fell back to the default store
    return runs


def test_trials_survive_a_sigkill_a_lost_node_and_an_oom_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Two SAC trials, one on the head and one on the worker (1 CPU each). Once both have a
    checkpoint, the head's trial process gets SIGKILL and the worker node is lost. Then a
    node joins whose memory monitor kills what trains there: one of the two retries does,
    and Ray kills it for memory (an OutOfMemoryError, which ended the whole experiment
    before dnt_rllib.tuning.killed). Every retry goes on from its trial's checkpoint under
    max_failures, and the experiment ends with one finished MLflow run per trial. (SAC and
    DQN over two nodes into an MLflow server: tests/cluster/test_ray_up.py.)"""
    # 16 s of training per trial (the clock survives a restore; ~1 s an iteration): the
    # retry on the memory-killing node, restored at a few seconds, is still training at the
    # monitor's first look 12 s after the node starts. SAC only: smoke's DQN samples 1,000
    # steps in its first iteration, and would be done before its first checkpoint shows.
    sac = {"SAC": yaml.safe_load(SMOKE.read_text())["training"]["SAC"]}
    config = smoke_config(tmp_path, name="failover", stop={"time_total_s": 16}, max_failures=5,
                          search_space={"seed": {"grid": [0, 1]}}, training=sac)  # fmt: skip
    # Without shared storage: refused in one line before the twin, the fits or MLflow start
    # (Ray would stop each trial on the other node: "A local path on the head node is not
    # accessible by worker nodes").
    proc = tune_cli(cluster, tmp_path, config, shared=False)
    refused = finish(proc, expect=2).strip().splitlines()[-1]
    assert refused.startswith(f"error: experiment.storage_path = '{tmp_path}/ray_results': "
                              "a folder of this machine"), refused  # fmt: skip
    assert f"export {SHARED_STORAGE_ENV}=" in refused
    assert not any(tmp_path.glob("**/*.pt")) and not (tmp_path / "tracking" / "mlflow.db").exists()
    proc = tune_cli(cluster, tmp_path, config)
    storage = tmp_path / "shared" / "ray_results" / "failover"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and len(found := trial_results(storage)) < 2:
            time.sleep(0.2)
        assert len(found) == 2, "no checkpoints"
        time.sleep(1)  # Tune registers a checkpoint a save round trip after its row
        # each trial's process by the pid Tune puts in its results, and its node
        pids = {rows[0]["pid"]: trial for trial, rows in found.items()}
        nodes = {a["pid"]: a["node"] for a in cluster.command("actors") if a["pid"] in pids}
        assert sorted(nodes.values()) == sorted([cluster.head, cluster.worker]), nodes
        [pid] = [pid for pid, node in nodes.items() if node == cluster.head]
        os.kill(pid, signal.SIGKILL)
        cluster.command("remove-worker")
        oom = cluster.command("oom-node")
    except BaseException:
        proc.kill()
        raise
    out = finish(proc)
    assert "failed:" not in out and out.count("| SAC |") == 2
    assert oom["dead"], "no trial started on the node that kills for memory"
    assert "low on memory" in oom["dead"][0]["death"]  # Ray's memory monitor killed it
    assert cluster.trial_nodes() == {cluster.head, cluster.worker, oom["node"]}
    # Tune's record of each failure: the SIGKILL (its pid), the lost node, and the OOM kill,
    # which reached Tune as an actor's death (dnt_rllib.tuning.killed) while it trained
    errors = "".join(path.read_text() for path in storage.glob("SAC_*/error.txt"))
    assert "The actor died unexpectedly" in errors, errors
    assert "OutOfMemoryError: 1 worker(s) were killed due to the node running low" in errors
    assert f"pid: {pid}" in (pids[pid] / "error.txt").read_text()
    # both trials went on from a checkpoint: a process of each began past iteration 1, its
    # Algorithm's own count restored with it
    for trial in pids.values():
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert any(r["iterations_since_restore"] == 1 < r["training_iteration"] for r in rows)
    runs = check_mlflow_and_checkpoints(tmp_path, "failover", trials=2)
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("failover")
    assert experiment is not None
    assert all(r.info.status == "FINISHED" for r in client.search_runs([experiment.experiment_id]))
    for run in runs:
        assert run.data.metrics["wall_time_s"] >= 16  # the training clock, restored too
        # logged at the Algorithm's own iteration (the MLflow step), each once, and at
        # Tune's count: a retry that trained again from scratch would break the two apart
        history = client.get_metric_history(run.info.run_id, "training_iteration")
        assert sorted(m.step for m in history) == list(range(1, len(history) + 1))
        assert all(m.value == m.step for m in history)


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(sys.argv[2], int(sys.argv[3]))
