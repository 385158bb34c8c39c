"""The report's A/B tables (replay path, learner): new − old per seed, against hand computations."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy import stats

from dnt_rllib.report import main as report_main
from tests.report.store import log_evaluation

#: Per (kind, seed): final Δ vs threshold, and the curve's (env steps, Δ vs threshold).
RUNS = {
    ("fast", 0): (0.30, [(10_000, -3.0), (20_000, -0.5), (30_000, 0.2), (40_000, 0.4)]),
    ("fast", 1): (0.10, [(12_000, -2.0), (24_000, -0.1), (36_000, 0.3)]),
    ("fast", 2): (-0.20, [(9_000, -4.0), (18_000, -1.0), (27_000, 0.0)]),
    ("rllib", 0): (0.05, [(5_000, -5.0), (13_000, -1.5)]),
    ("rllib", 1): (0.20, [(6_000, -4.0), (12_000, -0.4)]),
    ("rllib", 2): (-0.60, [(4_000, -6.0), (9_500, -2.0)]),
}


def write_store(uri: str, param: str = "replay.kind", new: str = "fast") -> None:
    """:data:`RUNS`, with ``param`` = ``new`` where the table says fast."""
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("ab")
    for (kind, seed), (diff, curve) in RUNS.items():
        run = client.create_run(exp, tags={"algorithm": "SAC"}).info.run_id
        client.log_param(run, "seed", seed)
        client.log_param(run, param, new if kind == "fast" else kind)
        client.log_param(run, "env.epsilon", 0.987)
        metrics = {"policy/return": 744.0 + diff, "policy/diff_threshold": diff,
                   "policy/share": 0.97, "best_periodic/best_period": 4,
                   "threshold/return": 744.0,
                   "ceiling/return": 745.4}  # fmt: skip
        log_evaluation(client, run, metrics)
        for i, (steps, d) in enumerate(curve, 1):
            client.log_metric(run, "curve/diff_threshold", d, step=i)
            client.log_metric(run, "curve/return", 740.0 + d, step=i)
            client.log_metric(run, "episode_return_mean", 700.0, step=i)
            client.log_metric(run, "env_steps", steps, step=i)
            client.log_metric(run, "wall_time_s", 10.0 * i, step=i)
        client.set_terminated(run)


@pytest.mark.parametrize(("param", "new"), [("replay.kind", "fast"), ("learner.kind", "lean")])
def test_ab_table_pairs_the_sides_seed_by_seed(tmp_path: Path, param: str, new: str) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri, param, new)
    assert report_main(["--experiment", "ab", "--tracking-uri", uri,
                        "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    table = (tmp_path / "out" / "results.md").read_text()
    # final: fast − rllib per seed = 0.25, −0.10, 0.40
    per_seed = np.array([0.25, -0.10, 0.40])
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / np.sqrt(3)
    # env steps: fast 40,000 / 36,000 / 27,000 (mean 34,333), rllib 13,000 / 12,000 / 9,500
    # (mean 11,500); ratios 3.077, 3.0, 2.842 → 2.97×
    # curve where rllib stopped: fast at ≤ 13,000 → −3.0 (step 10,000), ≤ 12,000 → −2.0,
    # ≤ 9,500 → −4.0; rllib's last −1.5, −0.4, −2.0; differences −1.5, −1.6, −2.0
    curve = np.array([-1.5, -1.6, -2.0])
    curve_half = stats.t.ppf(0.975, 2) * curve.std(ddof=1) / np.sqrt(3)
    row = (
        f"| SAC | default | 3 | {per_seed.mean():+.2f} ± {half:.2f} | 34,333 / 11,500 (2.97×) "
        f"| -3.00, -1.30, {curve.mean():+.2f} ± {curve_half:.2f} |"
    )
    assert row in table, table
    assert f"| {new} − rllib, final Δ vs threshold" in table
    assert f"| SAC | {param}={new}" not in table  # the setting column says kind=<new>
    assert f"| SAC | kind={new} | 3 |" in table and "| SAC | kind=rllib | 3 |" in table
