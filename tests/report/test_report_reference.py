"""The report pairs learned policies with a policy of an `evaluate --json` output (e.g. the
lookahead) episode by episode, from each run's evaluation.json, and refuses other episodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy import stats

from dnt_rllib.report import load_runs
from dnt_rllib.report.runs import pair_with_reference
from dnt_rllib.report.tables import results_table
from dnt_rllib.validation import ConfigError
from tests.report.store import log_evaluation

POLICY = {0: [10.0, 12.0, 11.0, 15.0], 1: [9.0, 13.0, 12.0, 14.0]}
LOOKAHEAD = [10.5, 11.0, 11.5, 13.0]
THRESHOLD = [10.0, 11.0, 11.0, 12.0]  # the runs' own, on the same episodes
FIGURES = {"mean_return": 11.5, "sum_rate": 25.0, "sync_gap": 200.0, "sync_fraction": 0.25}


def store(tmp_path: Path, seeds: list[int]) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("sac")
    for seed, returns in POLICY.items():
        run = client.create_run(exp, tags={"algorithm": "SAC", "tune_experiment": "/r/sac"})
        rid = run.info.run_id
        client.log_param(rid, "seed", str(seed))
        client.log_param(rid, "env.epsilon", "0.987")
        log_evaluation(client, rid, {"policy/return": float(np.mean(returns)),
                                     "never/return": 5.0, "ceiling/return": 15.0,
                                     "threshold/return": 11.0})  # fmt: skip
        played = [{"policy": "policy", "returns": returns},
                  {"policy": "threshold", "returns": THRESHOLD}]  # fmt: skip
        record = {"seeds": seeds, "summaries": played}
        client.log_text(rid, json.dumps(record), "evaluation.json")
        client.set_terminated(rid)
    return uri


def reference(
    tmp_path: Path,
    seed: int = 100,
    epsilon: float = 0.987,
    returns: list[float] = LOOKAHEAD,
    **network: int,
) -> Path:
    config = {"epsilon": epsilon, "observation_mode": "full", **network}
    path = tmp_path / f"eval_{seed}_{epsilon}_{len(list(tmp_path.glob('eval_*')))}.json"
    path.write_text(
        json.dumps(
            {
                "seed": seed,
                "episodes": 4,
                "config": config,
                "summaries": [{"policy": "lookahead", "returns": returns, **FIGURES}],
            }
        )
    )
    return path


def test_each_run_is_paired_episode_by_episode(tmp_path: Path) -> None:
    uri = store(tmp_path, [100, 103])
    client = mlflow.MlflowClient(uri)
    runs = load_runs(client, "sac")
    assert pair_with_reference(client, runs, [reference(tmp_path)], ("lookahead",)) == ["lookahead"]
    for run in runs:
        diffs = np.subtract(POLICY[int(run.seed)], LOOKAHEAD)
        mean, ci = run.paired_with["lookahead"]
        assert mean == pytest.approx(diffs.mean())  # seed 0: +0.75, seed 1: +0.5
        t = stats.ttest_rel(POLICY[int(run.seed)], LOOKAHEAD)
        low, _ = t.confidence_interval(0.95)
        assert ci == pytest.approx(diffs.mean() - low)
        # the lookahead's own row: its figures, and paired with the run's threshold rule
        # (differences 0.5, 0, 0.5, 1: mean 0.5, s = 0.408, t₃ = 3.182 → ± 0.650)
        figures = run.references["lookahead"]
        assert {k: figures[k] for k in FIGURES} == FIGURES
        assert figures["diff_threshold"] == pytest.approx(0.5)
        assert figures["diff_threshold_ci95"] == pytest.approx(3.182446 * 0.4082483 / 2)


def test_the_reference_policy_has_its_row_between_the_bounds_and_the_rule(tmp_path: Path) -> None:
    uri = store(tmp_path, [100, 103])
    client = mlflow.MlflowClient(uri)
    runs = load_runs(client, "sac")
    paired = tuple(pair_with_reference(client, runs, [reference(tmp_path)], ("lookahead",)))
    rows = [line for line in results_table(runs, [], paired).splitlines()
            if line.startswith(("| ceiling", "| lookahead", "| threshold"))]  # fmt: skip
    # share of never (5) → ceiling (15): (11.5 − 5) / 10; its own paired column is 0
    assert rows[1] == (
        "| lookahead | default | – | 11.50 | +0.50 ± 0.65 (ep.) | 0 | 65.0 % | 25.000 | "
        "200.00 | 0.250 | – | – |"
    )
    assert [r.split(" |")[0] for r in rows] == ["| ceiling", "| lookahead", "| threshold"]


def test_other_episodes_or_another_network_are_refused(tmp_path: Path) -> None:
    uri = store(tmp_path, [100, 103])
    client = mlflow.MlflowClient(uri)
    runs = load_runs(client, "sac")
    with pytest.raises(ConfigError, match=r"episodes 200\.\.203, but SAC seed . was evaluated"):
        pair_with_reference(client, runs, [reference(tmp_path, seed=200)], ("lookahead",))
    with pytest.raises(ConfigError, match=r"another network .* \(env.epsilon = 0.9 there\)"):
        pair_with_reference(client, runs, [reference(tmp_path, epsilon=0.9)], ("lookahead",))


def test_several_references_pair_each_run_with_its_own_network(tmp_path: Path) -> None:
    uri = store(tmp_path, [100, 103])
    client = mlflow.MlflowClient(uri)
    runs = load_runs(client, "sac")
    client.log_param(runs[1].run_id, "env.num_rbs", "4")  # the second run's network differs
    runs = load_runs(client, "sac")
    other = [12.0, 12.0, 12.0, 12.0]
    six = reference(tmp_path, num_rbs=6)
    four = reference(tmp_path, returns=other, num_rbs=4)
    pair_with_reference(client, runs, [six, four], ("lookahead",))
    expected = {6: LOOKAHEAD, 4: other}
    for run in runs:
        mean, _ = run.paired_with["lookahead"]
        rbs = int(run.params.get("env.num_rbs", "6"))
        assert mean == pytest.approx(np.mean(POLICY[int(run.seed)]) - np.mean(expected[rbs]))
    with pytest.raises(ConfigError, match=r"another network .* \(env.num_rbs = 6 there\)"):
        pair_with_reference(client, runs, [six], ("lookahead",))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"summaries": [{"policy": "lookahead", "returns": [1.0, 2.0], **FIGURES}]},
         "lookahead's returns must be 4 numbers, one per episode"),
        ({"summaries": [{"policy": "lookahead", "returns": ["a", 1, 2, 3], **FIGURES}]},
         "lookahead's returns must be 4 numbers"),
        ({"config": []}, "config must map the network's SystemConfig fields"),
        ({"config": {}}, "config must map the network's SystemConfig fields"),
        ({"summaries": 3}, "not an `evaluate --json` output"),
    ],
)  # fmt: skip
def test_a_malformed_reference_is_one_line(tmp_path: Path, change: dict, says: str) -> None:
    """issue 25 (low): these were tracebacks, or (config: {}) paired with any network."""
    uri = store(tmp_path, [100, 103])
    client = mlflow.MlflowClient(uri)
    path = reference(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ConfigError, match=re.escape(says)):
        pair_with_reference(client, load_runs(client, "sac"), [path], ("lookahead",))
