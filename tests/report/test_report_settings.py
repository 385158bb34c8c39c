"""The report on an experiment over named settings (the memory networks): ``settings.png``
and its points, each from hand-set runs and reference JSONs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy import stats

from dnt_rllib.report import load_runs
from dnt_rllib.report import main as report_main
from dnt_rllib.report.figures import setting_points
from dnt_rllib.report.runs import pair_with_reference
from tests.report.store import log_evaluation

#: network → per seed (SAC's Δ vs threshold, sync fraction); ceiling Δ; lookahead returns
NETWORKS = {
    "iid": ([(0.1, 0.20), (0.3, 0.22), (0.2, 0.21)], 1.5, [11.0, 12.0, 13.0, 14.0]),
    "markov": ([(-0.4, 0.15), (0.0, 0.17), (-0.2, 0.16)], 2.5, [10.0, 12.0, 13.0, 16.0]),
}
THRESHOLD = [10.0, 11.0, 13.0, 14.0]


def write_store(tmp_path: Path) -> tuple[str, list[Path]]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("memory")
    refs = []
    for network, (seeds, room, lookahead) in NETWORKS.items():
        for seed, (diff, sync) in enumerate(seeds):
            rid = client.create_run(exp, tags={"algorithm": "SAC"}).info.run_id
            client.log_param(rid, "seed", str(seed))
            client.log_param(rid, "env.interference_model", network)
            client.log_param(rid, "env.epsilon", "0.987")
            metrics = {"policy/return": 12.0 + diff, "policy/diff_threshold": diff,
                       "policy/sync_fraction": sync, "threshold/diff_threshold": 0.0,
                       "threshold/sync_fraction": 0.25, "ceiling/diff_threshold": room,
                       "ceiling/sync_fraction": 0.3}  # fmt: skip
            log_evaluation(client, rid, metrics)
            played = [{"policy": "policy", "returns": [12.0] * 4},
                      {"policy": "threshold", "returns": THRESHOLD}]  # fmt: skip
            client.log_text(rid, json.dumps({"seeds": [100, 103], "summaries": played}),
                            "evaluation.json")  # fmt: skip
            client.set_terminated(rid)
        path = tmp_path / f"{network}.json"
        figures = {"mean_return": float(np.mean(lookahead)), "sum_rate": 25.0,
                   "sync_gap": 100.0, "sync_fraction": 0.24}  # fmt: skip
        summary = {"policy": "lookahead", "returns": lookahead, **figures}
        path.write_text(json.dumps({"seed": 100, "episodes": 4, "summaries": [summary],
                                    "config": {"interference_model": network}}))  # fmt: skip
        refs.append(path)
    return uri, refs


def test_each_setting_has_its_seeds_reference_and_room(tmp_path: Path) -> None:
    uri, refs = write_store(tmp_path)
    client = mlflow.MlflowClient(uri)
    runs = load_runs(client, "memory")
    pair_with_reference(client, runs, refs, ("lookahead",))
    points = setting_points(runs, ["env.interference_model"])
    assert list(points) == ["interference_model=iid", "interference_model=markov"]
    markov = points["interference_model=markov"]
    assert list(markov) == ["SAC", "lookahead", "ceiling", "threshold"]
    diffs = [d for d, _ in NETWORKS["markov"][0]]
    assert markov["SAC"].diff == pytest.approx(-0.2)
    assert markov["SAC"].half == pytest.approx(stats.t.ppf(0.975, 2) * 0.2 / np.sqrt(3))
    assert sorted(markov["SAC"].seeds) == sorted(diffs)
    assert markov["SAC"].sync == pytest.approx(0.16)
    # markov's own lookahead minus the threshold: 0, +1, 0, +2 (iid's: +1, +1, 0, 0)
    assert markov["lookahead"].diff == pytest.approx(0.75)
    assert points["interference_model=iid"]["lookahead"].diff == pytest.approx(0.5)
    assert markov["ceiling"].diff == 2.5 and markov["threshold"].sync == 0.25


def test_the_report_draws_it_only_for_named_settings(tmp_path: Path) -> None:
    uri, refs = write_store(tmp_path)
    out = tmp_path / "report"
    args = ["--experiment", "memory", "--tracking-uri", uri, "--out", str(out)]
    assert report_main([*args, *(a for p in refs for a in ("--reference-json", str(p)))]) == 0
    assert (out / "settings.png").stat().st_size > 10_000
    assert (
        "| lookahead | interference_model=markov | – | 12.75 | +0.75 ±"
        in (out / "results.md").read_text()
    )
    assert setting_points(load_runs(mlflow.MlflowClient(uri), "memory"), ["env.epsilon"]) == {}
