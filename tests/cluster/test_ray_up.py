"""`ray up cluster/local.yaml` for real: start, serve the documented job, shut down cleanly.

The head is this machine over SSH: an ``sshd`` of the test's own on 127.0.0.1 (throwaway
keys) runs inside a PID and mount namespace, where the head's home and ``/tmp`` are folders
of the test. So ``ray stop`` (run by ``ray up`` and ``ray down``) sees only the cluster's
processes, never another Ray on this machine, ``~`` on the head is the test's, and killing
the namespace at the end leaves nothing behind. The laptop side (``ray`` CLI) gets its own
``HOME`` (auth token) and Ray temp dir. Ray's launcher has no SSH port option, so SSH goes
through a ProxyCommand relay to the test's port. The copy of ``local.yaml`` differs from the
shipped one only in its FILL values (127.0.0.1, no workers, the test's key) and, since this
machine may be offline, in the setup steps that pip-install: they reuse the installed
environment instead.
"""

from __future__ import annotations

import contextlib
import copy
import getpass
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnt_rllib.names import REFERENCE_RUNS

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
LOCAL_YAML = ROOT / "cluster" / "local.yaml"
MLFLOW = "http://127.0.0.1:5000"
CLUSTER_PORTS = {"MLflow": 5000, "Ray GCS": 6379, "Ray dashboard": 8265}
# The job of docs/cluster.md (step 3; the README's cluster part), with the smoke config.
JOB = (
    "cd ~/dnt_rllib && MLFLOW_TRACKING_URI=http://127.0.0.1:5000 "
    "python -m dnt_rllib.tune --config tune_configs/smoke.yaml"
)
# The MLflow stop of docs/cluster.md (step 5; the README's cluster part).
STOP_MLFLOW = "bash ~/dnt_rllib/cluster/mlflow_server.sh stop"
#: Ray's answer to a job submitted before the head's job agent is up (retried).
NO_AGENT = "No available agent to submit job"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` CLI of this environment
RELAY = """\
import socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def upstream():
    while data := sys.stdin.buffer.raw.read(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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


class Head:
    """sshd on 127.0.0.1:port in its own PID + mount namespace; root's home is ``home``."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.key = tmp / "id_ed25519"
        self.home = tmp / "head_home"
        self.user = getpass.getuser()
        real_home = Path(pwd.getpwnam(self.user).pw_dir)
        sshd_dir = self.home / ".sshd"
        sshd_dir.mkdir(parents=True)
        (tmp / "head_tmp").mkdir(mode=0o1777)
        (self.home / ".bashrc").touch()  # as in a new account
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", str(self.key)], check=True)
        subprocess.run([*keygen, "-f", str(sshd_dir / "host_key")], check=True)
        shutil.copy(f"{self.key}.pub", sshd_dir / "authorized_keys")
        inner = real_home / ".sshd"  # the same folder, as the namespace sees it
        (sshd_dir / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {inner}/host_key\n"
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
        script = " && ".join(
            [
                "set -e",
                "mkdir -p /run/sshd",
                *binds,
                f"mount --rbind {self.home} {real_home}",
                f"mount --bind {tmp / 'head_tmp'} /tmp",
                f"exec {shutil.which('sshd') or '/usr/sbin/sshd'} -D -e -f {inner}/sshd_config",
            ]
        )
        self.log = tmp / "sshd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(lambda: listening(self.port) or self.proc.poll() is not None, 15, "sshd")
            assert self.proc.poll() is None, self.log.read_text()
        except BaseException:
            self.close()
            raise
        self.relay = tmp / "relay.py"
        self.relay.write_text(RELAY)

    def namespace_processes(self) -> list[str]:
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


@pytest.fixture
def head(tmp_path: Path) -> Iterator[Head]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    head = Head(tmp_path)
    try:
        yield head
    finally:
        head.close()


def get_json(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(MLFLOW + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ray_up_runs_the_readme_job_and_ray_down_leaves_nothing(head: Head, tmp_path: Path) -> None:
    shipped = yaml.safe_load(LOCAL_YAML.read_text())
    config = copy.deepcopy(shipped)
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {
        "ssh_user": head.user,
        "ssh_private_key": str(head.key),
        "ssh_proxy_command": f"{sys.executable} {head.relay} %h {head.port}",
    }
    config["setup_commands"] = offline_setup(shipped["setup_commands"])
    assert "<FILL" not in yaml.safe_dump(config)
    unchanged = {k: v for k, v in config.items() if k not in ("provider", "auth", "setup_commands")}
    assert unchanged == {k: shipped[k] for k in unchanged}  # every other line as shipped
    cluster = tmp_path / "local.yaml"
    cluster.write_text(yaml.safe_dump(config, sort_keys=False))

    laptop = tmp_path / "laptop"
    (laptop / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
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

    # docs/cluster.md step 3: forward the dashboard (here to a free local port: 8265 is the head's
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
        assert "| SAC |" in job.stdout and "| DQN |" in job.stdout
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(timeout=30)

    # The runs are in the head's MLflow server, over its REST API.
    experiment = get_json("/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke")
    experiment_id = experiment["experiment"]["experiment_id"]
    runs = get_json("/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    tags = [{t["key"]: t["value"] for t in run["data"].get("tags", [])} for run in runs]
    assert sorted(t["algorithm"] for t in tags if "algorithm" in t) == ["DQN", "SAC"]
    references = sorted(t["dnt.reference"] for t in tags if "dnt.reference" in t)
    assert references == sorted(REFERENCE_RUNS), references
    assert all(run["info"]["status"] == "FINISHED" for run in runs)

    # docs/cluster.md step 5: stop MLflow (its pid file), then `ray down`.
    ray("exec", str(cluster), STOP_MLFLOW)
    started = time.monotonic()
    ray("down", "-y", str(cluster))
    print(f"ray down: {time.monotonic() - started:.0f} s")
    still = {name: port for name, port in CLUSTER_PORTS.items() if listening(port)}
    assert not still, f"still listening after ray down: {still}"
    deadline = time.monotonic() + 15
    while (left := head.namespace_processes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"still running after ray down: {left}"
