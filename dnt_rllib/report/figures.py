"""The report's figures: the paper's Fig. 3, the ε trade-off front, the sweep lines."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from dnt_rllib.evaluation import mean_ci95
from dnt_rllib.report.runs import Curve, Run, group

SWEEP_FIELDS = ("env.epsilon", "env.delay_bound", "env.num_rbs", "env.num_users")
BASELINES = ("never", "always", "best_periodic", "greedy", "threshold", "ceiling")
CURVE_POINTS = 60
LINE_STYLES = {
    "ceiling": ("black", "-"),
    "threshold": ("tab:red", "--"),
    "best_periodic": ("tab:brown", "-."),
    "greedy": ("tab:purple", ":"),
    "never": ("tab:gray", ":"),
}


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


def band(ax: plt.Axes, curves: list[Curve], label: str, notes: list[str]) -> None:
    """Mean over seeds against env steps, with the 95 % t-band over seeds (≥ 2 seeds)."""
    curves = [c for c in curves if len(c.steps)]
    if not curves:
        return
    grid = np.linspace(min(c.steps[0] for c in curves), min(c.steps[-1] for c in curves),
                       CURVE_POINTS)  # fmt: skip
    values = np.array([np.interp(grid, c.steps, c.values) for c in curves])
    mean = values.mean(axis=0)
    line = ax.plot(grid, mean, label=f"{label}, {len(curves)} seed(s)")[0]
    if len(curves) >= 2:
        half = stats.t.ppf(0.975, len(curves) - 1) * values.std(axis=0, ddof=1)
        half /= np.sqrt(len(curves))
        ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    else:
        notes.append(f"{label}: 1 seed — a confidence band cannot be drawn")


def plot_fig3(runs: list[Run], keys: list[str], out: Path, notes: list[str]) -> Path:
    """The paper's Fig. 3 in two panels: (a) the deterministic policy on the fixed
    learning-curve episodes, as its paired difference to the threshold rule there, with
    greedy, best periodic and ceiling on the same episodes as lines (threshold = 0);
    (b) RLlib's exploring training return."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 8), sharex=True)
    panel_notes: list[str] = []
    for (algo, setting), members in group(runs, keys).items():
        label = algo if setting == "default" else f"{algo} ({setting})"
        band(top, [m.vs_threshold for m in members], label, panel_notes)
        band(bottom, [m.training for m in members], label, [])
    notes += panel_notes
    if not any(len(m.vs_threshold.steps) for m in runs):
        notes.append("no learning-curve evaluations logged (curve_episodes 0, or an old run)")
    levels = {}
    if not keys:
        for name in ("ceiling", "threshold", "best_periodic", "greedy"):
            values = [m.lines[name] - m.lines["threshold"] for m in runs
                      if name in m.lines and "threshold" in m.lines]  # fmt: skip
            if values:
                levels[name] = float(np.mean(values))
                colour, style = LINE_STYLES[name]
                top.axhline(levels[name], color=colour, linestyle=style,
                            label=name.replace("_", " "))  # fmt: skip
    if levels:  # zoom on the references; early evaluations fall below
        span = max(levels.values()) - min(levels.values())
        top.set_ylim(min(levels.values()) - 2.0 * span, max(levels.values()) + 0.5 * span)
    for name in ("threshold", "greedy"):
        values = [r.metrics.get(f"eval/{name}/mean_return") for r in runs]
        values = [v for v in values if v is not None]
        if values and not keys:
            colour, style = LINE_STYLES[name]
            bottom.axhline(float(np.mean(values)), color=colour, linestyle=style,
                           label=f"{name} (final evaluation)")  # fmt: skip
    top.set_title("(a) deterministic policy on fixed episodes − threshold rule, paired")
    top.set_ylabel("mean return difference to threshold")
    top.legend(fontsize=7, loc="lower right")
    top.grid(alpha=0.3)
    return save(
        fig,
        bottom,
        out / "fig3_reward.png",
        "(b) training return, with exploration (RLlib, last ~100 episodes)",
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
                    mean, ci = mean_ci95(chosen)
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
