"""Shared fixtures: one real smoke run of the Tune CLI, reused by the e2e tests, and a twin
cache kept between test sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SMOKE = ROOT / "tune_configs" / "smoke.yaml"


@dataclass(frozen=True)
class SmokeRun:
    """A finished ``python -m dnt_rllib.tune --config smoke.yaml`` in ``cwd``."""

    cwd: Path
    proc: subprocess.CompletedProcess

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.cwd / 'mlflow.db'}"

    @property
    def home(self) -> Path:
        """The run's ``HOME`` (Ray's processes and the trials inherit it)."""
        return self.cwd / "home"


def run_tune(
    cwd: Path, *args: str, timeout: float = 600, home: Path | None = None
) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, on a local Ray of its own (``HOME=home`` if given)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "dnt_rllib.tune", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    cwd = tmp_path_factory.mktemp("smoke")
    proc = run_tune(cwd, "--config", str(SMOKE), home=cwd / "home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return SmokeRun(cwd, proc)


@pytest.fixture(scope="session")
def twin_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A twin cache folder kept between test sessions (in pytest's cache, .pytest_cache/),
    so a test that needs a GRU twin of a full-size config trains it once per checkout, not
    once per run. The cache key holds the twin's config, move probabilities, package
    version and checkpoint format, so a changed config never reuses a stale twin; a change
    to the training code alone does (``pytest --cache-clear`` retrains). Without the cache
    plugin (``-p no:cacheprovider``) it is a fresh folder."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("twins")
    return Path(cache.mkdir("dnt_twins"))
