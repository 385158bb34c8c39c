"""`ray up cluster/local.yaml` for real: a head and a worker machine, the README's job, a
clean shutdown.

Each machine is this one over SSH: an ``sshd`` of the test's own on 127.0.0.1 (throwaway
keys) inside a PID and mount namespace, where its home and ``/tmp`` are folders of the test.
So ``ray stop`` (run by ``ray up`` and ``ray down``) sees only that machine's processes,
never another Ray here; each machine's ``~`` (its copy of the repo, ``~/dnt_rllib/
ray_results``) is its own disk, as on two computers; only the shared folder (the NFS mount
of a real cluster) is the same on both; killing the namespaces at the end leaves nothing
behind. The head advertises no CPU (as shipped), so the trials and the fits run on the
worker, which the head's autoscaler starts over SSH (Ray's v1 autoscaler: see local.yaml).
The laptop side (``ray`` CLI) gets its own ``HOME`` (auth token) and Ray temp dir. Ray's
launcher has no SSH port option: the laptop's SSH goes through a ProxyCommand relay to each
machine's port, and the head's, which gets no ProxyCommand from Ray, to the worker's sshd
on port 22 of the worker's own network namespace (joined to this one by a veth pair). The
copy of ``local.yaml`` differs from the shipped one only in its FILL values (the two IPs,
the test's key, the shared folder) and, since this machine may be offline, in the setup
steps that pip-install: they reuse the installed environment instead.
"""

from __future__ import annotations

import contextlib
import copy
import getpass
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnt_rllib.names import REFERENCE_RUNS
from dnt_rllib.shared_storage import SHARED_STORAGE_ENV as SHARED_ENV

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
LOCAL_YAML = ROOT / "cluster" / "local.yaml"
MLFLOW = "http://127.0.0.1:5000"
#: Where every node mounts the shared folder (inside the namespaces only).
SHARED = Path(pwd.getpwnam(getpass.getuser()).pw_dir) / "shared"
#: The value the copy of local.yaml exports as DNT_SHARED_STORAGE.
SHARED_STORAGE = f"{SHARED}/dnt"
CLUSTER_PORTS = {
    "MLflow": 5000,
    "Ray GCS": 6379,
    "Ray dashboard": 8265,
    "Ray dashboard agent": 52365,
}
# The job of docs/cluster.md (step 6; the README's cluster part), with the smoke config.
JOB = (
    "cd ~/dnt_rllib && MLFLOW_TRACKING_URI=http://127.0.0.1:5000 "
    "python -m dnt_rllib.tune --config tune_configs/smoke.yaml"
)
# The MLflow stop of docs/cluster.md (step 8; the README's cluster part).
STOP_MLFLOW = "bash ~/dnt_rllib/cluster/mlflow_server.sh stop"
# The workers' Ray stop of docs/cluster.md (step 9, cluster/local.yaml).
STOP_WORKERS = "bash ~/dnt_rllib/cluster/stop_workers.sh"
#: Ray's answer to a job submitted before the head's job agent is up (retried).
NO_AGENT = "No available agent to submit job"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` CLI of this environment
# ssh's ProxyCommand on the laptop: `relay.py HOST`, to that node's sshd (filled in).
RELAY = """\
import socket, sys, threading
ADDRESSES = {addresses}
sock = socket.create_connection(ADDRESSES[sys.argv[1]])
def upstream():
    while data := sys.stdin.buffer.raw.read(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def missing_requirements() -> str | None:
    tools = ["ssh", "ssh-keygen", "rsync", "unshare"]
    missing = [t for t in tools if shutil.which(t) is None]
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        missing.append("sshd")
    if missing:
        return f"needs {', '.join(missing)} (Debian: openssh-server openssh-client rsync)"
    dashboard = ["aiohttp_cors", "grpc", "opencensus", "prometheus_client"]
    if any(importlib.util.find_spec(module) is None for module in dashboard):
        return (
            "needs ray[default] (the dashboard, for `ray job submit`): pip install 'ray[default]'"
        )
    if os.geteuid() != 0:
        return "needs root: sshd logins and a PID namespace that keeps `ray stop` off other Ray"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], check=False)
    if probe.returncode != 0:
        return "cannot create PID/mount namespaces here (unshare failed)"
    busy = [f"{name} ({port})" for name, port in CLUSTER_PORTS.items() if listening(port)]
    if busy:
        return f"ports the launcher config pins are in use on this machine: {', '.join(busy)}"
    if shutil.which("ip") is None:
        return "needs ip (Debian: iproute2): the worker machine's own network"
    return None


def offline_setup(commands: list[str]) -> list[str]:
    """The shipped setup_commands, the steps that pip-install replaced by this environment.

    The head's venv sees this interpreter's packages (its own, and a virtualenv's it runs
    in), gets this repo's mounted copy on its path (as ``pip install -e`` would), and
    ``ray``/``mlflow`` scripts on its own Python, as a pip install would make them: Ray's
    workers then run the venv's Python, which imports the mounted ``~/dnt_rllib``.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv_site = f"~/venv/lib/{version}/site-packages"
    scripts = {
        name: next(
            path
            for path in (Path(sys.prefix) / "bin" / name, Path(sys.base_prefix) / "bin" / name)
            if path.exists()
        )
        for name in ("ray", "mlflow")
    }
    out = []
    for command in commands:
        if "python3 -m venv ~/venv" in command:
            out.append(
                f"test -d ~/venv || {sys.executable} -m venv --system-site-packages"
                " --without-pip ~/venv"
            )
            if sys.prefix != sys.base_prefix:
                site = sysconfig.get_path("purelib")
                out.append(f"echo 'import site; site.addsitedir(\"{site}\")' > {venv_site}/env.pth")
        elif "-e ~/dnt_rllib" in command:
            out.append(f"echo $HOME/dnt_rllib > {venv_site}/dnt_rllib.pth")
            out += [
                f"sed '1s|.*|#!'$HOME/venv/bin/python'|' {path} > ~/venv/bin/{name}"
                f" && chmod +x ~/venv/bin/{name}"
                for name, path in scripts.items()
            ]
        elif "pip install" not in command:
            out.append(command)
    return out


class Node:
    """sshd on ``host:port`` in its own PID + mount namespace: a cluster machine.

    Root's home is ``<tmp>/<name>_home`` and ``/tmp`` is ``<tmp>/<name>_tmp`` inside (so the
    nodes' Ray session folders and repo copies are their own, as on two machines), and
    ``<tmp>/shared`` is mounted at :data:`SHARED` on every node: the folder a real cluster
    mounts over NFS. Anything else (e.g. ``~/dnt_rllib/ray_results``) is one node's disk."""

    def __init__(
        self, tmp: Path, name: str, key: Path, host: str, port: int, netns: str | None = None
    ) -> None:
        self.host, self.port = host, port
        self.home = tmp / f"{name}_home"
        self.user = getpass.getuser()
        real_home = Path(pwd.getpwnam(self.user).pw_dir)
        sshd_dir = self.home / ".sshd"
        sshd_dir.mkdir(parents=True)
        (tmp / f"{name}_tmp").mkdir(mode=0o1777)
        (tmp / "shared").mkdir(exist_ok=True)
        (self.home / ".bashrc").touch()  # as in a new account
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(sshd_dir / "host_key")], check=True)  # fmt: skip
        shutil.copy(f"{key}.pub", sshd_dir / "authorized_keys")
        inner = real_home / ".sshd"  # the same folder, as the namespace sees it
        (sshd_dir / "sshd_config").write_text(
            f"ListenAddress {host}\nPort {port}\nHostKey {inner}/host_key\n"
            f"AuthorizedKeysFile {inner}/authorized_keys\nAllowUsers {self.user}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
            "PrintMotd no\n"
        )
        # This Python stays reachable (read-only) where it lies under the real home.
        binds = []
        for prefix in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}):
            if prefix.is_relative_to(real_home):
                target = self.home / prefix.relative_to(real_home)
                target.mkdir(parents=True, exist_ok=True)
                binds.append(f"mount --bind -o ro {prefix} {target}")
        shared = self.home / SHARED.relative_to(real_home)
        shared.mkdir(parents=True)
        script = " && ".join(
            [
                "set -e",
                "mkdir -p /run/sshd",
                *binds,
                f"mount --bind {tmp / 'shared'} {shared}",
                f"mount --rbind {self.home} {real_home}",
                f"mount --bind {tmp / f'{name}_tmp'} /tmp",
                f"exec {shutil.which('sshd') or '/usr/sbin/sshd'} -D -e -f {inner}/sshd_config",
            ]
        )
        self.log = tmp / f"{name}_sshd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *(["ip", "netns", "exec", netns] if netns else []),
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--kill-child",
                    "sh",
                    "-c",
                    script,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(lambda: listening(port, host) or self.proc.poll() is not None, 15, "sshd")
            assert self.proc.poll() is None, self.log.read_text()
        except BaseException:
            self.close()
            raise

    def processes(self) -> list[str]:
        """Command lines of the processes in the namespace, but sshd's own."""
        ns = os.readlink(f"/proc/{self.proc.pid}/ns/pid_for_children")
        found = []
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and os.readlink(proc / "ns" / "pid") == ns:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if cmdline and not cmdline.startswith(("sshd", "/usr/sbin/sshd")):
                        found.append(cmdline.strip())
        return found

    def close(self) -> None:
        # --kill-child: unshare's death kills the namespace's init, hence all inside it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


class Network:
    """The worker machine's own network stack: a network namespace joined to this one by a
    veth pair, ``head_ip`` on this side, ``worker_ip`` inside (routed to this machine's
    other addresses). Two nodes on one stack would fight over Ray's fixed ports (the
    dashboard agent's 52365), which real machines never share."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100_000}"
        subnet = f"10.213.{os.getpid() % 250}"
        self.name, self.veth = f"dnt-{tag}", f"dnt{tag}"
        self.head_ip, self.worker_ip = f"{subnet}.1", f"{subnet}.2"
        inside = ["ip", "netns", "exec", self.name, "ip"]
        commands = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", f"{self.veth}h", "type", "veth", "peer", "name", f"{self.veth}w"],
            ["ip", "link", "set", f"{self.veth}w", "netns", self.name],
            ["ip", "addr", "add", f"{self.head_ip}/24", "dev", f"{self.veth}h"],
            ["ip", "link", "set", f"{self.veth}h", "up"],
            [*inside, "addr", "add", f"{self.worker_ip}/24", "dev", f"{self.veth}w"],
            [*inside, "link", "set", f"{self.veth}w", "up"],
            [*inside, "link", "set", "lo", "up"],
            [*inside, "route", "add", "default", "via", self.head_ip],
        ]
        try:
            for command in commands:
                subprocess.run(command, check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as err:
            self.close()
            pytest.skip(f"cannot make the worker's network ({' '.join(err.cmd)}: "
                        f"{err.stderr.strip()})")  # fmt: skip

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", f"{self.veth}h"], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)


@dataclass
class Machines:
    """The head and one worker, their network, SSH key and relay."""

    network: Network
    head: Node
    worker: Node
    key: Path
    relay: Path  # the laptop's ProxyCommand
    shared: Path  # on this machine: what every node sees at SHARED


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    nodes: list[Node] = []
    relay = tmp_path / "relay.py"
    network = Network()
    try:
        # The head's sshd on this machine's loopback; the worker's on port 22 of its own
        # network, where the head's autoscaler, which starts it, reaches it with plain ssh
        # (Ray hands it no ProxyCommand). The laptop reaches both through the relay.
        nodes += [Node(tmp_path, "head", key, "127.0.0.1", free_port())]
        nodes += [Node(tmp_path, "worker", key, network.worker_ip, 22, network.name)]
        addresses = {network.head_ip: ("127.0.0.1", nodes[0].port),
                     network.worker_ip: (network.worker_ip, 22)}  # fmt: skip
        relay.write_text(RELAY.format(addresses=addresses))
        yield Machines(network, nodes[0], nodes[1], key, relay, tmp_path / "shared")
    finally:
        for node in nodes:
            node.close()
        network.close()


def get_json(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(MLFLOW + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def cluster_config(machines: Machines, tmp_path: Path) -> Path:
    """The shipped local.yaml with its FILL values for the test's two machines."""
    shipped = yaml.safe_load(LOCAL_YAML.read_text())
    config = copy.deepcopy(shipped)
    config["provider"].update(head_ip=machines.network.head_ip,
                              worker_ips=[machines.network.worker_ip])  # fmt: skip
    config["auth"] = {
        "ssh_user": machines.head.user,
        "ssh_private_key": str(machines.key),
        "ssh_proxy_command": f"{sys.executable} {machines.relay} %h",
    }
    setup = offline_setup(shipped["setup_commands"])
    config["setup_commands"] = [re.sub(r"<FILL: [^>]*>", SHARED_STORAGE, c) for c in setup]
    assert "<FILL" not in yaml.safe_dump(config)
    unchanged = {k: v for k, v in config.items() if k not in ("provider", "auth", "setup_commands")}
    assert unchanged == {k: shipped[k] for k in unchanged}  # every other line as shipped
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_ray_up_runs_the_readme_job_on_a_worker_and_ray_down_leaves_nothing(
    machines: Machines, tmp_path: Path
) -> None:
    cluster = cluster_config(machines, tmp_path)
    laptop = tmp_path / "laptop"
    (laptop / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", SHARED_ENV)}
    env.update(HOME=str(laptop), RAY_AUTH_MODE="token", RAY_TMPDIR=str(laptop / "tmp"))
    env["TMPDIR"] = env["RAY_TMPDIR"]

    def ray(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + 60
        while True:
            proc = subprocess.run(
                [*RAY, *args],
                cwd=ROOT,  # file_mounts are relative to the repo root
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            # Right after `ray up` the head's job agent may not be registered yet; Ray then
            # refuses the submission before starting anything and asks to try again.
            if NO_AGENT not in proc.stderr or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert proc.returncode == 0, (
            f"ray {' '.join(args)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
        return proc

    ray("get-auth-token", "--generate")
    started = time.monotonic()
    ray("up", "-y", str(cluster))
    print(f"ray up: {time.monotonic() - started:.0f} s")
    # MLflow answers the moment `ray up` returns
    with urllib.request.urlopen(f"{MLFLOW}/health", timeout=5) as response:
        assert response.status == 200

    # docs/cluster.md step 6: forward the dashboard (here to a free local port: 8265 is the head's
    # own on this machine) and submit the job through it.
    local_dashboard = free_port()
    dashboard = subprocess.Popen(
        [*RAY, "dashboard", "-p", str(local_dashboard), str(cluster)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: listening(local_dashboard), 60, "ray dashboard port forward")
        started = time.monotonic()
        address = f"http://127.0.0.1:{local_dashboard}"
        job = ray("job", "submit", "--address", address, "--", "bash", "-c", JOB, timeout=600)
        print(f"ray job submit (smoke.yaml): {time.monotonic() - started:.0f} s")
        assert "| SAC |" in job.stdout and "| DQN |" in job.stdout, job.stdout[-3000:]
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(timeout=30)

    # The trials ran on the worker (the head has no CPU) and wrote to the shared folder: the
    # storage and the twin cache default to DNT_SHARED_STORAGE, no machine's own disk.
    logs = (tmp_path / "worker_tmp").glob("ray/session_*/logs/worker-*.out")
    worker_logs = "".join(path.read_text(errors="replace") for path in logs)
    assert ":actor_name:ImplicitFunc" in worker_logs  # Tune's trial actors
    shared = machines.shared / "dnt"
    trials = {p.parent.name for p in shared.glob("ray_results/smoke/*/checkpoint_*")}
    assert len(trials) == 2, trials
    assert len(list(shared.glob("twins/gru-*.pt"))) == 1
    assert len(list(shared.glob("twins/threshold-*.json"))) == 1
    assert len(list(shared.glob("twins/references-*.json"))) == 2  # curve and evaluation
    for node in (machines.head, machines.worker):
        assert not (node.home / "dnt_rllib" / "ray_results").exists()
        assert not (node.home / "dnt_rllib" / ".dnt_cache").exists()

    # The runs are in the head's MLflow server, over its REST API.
    experiment = get_json("/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke")
    experiment_id = experiment["experiment"]["experiment_id"]
    runs = get_json("/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    tags = [{t["key"]: t["value"] for t in run["data"].get("tags", [])} for run in runs]
    assert sorted(t["algorithm"] for t in tags if "algorithm" in t) == ["DQN", "SAC"]
    for tag in (t for t in tags if "algorithm" in t):
        assert tag["best_checkpoint"].startswith(f"{SHARED_STORAGE}/ray_results/smoke/")
    references = sorted(t["dnt.reference"] for t in tags if "dnt.reference" in t)
    assert references == sorted(REFERENCE_RUNS), references
    assert all(run["info"]["status"] == "FINISHED" for run in runs)

    # docs/cluster.md steps 8 and 9: stop MLflow (its pid file), the workers' Ray, `ray down`.
    ray("exec", str(cluster), STOP_MLFLOW)
    stopped = ray("exec", str(cluster), STOP_WORKERS)
    assert f"ray stop on {machines.network.worker_ip}" in stopped.stdout + stopped.stderr
    started = time.monotonic()
    ray("down", "-y", str(cluster))
    print(f"ray down: {time.monotonic() - started:.0f} s")
    for node in (machines.worker, machines.head):
        deadline = time.monotonic() + 15
        while (left := node.processes()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"still running after ray down: {left}"
        still = {name: port for name, port in CLUSTER_PORTS.items() if listening(port)}
        assert not still, f"still listening after ray down: {still}"
