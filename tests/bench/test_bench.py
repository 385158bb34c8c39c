"""`python -m dnt_rllib.bench` and `--rllib` run on tiny settings and print positive figures.

Both run as subprocesses: the bench pins its process to one core and `--rllib` starts its
own Ray.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


def tiny_config(tmp_path: Path, **fields: str) -> Path:
    """A small network with a GRU twin that trains in a second into its own cache."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "num_users": 3,
                "num_rbs": 2,
                "episode_length": 10,
                "history": 3,
                "gru_hidden": 8,
                "twin_trajectories": 20,
                "twin_max_epochs": 1,
                "twin_cache_dir": str(tmp_path / "twins"),
                **fields,
            }
        )
    )
    return path


def bench(tmp_path: Path, *args: str, **fields: str) -> str:
    config = tiny_config(tmp_path, **fields)
    proc = subprocess.run(
        [sys.executable, "-m", "dnt_rllib.bench", "--config", str(config), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def figures(pattern: str, text: str) -> list[float]:
    """Every number the groups of ``pattern`` capture in ``text``, in order."""
    found = [m if isinstance(m, tuple) else (m,) for m in re.findall(pattern, text)]
    return [float(x.replace(",", "")) for match in found for x in match]


def test_bench_prints_positive_speeds_and_part_costs(tmp_path: Path) -> None:
    out = bench(tmp_path, "--steps", "200")
    # env steps/s and µs/step of the hold-last twin, the GRU and the vector env of 8
    speeds = figures(rf"## [^\n]*?: {NUMBER} env steps/s \({NUMBER} µs/(?:env )?step\)", out)
    assert len(speeds) == 3 * 2 and all(x > 0 for x in speeds), out
    parts = figures(rf"(?m)^\| [^|]+ \| {NUMBER} \|$", out)  # µs per call of each part
    assert len(parts) == 2 * 8 and all(x > 0 for x in parts), out
    assert "allocation (sorted" in out and "Hungarian" in out  # the fast path and its reference


def test_bench_with_the_hold_twin_trains_no_gru(tmp_path: Path) -> None:
    """``twin: hold`` in the config: the single and the vector env with the hold-last twin
    only (large cells need no GRU to be timed)."""
    out = bench(tmp_path, "--steps", "200", twin="hold")
    speeds = figures(rf"## [^\n]*?: {NUMBER} env steps/s \({NUMBER} µs/(?:env )?step\)", out)
    assert len(speeds) == 2 * 2 and all(x > 0 for x in speeds), out
    assert "GRU" not in out and "hold-last twin, vector env" in out
    assert not (tmp_path / "twins").exists()


@pytest.mark.e2e
def test_bench_rllib_prints_positive_throughputs(tmp_path: Path) -> None:
    out = bench(
        tmp_path,
        "--rllib",
        "--rllib-settings",
        "0:1",
        "--rllib-seconds",
        "0.5",
        "--rllib-rounds",
        "1",
    )
    rows = re.findall(r"^\| 0 \| 1 \|(.*)\|$", out, flags=re.MULTILINE)
    assert len(rows) == 1, out
    cells = [float(c.strip().replace(",", "")) for c in rows[0].split("|")]
    assert len(cells) == 6 and all(c > 0 for c in cells), out  # rates and ratios
    worst = figures(rf"Worst sampling ratio DNT / CartPole: {NUMBER}", out)
    assert len(worst) == 1 and worst[0] > 0, out


def test_bench_refuses_malformed_rllib_settings(tmp_path: Path) -> None:
    from dnt_rllib.bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--rllib", "--rllib-settings", "1-8"])
    assert exc.value.code == 2


@pytest.mark.e2e
def test_bench_learner_writes_every_path_the_floor_and_the_limit(tmp_path: Path) -> None:
    out = bench(tmp_path, "--learner", "--learner-seconds", "0.5", "--json", "learner.json")
    figures_ = json.loads((tmp_path / "learner.json").read_text())
    for key in ("rllib_ms_per_update", "fast_ms_per_update", "lean_ms_per_update",
                "ms_per_update", "floor_ms_per_update", "limit_ms_per_update"):  # fmt: skip
        assert figures_[key] > 0, figures_
    # the shipped YAMLs' learner (learner.kind's default) is what ms_per_update reports
    assert figures_["ms_per_update"] == figures_["lean_ms_per_update"]
    for path in ("rllib", "fast", "lean"):
        assert f"spends its time, {path} (cProfile)" in out, out
    assert "lean learner: forward, backward, Adam" in out, out
    assert "episode_replay_buffer" not in out  # labels, not raw function names


def test_bench_evaluation_times_every_part_of_a_trials_evaluation(tmp_path: Path) -> None:
    out = bench(tmp_path, "--evaluation", "4", twin="hold")
    assert "the references' evaluation on 4 episodes" in out
    parts = dict(re.findall(r"^\| (.+?) \| ([0-9.e+-]+) \|$", out, flags=re.M))
    assert set(parts) == {
        "threshold fit (300 tuning episodes)",
        "13 rules stepped in the env (old path)",
        "tapes of the episodes",
        "13 rules replayed on the tapes",
        "ceiling: its DP",
        "ceiling: played in the env",
    }
    assert all(float(s) > 0 for s in parts.values())
