"""The threshold fits of a sweep's networks, then their references on the curve and evaluation
episodes, run as parallel Ray tasks, are cached and shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import ray

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.policies.threshold import fit_path, fit_threshold, load_or_fit
from dnt_rllib.trial.references import load_or_play, references_path
from dnt_rllib.tuning.prepare import grid_networks, prepare_references
from dnt_rllib.twin import HoldLastTwin


@pytest.fixture
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.e2e
def test_each_network_of_the_grid_is_fitted_once_in_a_ray_task(
    tmp_path: Path, local_ray: None, capsys: pytest.CaptureFixture
) -> None:
    env = {"twin": "hold", "num_users": 3, "num_rbs": 2, "episode_length": 6,
           "twin_cache_dir": str(tmp_path)}  # fmt: skip
    exp = parse_experiment({
        "name": "fits", "algorithm": "SAC", "env": env,
        # two networks (ε) × two seeds: two fits, each shared by both seeds
        "search_space": {"env.epsilon": {"grid": [0.9, 0.99]}, "seed": {"grid": [0, 1]}},
        "evaluation": {"episodes": 6, "seed": 10000, "curve_episodes": 4, "curve_seed": 20000},
    })  # fmt: skip
    assert [c.epsilon for c in grid_networks(exp)] == [0.9, 0.99]
    background = prepare_references(exp)
    out, err = capsys.readouterr()
    assert "threshold fits: 100%" in err and "2/2" in err  # the bar of the fits done
    assert "references (curve episodes): 100%" in err  # waited for: a trial reads them first
    assert "2 Ray task(s) running beside the trials" in out  # the evaluation episodes'
    assert len(background) == 2
    ray.get(background)
    assert out.count("threshold rule: a =") == 2
    for epsilon in (0.9, 0.99):
        cfg = SystemConfig(**{**env, "epsilon": epsilon})
        cached = fit_path(cfg)
        assert cached.is_file()
        expected = fit_threshold(cfg, HoldLastTwin())  # the same fit, in this process
        assert f"a = {expected.a:.3f}, b = {expected.b:+.3f}" in out
        assert np.isclose(json.loads(cached.read_text())["a"], expected.a)
        fit = load_or_fit(cfg)
        for seeds in (range(20000, 20004), range(10000, 10006)):
            path = references_path(cfg, fit, seeds)
            assert path.is_file()
            mtime = path.stat().st_mtime_ns
            refs = load_or_play(DNTSyncEnv(cfg), fit, seeds)  # read, not played again
            assert path.stat().st_mtime_ns == mtime
            assert len(refs.summaries[0].returns) == len(seeds)
    assert prepare_references(exp) == []  # cached: no task, no bar, the same two lines
    out, err = capsys.readouterr()
    assert "threshold fits" not in err and "references" not in err + out
    assert out.count("threshold rule: a =") == 2
