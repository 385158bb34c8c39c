"""The report's numbers on a store with several seeds, against hand computations."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from scipy import stats

from dnt_rllib.report import main as report_main
from tests.report.store import log_evaluation

#: Per seed: final return, paired difference to threshold, the curve's paired differences.
SEEDS = {
    "SAC": [(757.0, -0.5, [-9.0, -2.0, 0.4]), (758.0, 0.25, [-8.0, 0.1, 0.3]),
            (756.5, -1.0, [-7.0, -3.0, -1.0])],
    "DQN": [(754.0, -3.5, [-9.0, -5.0, -4.0]), (755.5, -2.0, [-6.0, -2.5, -2.0]),
            (753.0, -4.5, [-9.0, -6.0, -5.0])],
}  # fmt: skip
STEPS, WALL = [1000.0, 2000.0, 3000.0], [10.0, 20.0, 30.0]


def write_store(uri: str) -> None:
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("multi")
    for algo, seeds in SEEDS.items():
        for seed, (ret, diff, curve) in enumerate(seeds):
            run = client.create_run(exp, tags={"algorithm": algo}).info.run_id
            client.log_param(run, "seed", seed)
            client.log_param(run, "env.epsilon", 0.987)
            metrics = {"policy/return": ret, "policy/diff_threshold": diff,
                       "policy/share": 0.9, "best_periodic/best_period": 4,
                       "threshold/return": ret - diff,
                       "threshold/diff_threshold": 0.0, "ceiling/return": 760.0,
                       "greedy/line": 700.0}  # fmt: skip
            log_evaluation(client, run, metrics)
            for i, (d, step, wall) in enumerate(zip(curve, STEPS, WALL, strict=True), 1):
                client.log_metric(run, "curve/diff_threshold", d, step=i)
                client.log_metric(run, "curve/return", 690.0 + 10 * i, step=i)
                client.log_metric(run, "episode_return_mean", 700.0 + i, step=i)
                client.log_metric(run, "env_steps", step, step=i)
                client.log_metric(run, "wall_time_s", wall, step=i)
            client.set_terminated(run)


def test_table_pairs_seeds_and_algorithms(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_store(uri)
    assert report_main(["--experiment", "multi", "--tracking-uri", uri,
                        "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    table = (tmp_path / "out" / "results.md").read_text()
    sac = [d for _, d, _ in SEEDS["SAC"]]
    dqn = [d for _, d, _ in SEEDS["DQN"]]
    # Δ vs threshold over SAC's seeds: mean −0.417, t(0.975, 2) · sd / √3
    half = stats.t.ppf(0.975, 2) * np.std(sac, ddof=1) / np.sqrt(3)
    assert "| SAC | default | 3 | 757.17 ± " in table
    assert f"| {np.mean(sac):+.2f} ± {half:.2f} |" in table
    # reached threshold: seeds 0 and 1, at iterations 3 and 2 → mean 2,500 steps, 25 s
    assert "| 2/3, 2,500, 25 |" in table
    # reached greedy (curve 700 + 10 i ≥ 700 at the first evaluation) by every seed
    assert "| 3/3, 1,000, 10 |" in table
    low, high = stats.ttest_ind(sac, dqn, equal_var=False).confidence_interval(0.95)
    gain = np.mean(sac) - np.mean(dqn)
    percent = 100 * gain / np.mean([r for r, _, _ in SEEDS["DQN"]])
    assert f"| default | {gain:+.2f} ± {(high - low) / 2:.2f} | {percent:+.2f} % | +10.31 % |" in (
        table
    )
