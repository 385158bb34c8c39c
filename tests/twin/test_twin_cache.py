"""The twin cache: key, train once, two concurrent processes, corrupt entries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.cache import cache_key, cache_path, clear_memo, ensure_checkpoint, load_or_train
from dnt_rllib.twin.checkpoint import TwinCheckpointError
from dnt_rllib.twin.inference import NumpyGRUTwin


def test_key_ignores_rl_fields_and_the_cache_dir(tiny_config: SystemConfig) -> None:
    key = cache_key(tiny_config)
    assert len(key) == 16 and int(key, 16) >= 0
    rl_only = {
        "epsilon": 0.5,
        "num_rbs": 3,
        "interference": 0.0,
        "delay_bound": 1.0,
        "action_mode": "rb",
        "observation_mode": "paper",
        "twin_cache_dir": "elsewhere",
        "twin": "hold",
    }
    for name, value in rl_only.items():
        assert cache_key(tiny_config.replace(**{name: value})) == key, name
    for name, value in {
        "history": 4,
        "gru_hidden": 9,
        "step_size": 3.0,
        "network_seed": 2,
        "num_users": 3,
        "twin_trajectories": 30,
        "area_size": 90.0,
    }.items():
        assert cache_key(tiny_config.replace(**{name: value})) != key, name


def test_key_holds_the_mobility_model_but_not_the_interference_model(
    tiny_config: SystemConfig,
) -> None:
    """Gauss–Markov users move otherwise, so their twin is another one, and so is one for
    another memory α; the interference model changes no trajectory. Under the random walk
    α is unused, and the key stays what it was before these options (cached twins valid)."""
    key = cache_key(tiny_config)
    for name, value in {
        "interference_model": "markov",
        "interference_loud_share": 0.5,
        "interference_loud_ratio": 3.0,
        "interference_memory": 0.2,
        "mobility_memory": 0.3,
    }.items():
        assert cache_key(tiny_config.replace(**{name: value})) == key, name
    gauss = tiny_config.replace(mobility_model="gauss_markov")
    assert len({key, cache_key(gauss), cache_key(gauss.replace(mobility_memory=0.3))}) == 3


def test_trains_once_then_loads(tmp_path: Path, tiny_config: SystemConfig) -> None:
    clear_memo()
    path, first = ensure_checkpoint(tiny_config, tmp_path, progress=False)
    assert first is not None and path == cache_path(tiny_config, tmp_path)
    assert path.name == f"gru-{cache_key(tiny_config)}.pt"
    _, second = ensure_checkpoint(tiny_config, tmp_path, progress=False)
    assert second is None
    twin = load_or_train(tiny_config, tmp_path, progress=False)
    assert isinstance(twin, NumpyGRUTwin)
    assert load_or_train(tiny_config, tmp_path) is twin  # memoised in the process
    assert not list(tmp_path.glob("*.tmp"))


def test_default_folder_is_the_configs_relative_to_cwd(
    tmp_path: Path, tiny_config: SystemConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cache_path(tiny_config).parent == tmp_path / ".dnt_cache" / "twins"


def test_corrupt_cache_entry_raises_naming_the_file(
    tmp_path: Path, tiny_config: SystemConfig
) -> None:
    clear_memo()
    path = cache_path(tiny_config, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a file")
    with pytest.raises(TwinCheckpointError, match=path.name):
        load_or_train(tiny_config, tmp_path, progress=False)


CHILD = """
import json, sys
import numpy as np
import dnt_rllib.twin.train  # import torch before the race
from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.cache import ensure_checkpoint, load_or_train
config = SystemConfig.from_dict(json.loads(sys.argv[1]))
print("ready", flush=True)
path, result = ensure_checkpoint(config, sys.argv[2], progress=False)
twin = load_or_train(config, sys.argv[2], progress=False)
history = np.linspace(-40, 40, config.history * config.state_dim).reshape(1, config.history, -1)
print(json.dumps({"trained": result is not None, "prediction": twin.predict(history).tolist()}))
"""


def test_two_processes_train_once(tmp_path: Path, tiny_config: SystemConfig) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    # Hold the lock until both children are past the "file exists?" check and wait on it, so
    # both really ask for the missing twin at the same time.
    lock = FileLock(str(cache_path(tiny_config, cache)) + ".lock")
    values = json.dumps(tiny_config.to_dict())
    with lock:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, values, str(cache)], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        assert not list(cache.glob("gru-*.pt"))
    outputs = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["trained"] for o in outputs) == [False, True]
    np.testing.assert_array_equal(outputs[0]["prediction"], outputs[1]["prediction"])
    assert len(list(cache.glob("gru-*.pt"))) == 1
    assert not list(cache.glob("*.tmp"))
