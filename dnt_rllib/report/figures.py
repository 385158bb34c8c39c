"""The report's figures: the paper's Fig. 3, the ε trade-off front, the sweep lines, the
sweep's heatmaps over (N, U) and the per-setting comparison of named settings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from dnt_rllib.names import POLICY
from dnt_rllib.report.runs import Curve, Run, group, setting_of
from dnt_rllib.scoring import mean_ci95

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
    # with the reward baseline the learner's return is on another scale than eq. 17's
    shifted = any(r.params.get("reward.baseline") == "True" for r in runs)
    for name in ("threshold", "greedy"):
        values = [r.final(name) for r in runs]
        values = [v for v in values if not np.isnan(v)]
        if values and not keys and not shifted:
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
        "learner's episode reward" + (" (r − ε Σc all RBs, × scale)" if shifted else ""),
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
            key = POLICY if label not in BASELINES else label
            gap = [v for r in chosen if not np.isnan(v := r.final(key, "sync_gap"))]
            rate = [v for r in chosen if not np.isnan(v := r.final(key, "sum_rate"))]
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
            policy = "greedy" if label == "greedy" else POLICY
            xs, ys, errs = [], [], []
            for v in values:
                chosen = [
                    r.final(policy)
                    for r in runs
                    if r.params.get(key) == v
                    and (label == "greedy" or r.algorithm == label)
                    and not np.isnan(r.final(policy))
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


#: The axes of the sweep's heatmaps: rows N, columns U.
HEATMAP_AXES = ("env.num_rbs", "env.num_users")


def _cells(
    runs: list[Run], rows: list[str], cols: list[str], value_of: Callable[[Run], float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the runs of each (N, U) cell, its 95 % CI over seeds (NaN with one) and
    the number of runs; NaN where a cell has none."""
    mean = np.full((len(rows), len(cols)), np.nan)
    ci, count = mean.copy(), np.zeros(mean.shape, dtype=int)
    for i, n in enumerate(rows):
        for j, u in enumerate(cols):
            values = [
                value_of(r)
                for r in runs
                if r.params.get(HEATMAP_AXES[0]) == n and r.params.get(HEATMAP_AXES[1]) == u
            ]
            values = [v for v in values if not np.isnan(v)]
            if values:
                mean[i, j], ci[i, j] = mean_ci95(values)
                count[i, j] = len(values)
    return mean, ci, count


def _heatmap(
    ax: plt.Axes,
    fig: plt.Figure,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray],
    rows: list[str],
    cols: list[str],
    title: str,
    style: dict,
    fmt: str,
) -> None:
    """One annotated heatmap: rows N, columns U; a cell shows its mean, ± its CI and the
    seed count when it has several seeds, '–' when it has no run."""
    mean, ci, count = cells
    image = ax.imshow(np.ma.masked_invalid(mean), aspect="auto", **style)
    fig.colorbar(image, ax=ax, shrink=0.85)
    norm = image.norm
    for i in range(len(rows)):
        for j in range(len(cols)):
            if count[i, j] == 0:
                ax.text(j, i, "–", ha="center", va="center")
                continue
            text = format(mean[i, j], fmt)
            if count[i, j] > 1:
                text += f"\n± {format(ci[i, j], fmt.lstrip('+'))}\n({count[i, j]} seeds)"
            shade = image.cmap(norm(mean[i, j]))
            dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("U (users)")
    ax.set_ylabel("N (RBs)")
    ax.set_title(title, fontsize=9)


def _finite_max(cells: list[np.ndarray], default: float) -> float:
    values = np.concatenate([c[np.isfinite(c)] for c in cells])
    return float(values.max()) if values.size and values.max() > 0 else default


def plot_sweep_heatmaps(runs: list[Run], keys: list[str], out: Path) -> list[Path]:
    """One PNG per algorithm, ``sweep_heatmaps.png`` (``sweep_heatmaps_<algo>.png`` with
    several): a row per value of the other swept keys (γ) and five heatmaps over (N, U),
    each column on one scale for every row: the learned policy's paired difference to the
    threshold rule (diverging, centred on 0: blue where learning pays), the room above the
    rule (ceiling − threshold, paired), the learned policy's share of never → ceiling
    closed, and the sync fraction of the learned policy and of the rule (one scale). None
    when neither N nor U is swept."""
    if not any(k in keys for k in HEATMAP_AXES):
        return []
    panel_keys = [k for k in keys if k not in HEATMAP_AXES]
    rows, cols = (sorted({r.params.get(k, "?") for r in runs}, key=_number) for k in HEATMAP_AXES)
    algorithms = sorted({r.algorithm for r in runs})
    settings = sorted({setting_of(r, panel_keys) for r in runs}, key=_setting_order)
    paths = []
    for algo in algorithms:
        panels = []
        for setting in settings:
            chosen = [
                r for r in runs if setting_of(r, panel_keys) == setting and r.algorithm == algo
            ]
            panels.append((setting, {
                "diff": _cells(chosen, rows, cols, lambda r: r.final("policy", "diff_threshold")),
                "room": _cells(chosen, rows, cols, lambda r: r.final("ceiling", "diff_threshold")),
                "share": _cells(chosen, rows, cols, lambda r: 100 * r.final("policy", "share")),
                "learned": _cells(chosen, rows, cols, lambda r: r.final("policy", "sync_fraction")),
                "rule": _cells(chosen, rows, cols, lambda r: r.final("threshold", "sync_fraction")),
            }))  # fmt: skip
        means = {name: [cells[name][0] for _, cells in panels] for name in panels[0][1]}
        span = _finite_max([np.abs(m) for m in means["diff"]], 1.0)
        room = _finite_max(means["room"], 1.0)
        low_share = 100.0 - _finite_max([100.0 - m for m in means["share"]], 10.0)
        top = _finite_max(means["learned"] + means["rule"], 1.0)
        styles = {
            "diff": ({"cmap": "RdBu", "vmin": -span, "vmax": span}, "+.2f",
                     f"{algo} − threshold, paired (return)"),
            "room": ({"cmap": "magma", "vmin": 0.0, "vmax": room}, "+.2f",
                     "room: ceiling − threshold, paired"),
            "share": ({"cmap": "viridis", "vmin": np.floor(low_share), "vmax": 100.0}, ".1f",
                      f"{algo}: share never→ceiling closed (%)"),
            "learned": ({"cmap": "viridis", "vmin": 0.0, "vmax": top}, ".3f",
                        f"{algo}: sync fraction"),
            "rule": ({"cmap": "viridis", "vmin": 0.0, "vmax": top}, ".3f",
                     "threshold: sync fraction"),
        }  # fmt: skip
        fig, axes = plt.subplots(len(panels), 5, figsize=(21, 3.4 * len(panels)), squeeze=False)
        for axes_row, (setting, cells) in zip(axes, panels, strict=True):
            label = setting.replace("delay_bound", "γ") or "all runs"
            for ax, (name, (style, fmt, title)) in zip(axes_row, styles.items(), strict=True):
                _heatmap(ax, fig, cells[name], rows, cols, f"{label}: {title}", style, fmt)
        fig.suptitle(f"{algo} against the threshold rule per grid point, final evaluation; "
                     "each column on one colour scale", fontsize=11)  # fmt: skip
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.25 / len(panels)))
        name = "sweep_heatmaps" + (f"_{algo}" if len(algorithms) > 1 else "")
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        paths.append(out / f"{name}.png")
    return paths


def _number(value: str) -> tuple[bool, float | str]:
    try:
        return (False, float(value))
    except ValueError:
        return (True, value)


def _setting_order(setting: str) -> list[tuple[bool, float | str]]:
    return [_number(part.split("=", 1)[-1]) for part in setting.split(", ")]


@dataclass
class SettingPoint:
    """One policy at one setting in ``settings.png``: its paired Δ vs threshold (mean, 95 %
    half-width: over seeds for a learned policy, over episodes for a reference JSON's,
    NaN for the ceiling), the learned seeds' own Δs, and its sync fraction."""

    diff: float
    half: float
    seeds: list[float]
    sync: float


def setting_points(runs: list[Run], keys: list[str]) -> dict[str, dict[str, SettingPoint]]:
    """setting → policy → :class:`SettingPoint` for ``settings.png``: the learned
    algorithms, the policies of a reference JSON (``Run.references``), the ceiling and the
    rule; empty when every swept env field is a number."""
    if not any(k.startswith("env.") and _number(r.params[k])[0] for k in keys for r in runs
               if k in r.params):  # fmt: skip
        return {}
    points: dict[str, dict[str, SettingPoint]] = {}
    for setting in sorted({setting_of(r, keys) for r in runs}, key=_setting_order):
        chosen = [r for r in runs if setting_of(r, keys) == setting]
        at = points.setdefault(setting, {})
        for algo in sorted({r.algorithm for r in chosen}):
            members = [r for r in chosen if r.algorithm == algo]
            diffs = [m.final("policy", "diff_threshold") for m in members]
            mean, half = mean_ci95(diffs)
            sync = float(np.mean([m.final("policy", "sync_fraction") for m in members]))
            at[algo] = SettingPoint(mean, half, diffs, sync)
        for label in sorted({label for r in chosen for label in r.references}):
            ref = next(r.references[label] for r in chosen if label in r.references)
            at[label] = SettingPoint(
                ref["diff_threshold"], ref["diff_threshold_ci95"], [], ref["sync_fraction"]
            )
        for name in ("ceiling", "threshold"):
            diff = float(np.mean([r.final(name, "diff_threshold") for r in chosen]))
            sync = float(np.mean([r.final(name, "sync_fraction") for r in chosen]))
            at[name] = SettingPoint(diff, float("nan"), [], sync)
    return points


def plot_settings(runs: list[Run], keys: list[str], out: Path) -> list[Path]:
    """``settings.png`` when an env field with named values is swept (e.g. the networks of
    ``interference_model`` × ``mobility_model``; :func:`setting_points`): (a) per setting
    the paired Δ vs the threshold rule fitted for it — learned seeds as dots with their mean
    and 95 % CI, a reference JSON's policies (e.g. lookahead) with their CI, the ceiling as a
    bar: the room above the rule and how much of it each policy takes; (b) the sync
    fraction of each and of the rule."""
    points = setting_points(runs, keys)
    if not points:
        return []
    series = list(dict.fromkeys(name for at in points.values() for name in at))
    width = 0.8 / len(series)
    fig, (ax_diff, ax_sync) = plt.subplots(1, 2, figsize=(12, 4.6))
    for i, name in enumerate(series):
        color = LINE_STYLES.get(name, (f"C{i}", "-"))[0]
        for j, at in enumerate(points.values()):
            if name not in at:
                continue
            p, x, label = (
                at[name],
                j + (i - (len(series) - 1) / 2) * width,
                name if j == 0 else None,
            )
            if name == "ceiling":
                ax_diff.bar(x, p.diff, width, color=color, alpha=0.25, label=label)
            elif name != "threshold":
                ax_diff.errorbar(x, p.diff, yerr=np.nan_to_num(p.half), fmt="o" if p.seeds else "s",
                                 color=color, capsize=3, label=label)  # fmt: skip
                ax_diff.scatter(np.full(len(p.seeds), x), p.seeds, s=9, color=color, alpha=0.5)
            ax_sync.bar(x, p.sync, width, color=color, label=label)
    names = ["\n".join(part.split("=", 1)[-1] for part in s.split(", ")) for s in points]
    for ax in (ax_diff, ax_sync):
        ax.set_xticks(np.arange(len(points)), names, fontsize=8)
    ax_diff.axhline(0.0, color=LINE_STYLES["threshold"][0], linestyle="--", linewidth=1,
                    label="threshold (0)")  # fmt: skip
    ax_diff.set_title("(a) paired Δ vs the threshold rule fitted per setting")
    ax_diff.set_ylabel("return − threshold's, same episodes")
    ax_diff.legend(fontsize=7, loc="best")
    ax_diff.grid(alpha=0.3)
    fig.suptitle(f"Per setting of {', '.join(k.split('.', 1)[-1] for k in keys)}", fontsize=10)
    return [save(fig, ax_sync, out / "settings.png", "(b) sync fraction", "",
                 "share of slots synced")]  # fmt: skip
