"""Figures and tables from an MLflow experiment written by ``python -m dnt_rllib.tune``.

    python -m dnt_rllib.report --experiment compare            # → reports/compare/
    python -m dnt_rllib.report --experiment sweep --tracking-uri http://127.0.0.1:5000

Writes, from the logged runs only (nothing typed in):
- ``fig3_reward.png``: the paper's Fig. 3 — training return against env steps for each
  algorithm (mean over seeds, 95 % band when there are ≥ 2 seeds), baselines as lines;
- ``tradeoff_front.png``: mean sum rate against mean sync gap per ε and algorithm, with the
  baselines (when the experiment varies ε);
- ``sweep_<field>.png``: final return against each swept field (ε, γ, N, U);
- ``results.md``: the table of final returns, SAC's improvement over DQN and the paper's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
from scipy import stats

from dnt_rllib.validation import ConfigError

PAPER_IMPROVEMENT = 10.31  # % (§IV, SAC over DQN)
SWEEP_FIELDS = ("env.epsilon", "env.delay_bound", "env.num_rbs", "env.num_users")
BASELINES = ("never", "always", "best_periodic", "greedy")
CURVE_POINTS = 60


@dataclass
class Run:
    """What the report needs of one MLflow run (one Tune trial)."""

    algorithm: str
    seed: str
    params: dict[str, str]
    metrics: dict[str, float]
    steps: np.ndarray  # env steps per iteration
    returns: np.ndarray  # training return
    wall: np.ndarray  # training wall time [s]

    def first_reaching(self, level: float) -> tuple[float, float] | None:
        """(env steps, wall s) when the training return first reached ``level``, or None."""
        hits = np.flatnonzero(self.returns >= level)
        return (float(self.steps[hits[0]]), float(self.wall[hits[0]])) if len(hits) else None


def load_runs(client: mlflow.MlflowClient, experiment: str) -> list[Run]:
    """Every finished run of ``experiment`` with its training curve."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments()))
        raise ConfigError(f"--experiment {experiment!r}: no such MLflow experiment; have: {names}")
    runs = []
    for r in client.search_runs([exp.experiment_id], max_results=10_000):
        if "algorithm" not in r.data.tags:
            continue
        curve = {
            m.step: m.value for m in client.get_metric_history(r.info.run_id, "episode_return_mean")
        }
        steps = {m.step: m.value for m in client.get_metric_history(r.info.run_id, "env_steps")}
        wall = {m.step: m.value for m in client.get_metric_history(r.info.run_id, "wall_time_s")}
        common = sorted(set(curve) & set(steps) & set(wall))
        runs.append(
            Run(
                algorithm=r.data.tags["algorithm"],
                seed=r.data.params.get("seed", "?"),
                params=dict(r.data.params),
                metrics=dict(r.data.metrics),
                steps=np.array([steps[i] for i in common]),
                returns=np.array([curve[i] for i in common]),
                wall=np.array([wall[i] for i in common]),
            )
        )
    if not runs:
        raise ConfigError(f"--experiment {experiment!r}: holds no dnt_rllib runs")
    return runs


def varying(runs: list[Run]) -> list[str]:
    """The swept params: env fields that differ between runs, and other params that differ
    between runs of the same algorithm (not merely between SAC's and DQN's settings)."""
    keys = set().union(*(r.params for r in runs)) - {"algorithm", "seed"}
    by_algo: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_algo[r.algorithm].append(r)

    def differs(key: str, members: list[Run]) -> bool:
        return len({r.params.get(key) for r in members}) > 1

    return sorted(
        k
        for k in keys
        if (k.startswith("env.") and differs(k, runs))
        or any(differs(k, members) for members in by_algo.values())
    )


def setting_of(run: Run, keys: list[str]) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={run.params.get(k)}" for k in keys) or "default"


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95 % t-interval half-width (nan with fewer than two values)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), float("nan")
    return float(a.mean()), float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))


def group(runs: list[Run], keys: list[str]) -> dict[tuple[str, str], list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in runs:
        groups[(r.algorithm, setting_of(r, keys))].append(r)
    return dict(sorted(groups.items()))


def save(fig: plt.Figure, ax: plt.Axes, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Label, grid and legend an axis, write the figure as PNG and close it."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fig3(runs: list[Run], keys: list[str], out: Path, notes: list[str]) -> Path:
    """Training return vs env steps, mean ± 95 % band over seeds, baselines as lines."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (algo, setting), members in group(runs, keys).items():
        members = [m for m in members if len(m.steps)]
        if not members:
            continue
        end = min(m.steps[-1] for m in members)
        grid = np.linspace(min(m.steps[0] for m in members), end, CURVE_POINTS)
        curves = np.array([np.interp(grid, m.steps, m.returns) for m in members])
        label = algo if setting == "default" else f"{algo} ({setting})"
        line = ax.plot(grid, curves.mean(axis=0), label=f"{label}, {len(members)} seed(s)")[0]
        if len(members) >= 2:
            half = (
                stats.t.ppf(0.975, len(members) - 1)
                * curves.std(axis=0, ddof=1)
                / np.sqrt(len(members))
            )
            ax.fill_between(
                grid,
                curves.mean(0) - half,
                curves.mean(0) + half,
                color=line.get_color(),
                alpha=0.2,
            )
        else:
            notes.append(f"{label}: 1 seed — a confidence band cannot be drawn")
    styles = dict(zip(BASELINES, (":", "--", "-.", (0, (5, 1))), strict=True))
    colours = dict(zip(BASELINES, ("tab:red", "tab:purple", "tab:brown", "black"), strict=True))
    for name in BASELINES:
        values = [r.metrics.get(f"eval/{name}/mean_return") for r in runs]
        values = [v for v in values if v is not None]
        if values and not keys:
            ax.axhline(
                float(np.mean(values)),
                color=colours[name],
                linestyle=styles[name],
                label=f"{name.replace('_', ' ')} (eval)",
            )
    return save(
        fig,
        ax,
        out / "fig3_reward.png",
        "Reward during training (cf. paper Fig. 3)",
        "env steps",
        "average episode reward",
    )


def plot_front(runs: list[Run], out: Path) -> Path | None:
    """Mean sum rate vs mean sync gap per ε: the learned policies and the baselines."""
    eps_values = sorted({r.params.get("env.epsilon") for r in runs}, key=float)
    if len(eps_values) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label in [*sorted({r.algorithm for r in runs}), *BASELINES]:
        xs, ys, names = [], [], []
        for eps in eps_values:
            chosen = [
                r
                for r in runs
                if r.params.get("env.epsilon") == eps
                and (label in BASELINES or r.algorithm == label)
            ]
            key = "policy" if label not in BASELINES else label
            gap = [
                r.metrics[f"eval/{key}/sync_gap"]
                for r in chosen
                if f"eval/{key}/sync_gap" in r.metrics
            ]
            rate = [
                r.metrics[f"eval/{key}/sum_rate"]
                for r in chosen
                if f"eval/{key}/sum_rate" in r.metrics
            ]
            if gap and rate:
                xs.append(np.mean(gap))
                ys.append(np.mean(rate))
                names.append(eps)
        if xs:
            marker = "o" if label not in BASELINES else "x"
            ax.plot(
                xs,
                ys,
                marker=marker,
                linestyle="-" if marker == "o" else ":",
                label=label.replace("_", " "),
            )
            at: dict[tuple[float, float], list[str]] = defaultdict(list)
            for x, y, eps in zip(xs, ys, names, strict=True):
                at[(x, y)].append(eps)  # never / always do not depend on ε: one label
            for (x, y), values in at.items():
                ax.annotate(
                    f"ε={', '.join(values)}",
                    (x, y),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    ax.set_xscale("symlog", linthresh=1.0)
    return save(
        fig,
        ax,
        out / "tradeoff_front.png",
        "Trade-off front over ε (final evaluation)",
        "mean sync gap ‖s − s'‖² per slot",
        "mean sum rate Σ c per slot",
    )


def plot_sweeps(runs: list[Run], out: Path) -> list[Path]:
    """Final return against each swept field, per algorithm, with the greedy baseline."""
    paths = []
    for key in SWEEP_FIELDS:
        values = sorted({r.params.get(key) for r in runs if key in r.params}, key=float)
        if len(values) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for label in [*sorted({r.algorithm for r in runs}), "greedy"]:
            metric = "eval/greedy/mean_return" if label == "greedy" else "eval/policy/mean_return"
            xs, ys, errs = [], [], []
            for v in values:
                chosen = [
                    r.metrics[metric]
                    for r in runs
                    if r.params.get(key) == v
                    and (label == "greedy" or r.algorithm == label)
                    and metric in r.metrics
                ]
                if chosen:
                    mean, ci = mean_ci(chosen)
                    xs.append(float(v))
                    ys.append(mean)
                    errs.append(0.0 if np.isnan(ci) else ci)
            if xs:
                ax.errorbar(
                    xs,
                    ys,
                    yerr=errs,
                    marker="o",
                    capsize=3,
                    label=label,
                    linestyle=":" if label == "greedy" else "-",
                )
        name = key.split(".", 1)[1]
        paths.append(
            save(
                fig,
                ax,
                out / f"sweep_{name}.png",
                f"Final return vs {name}",
                name,
                "final return (eval)",
            )
        )
    return paths


def results_table(runs: list[Run], keys: list[str]) -> str:
    """Markdown: final evaluation per algorithm and setting, SAC vs DQN, baselines."""
    lines = [
        "| algorithm | setting | seeds | final return (95% CI) | sum rate | sync gap | sync frac "
        "| reached greedy: seeds, env steps, wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    finals: dict[str, dict[str, float]] = defaultdict(dict)
    for (algo, setting), members in group(runs, keys).items():
        ret, ci = mean_ci([m.metrics.get("eval/policy/mean_return", np.nan) for m in members])
        finals[setting][algo] = ret
        cols = [
            np.mean([m.metrics.get(f"eval/policy/{k}", np.nan) for m in members])
            for k in ("sum_rate", "sync_gap", "sync_fraction")
        ]
        ci_text = "n/a (1 seed)" if np.isnan(ci) else f"{ci:.2f}"
        hits = [
            hit
            for m in members
            if "eval/greedy/mean_return" in m.metrics
            and (hit := m.first_reaching(m.metrics["eval/greedy/mean_return"])) is not None
        ]
        when = f"{len(hits)}/{len(members)}"
        if hits:
            when += f", {np.mean([h[0] for h in hits]):,.0f}, {np.mean([h[1] for h in hits]):,.0f}"
        lines.append(
            f"| {algo} | {setting} | {len(members)} | {ret:.2f} ± {ci_text} | "
            f"{cols[0]:.3f} | {cols[1]:.2f} | {cols[2]:.3f} | {when} |"
        )
    for setting in sorted({setting_of(r, keys) for r in runs}):
        chosen = [r for r in runs if setting_of(r, keys) == setting]
        for name in BASELINES:
            vals = [r.metrics.get(f"eval/{name}/mean_return") for r in chosen]
            vals = [v for v in vals if v is not None]
            if vals:
                extra = [
                    np.mean([r.metrics.get(f"eval/{name}/{k}", np.nan) for r in chosen])
                    for k in ("sum_rate", "sync_gap", "sync_fraction")
                ]
                lines.append(
                    f"| baseline: {name.replace('_', ' ')} | {setting} | – | "
                    f"{np.mean(vals):.2f} | {extra[0]:.3f} | {extra[1]:.2f} | "
                    f"{extra[2]:.3f} | – |"
                )
    lines += [
        "",
        "Final return: the greedy trained policy on the evaluation episodes (the baselines ran "
        "on the same ones). Reached greedy: the first iteration whose training return (RLlib's "
        "100-episode mean, with exploration) was at least greedy's evaluation return; env "
        "steps and wall seconds are means over the seeds that reached it.",
        "",
        "| setting | SAC over DQN (final return) | paper |",
        "|---|---|---|",
    ]
    for setting, by_algo in sorted(finals.items()):
        if "SAC" in by_algo and "DQN" in by_algo:
            gain = 100.0 * (by_algo["SAC"] - by_algo["DQN"]) / abs(by_algo["DQN"])
            lines.append(f"| {setting} | {gain:+.2f} % | +{PAPER_IMPROVEMENT} % |")
    return "\n".join(lines) + "\n"


def write_report(experiment: str, tracking_uri: str, out: Path) -> tuple[list[Path], list[str]]:
    """Write every figure and the table; return the files and the notes printed."""
    runs = load_runs(mlflow.MlflowClient(tracking_uri), experiment)
    out.mkdir(parents=True, exist_ok=True)
    keys = varying(runs)
    notes: list[str] = []
    files = [plot_fig3(runs, keys, out, notes)]
    front = plot_front(runs, out)
    if front is None:
        notes.append("ε is not varied in this experiment: no trade-off front")
    else:
        files.append(front)
    files += plot_sweeps(runs, out)
    table = results_table(runs, keys)
    body = f"# Experiment `{experiment}`: {len(runs)} runs\n\n{table}"
    if notes:
        body += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    (out / "results.md").write_text(body)
    files.append(out / "results.md")
    return files, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnt_rllib.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default reports/EXPERIMENT)")
    args = parser.parse_args(argv)
    uri = args.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        print(f"error: --tracking-uri {uri}: no such MLflow store", file=sys.stderr)
        return 2
    try:
        files, notes = write_report(
            args.experiment, uri, args.out or Path("reports") / args.experiment
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    print((files[-1]).read_text())
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
