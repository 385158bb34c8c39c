"""The `ray up` configs: valid for Ray's own cluster-config schema, safe, and runnable."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).parents[2]
CONFIGS = [ROOT / "cluster" / "cluster.yaml", ROOT / "cluster" / "local.yaml"]
README = ROOT / "README.md"
#: The README and the pages it links to: every command they name must exist.
DOCS = sorted((ROOT / "docs").glob("*.md"))
MLFLOW_SCRIPT = ROOT / "cluster" / "mlflow_server.sh"


def load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def commands(config: dict[str, Any]) -> list[str]:
    keys = ("setup_commands", "head_setup_commands", "worker_setup_commands")
    keys += ("head_start_ray_commands", "worker_start_ray_commands", "initialization_commands")
    return [cmd for key in keys for cmd in config.get(key, [])]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_ray_validates_the_prepared_config(path: Path) -> None:
    config = load(path)
    validate_config(prepare_config(copy.deepcopy(config)))  # raises on any schema fault
    assert config["provider"]["type"] == ("aws" if path.name == "cluster.yaml" else "local")


def test_aws_config_has_a_head_and_an_autoscaling_cpu_worker() -> None:
    config = load(CONFIGS[0])
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert len(workers) == 1 and workers[0]["min_workers"] < workers[0]["max_workers"]
    assert config["max_workers"] >= workers[0]["max_workers"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_nothing_listens_beyond_loopback_and_token_auth_is_on(path: Path) -> None:
    config = load(path)
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "bash ~/dnt_rllib/cluster/mlflow_server.sh start " in head
    assert re.search(r"mlflow server --host 127\.0\.0\.1 ", MLFLOW_SCRIPT.read_text())
    assert "0.0.0.0" not in yaml.safe_dump(config)
    starts = [c for c in commands(config) if re.search(r"\bray (start|stop)\b", c)]
    assert starts and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_repo_is_one_directory_mount(path: Path) -> None:
    config = load(path)
    mounts = config["file_mounts"]
    # package, pyproject.toml, README.md, tune_configs/ and cluster/ in one directory mount
    # (single-file mounts may not be updated on a running cluster), minus what git ignores
    assert mounts["~/dnt_rllib"] == "."
    assert [local for local in mounts.values() if local.startswith(".")] == ["."]
    assert ".git" in config["rsync_exclude"] and config["rsync_filter"] == [".gitignore"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_no_command_kills_by_pattern(path: Path) -> None:
    # Ray runs each command as `bash --login -c -i '... COMMAND ...'`: `pkill -f PATTERN`
    # matches that very shell's command line and kills it ("Failed to setup head node").
    for command in commands(load(path)):
        assert not re.search(r"\b(pkill|killall)\b", command), command


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_placeholders_are_marked_and_explained(path: Path) -> None:
    found = re.findall(r"<FILL: ([^>]*)>", yaml.safe_dump(load(path), width=1000))
    assert found  # every value a user must fill is marked <FILL: what to put there>
    assert all(len(text) >= 10 for text in found), found


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_setup_pins_the_versions_this_package_runs_with(path: Path) -> None:
    setup = " ".join(load(path)["setup_commands"])
    for package in ("ray", "torch", "mlflow", "gymnasium"):
        version = importlib.metadata.version(package).split("+")[0]  # torch: 2.13.0+cpu
        assert f"{package}=={version}" in setup.replace("[default,rllib,tune]", "")
    assert "-e ~/dnt_rllib" in setup
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f"ray[rllib,tune]=={importlib.metadata.version('ray')}" in pyproject


@pytest.mark.parametrize("path", [*CONFIGS, README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_the_commands_named_exist_in_this_package(path: Path) -> None:
    text = path.read_text()
    modules = set(re.findall(r"python -m (dnt_rllib[\w.]*)", text))
    modules |= {
        m.strip()
        for imports in re.findall(r'python -c "import ([\w., ]+)"', text)
        for m in imports.split(",")
    }
    if path in (*CONFIGS, README, ROOT / "docs" / "cluster.md"):
        assert "dnt_rllib.tune" in modules
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module
    for config in re.findall(r"tune_configs/[\w.-]+\.yaml", text):
        assert (ROOT / config).is_file(), config
