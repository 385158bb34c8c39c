"""The results table: learned policies against the rule to beat and the ceiling, paired."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dnt_rllib.report.runs import Curve, Run, group, setting_of
from dnt_rllib.scoring import difference_ci95, mean_ci95, share_closed

PAPER_IMPROVEMENT = 10.31  # % (§IV, SAC over DQN)
#: Reference rows under the learned ones, best first.
REFERENCES = ("ceiling", "free_sync", "threshold", "best_periodic", "greedy", "always", "never")


def _ci(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _reached(members: list[Run], level_of: Callable[[Run], tuple[float, float] | None]) -> str:
    """'k/n, env steps, wall s': seeds whose learning curve reached the level (means over
    those seeds of when it first did)."""
    hits = [hit for m in members if (hit := level_of(m)) is not None]
    text = f"{len(hits)}/{len(members)}"
    if hits:
        text += f", {np.mean([h[0] for h in hits]):,.0f}, {np.mean([h[1] for h in hits]):,.0f}"
    return text


def _diff_text(per_seed: list[tuple[float, float]]) -> str:
    """Mean paired difference: 95 % CI over seeds, or over episodes with one seed."""
    if len(per_seed) == 1:
        return f"{per_seed[0][0]:+.2f} ± {_ci(per_seed[0][1])} (ep.)"
    diff, ci = mean_ci95([d for d, _ in per_seed])
    return f"{diff:+.2f} ± {_ci(ci)}"


def learned_row(algo: str, setting: str, members: list[Run], paired: tuple[str, ...] = ()) -> str:
    ret, ret_ci = mean_ci95([m.final("policy") for m in members])
    diff_text = _diff_text(
        [(m.final("policy", "diff_threshold"), m.final("policy", "diff_threshold_ci95"))
         for m in members]
    )  # fmt: skip
    for label in paired:
        pairs = [m.paired_with[label] for m in members if label in m.paired_with]
        diff_text += " | " + (_diff_text(pairs) if pairs else "n/a")
    share = np.mean([m.final("policy", "share") for m in members])
    cols = [np.mean([m.final("policy", k) for m in members])
            for k in ("sum_rate", "sync_gap", "sync_fraction")]  # fmt: skip
    greedy = _reached(
        members,
        lambda m: m.evaluation.first_reaching(m.lines["greedy"]) if "greedy" in m.lines else None,
    )
    rule = _reached(members, lambda m: m.vs_threshold.first_reaching(0.0))
    return (
        f"| {algo} | {setting} | {len(members)} | {ret:.2f} ± {_ci(ret_ci)} | {diff_text} | "
        f"{100 * share:.1f} % | {cols[0]:.3f} | {cols[1]:.2f} | {cols[2]:.3f} | {greedy} | "
        f"{rule} |"
    )


def reference_rows(setting: str, chosen: list[Run], paired: tuple[str, ...] = ()) -> list[str]:
    """The references under the learned rows, best first: those of the runs' own evaluation,
    with the policies of a reference JSON (``paired``, e.g. lookahead) after the bounds."""
    rows: dict[str, str] = {}
    for name in REFERENCES:
        values = [r.final(name) for r in chosen if not math.isnan(r.final(name))]
        if not values:
            continue
        label = name.replace("_", " ")
        if name == "best_periodic":
            periods = [r.best_period for r in chosen if r.best_period is not None]
            label += f" (k = {int(np.median(periods))})" if periods else ""
        keys = ("diff_threshold", "share", "sum_rate", "sync_gap", "sync_fraction")
        cols = [_finite_mean([r.final(name, k) for r in chosen]) for k in keys]
        rows[name] = (
            f"| {label} | {setting} | – | {np.mean(values):.2f} | {cols[0]:+.2f} | "
            + "– | " * len(paired)
            + f"{100 * cols[1]:.1f} % | {cols[2]:.3f} | {cols[3]:.2f} | {cols[4]:.3f} | – | – |"
        )
    for i, label in enumerate(paired):
        have = [r for r in chosen if label in r.references]
        if not have:
            continue
        figures = {k: _finite_mean([r.references[label][k] for r in have])
                   for k in have[0].references[label]}  # fmt: skip
        share = _finite_mean(
            [share_closed(r.references[label]["mean_return"], r.final("never"),
                          r.final("ceiling")) for r in have]
        )  # fmt: skip
        own = ["– | "] * len(paired)
        own[i] = "0 | "
        rows[label] = (
            f"| {label} | {setting} | – | {figures['mean_return']:.2f} | "
            f"{figures['diff_threshold']:+.2f} ± {_ci(figures['diff_threshold_ci95'])} (ep.) | "
            + "".join(own)
            + f"{100 * share:.1f} % | {figures['sum_rate']:.3f} | {figures['sync_gap']:.2f} | "
            f"{figures['sync_fraction']:.3f} | – | – |"
        )
    order = [*REFERENCES[:2], *paired, *REFERENCES[2:]]
    return [rows[name] for name in order if name in rows]


def algorithm_gap(by_algo: dict[str, list[Run]]) -> str | None:
    """SAC − DQN: each seed's final evaluation paired with the threshold rule on the shared
    episodes (removes the episodes' own swing), then Welch over the seeds."""
    if "SAC" not in by_algo or "DQN" not in by_algo:
        return None
    sac = [m.final("policy", "diff_threshold") for m in by_algo["SAC"]]
    dqn = [m.final("policy", "diff_threshold") for m in by_algo["DQN"]]
    gain, ci = difference_ci95(sac, dqn)
    base = abs(np.mean([m.final("policy") for m in by_algo["DQN"]]))
    return f"{gain:+.2f} ± {_ci(ci)} | {100 * gain / base:+.2f} %"


#: A/B switches of the same mathematics: the MLflow param, its new and old value, the name.
AB_PARAMS: dict[str, tuple[str, str, str]] = {
    "replay.kind": ("fast", "rllib", "The two replay paths (`replay.kind`)"),
    "learner.kind": ("lean", "rllib", "The two learners (`learner.kind`)"),
}


def _curve_at(curve: Curve, steps: float) -> float:
    """The curve's last value logged at or before ``steps`` env steps (NaN if none)."""
    before = np.flatnonzero(curve.steps <= steps)
    return float(curve.values[before[-1]]) if len(before) else math.nan


def ab_table(runs: list[Run], keys: list[str], param: str) -> str | None:
    """new − old of an :data:`AB_PARAMS` switch (e.g. fast − rllib replay), per algorithm and
    other setting, the same seed on both sides: the final Δ vs threshold (both paired with
    the rule on the same episodes, so their difference is the per-episode new − old mean),
    the env steps each side sampled in its training time, and the learning curve's Δ vs
    threshold at equal env steps (the new run's curve where the old run stopped, against the
    old run's last). 95 % CIs over the seeds' differences. None when ``param`` is not
    searched."""
    if param not in keys:
        return None
    new, old, _ = AB_PARAMS[param]
    others = [k for k in keys if k != param]
    pairs: dict[tuple[str, str], dict[str, dict[str, Run]]] = {}
    for r in runs:
        seeds = pairs.setdefault((r.algorithm, setting_of(r, others)), {})
        seeds.setdefault(r.seed, {})[r.params.get(param, "")] = r
    lines = [
        f"| policy | setting | seeds on both | {new} − {old}, final Δ vs threshold (95% CI "
        f"over seeds) | env steps: {new} / {old} | curve Δ vs threshold at {old}'s last env "
        f"steps: {new}, {old}, {new} − {old} |",
        "|---|---|---|---|---|---|",
    ]
    for (algo, setting), seeds in sorted(pairs.items()):
        both = [(s[new], s[old]) for s in seeds.values() if {new, old} <= s.keys()]
        if not both:
            continue
        final = mean_ci95([f.final("policy", "diff_threshold")
                           - r.final("policy", "diff_threshold") for f, r in both])  # fmt: skip
        steps = [(f.metrics.get("env_steps", math.nan), r.metrics.get("env_steps", math.nan))
                 for f, r in both]  # fmt: skip
        at = [
            (_curve_at(f.vs_threshold, r.vs_threshold.steps[-1]), float(r.vs_threshold.values[-1]))
            for f, r in both
            if len(r.vs_threshold.steps)
        ]
        curve = mean_ci95([a - b for a, b in at]) if at else (math.nan, math.nan)
        lines.append(
            f"| {algo} | {setting} | {len(both)} | {final[0]:+.2f} ± {_ci(final[1])} | "
            f"{np.mean([a for a, _ in steps]):,.0f} / {np.mean([b for _, b in steps]):,.0f} "
            f"({np.mean([a / b for a, b in steps]):.2f}×) | "
            f"{np.mean([a for a, _ in at]):+.2f}, {np.mean([b for _, b in at]):+.2f}, "
            f"{curve[0]:+.2f} ± {_ci(curve[1])} |"
        )
    return "\n".join(lines) + "\n"


def results_table(runs: list[Run], keys: list[str], paired: tuple[str, ...] = ()) -> str:
    """Markdown: learned policies per algorithm and setting, the references below them, and
    SAC against DQN, paired. ``paired``: labels of a reference JSON the learned policies
    were also paired with (``Run.paired_with``), one column each."""
    done = [r for r in runs if r.finished]
    extra = "".join(f" Δ vs {label} (paired) |" for label in paired)
    lines = [
        "| policy | setting | seeds | final return (95% CI over seeds) | Δ vs threshold "
        f"(paired; 95% CI over seeds) |{extra} share never→ceiling | sum rate | sync gap | "
        "sync frac | reached greedy: seeds, env steps, wall s | reached threshold: seeds, "
        "env steps, wall s |",
        "|---|---|---|---|---|" + "---|" * len(paired) + "---|---|---|---|---|---|",
    ]
    gaps: dict[str, dict[str, list[Run]]] = {}
    for (algo, setting), members in group(done, keys).items():
        lines.append(learned_row(algo, setting, members, paired))
        gaps.setdefault(setting, {})[algo] = members
    for setting in sorted({setting_of(r, keys) for r in done}):
        chosen = [r for r in done if setting_of(r, keys) == setting]
        lines += reference_rows(setting, chosen, paired)
    lines += [
        "",
        "Final return: each trained policy's deterministic action (its argmax) on the "
        "evaluation episodes, every reference on the same episodes. Δ vs threshold: the mean "
        "per-episode difference to the fitted threshold rule (the rule to beat); share: of the "
        "range from never to the perfect-foresight ceiling. Reached: the first learning-curve "
        "evaluation (the deterministic policy on fixed episodes) at or above greedy / the "
        "threshold rule (paired mean ≥ 0); env steps and wall seconds of training, means over "
        "the seeds that reached it.",
    ]
    gap_rows = [
        f"| {setting} | {gap} | +{PAPER_IMPROVEMENT} % |"
        for setting, by_algo in sorted(gaps.items())
        if (gap := algorithm_gap(by_algo)) is not None
    ]
    if gap_rows:  # only where a setting has both algorithms: no header without rows
        lines += [
            "",
            "| setting | SAC − DQN (paired on episodes; 95% CI over seeds) | SAC over DQN | "
            "paper |",
            "|---|---|---|---|",
            *gap_rows,
        ]
    for param, (_, _, title) in AB_PARAMS.items():
        table = ab_table(done, keys, param)
        if table is not None:
            lines += ["", f"{title}, seed by seed:", "", table]
    failed = [f"{r.algorithm} seed {r.seed} ({r.status.lower()})" for r in runs if not r.finished]
    if failed:
        lines += ["", "Not in the table (no final evaluation): " + ", ".join(failed) + "."]
    return "\n".join(lines) + "\n"


#: Column titles of the grid keys (the paper's symbols); other keys keep their field name.
SYMBOLS = {"env.delay_bound": "γ", "env.num_rbs": "N", "env.num_users": "U", "env.epsilon": "ε"}


def point_of(run: Run, keys: list[str]) -> tuple[float | str, ...]:
    """The run's grid point: its values of ``keys``, numbers where they parse (for sorting)."""
    out: list[float | str] = []
    for key in keys:
        value = run.params.get(key, "")
        try:
            out.append(float(value))
        except ValueError:
            out.append(value)
    return tuple(out)


def _per_episode(runs: list[Run], label: str) -> float:
    """Mean infeasible sync requests per evaluation episode (NaN when not logged)."""
    values = [
        r.final(label, "infeasible_syncs") / float(r.params["evaluation_episodes"])
        for r in runs
        if "evaluation_episodes" in r.params
    ]
    return _finite_mean(values)


def _num(value: float, fmt: str) -> str:
    return "n/a" if math.isnan(value) else format(value, fmt)


def grid_table(runs: list[Run], keys: list[str]) -> str:
    """Markdown, one row per grid point and algorithm (a sweep's table): the learned policy
    against the threshold rule fitted for that point, paired on the same episodes, the
    share of never → ceiling closed and the sync rates of both, and the other references as
    their paired difference to the rule."""
    done = [r for r in runs if r.finished]
    names = [SYMBOLS.get(k, k.split(".", 1)[-1]) for k in keys]
    lines = [
        "| " + " | ".join(names) + " | algorithm | seeds | return (95% CI over seeds) | "
        "Δ vs threshold (paired) | share never→ceiling: learned / threshold | sync frac: "
        "learned / threshold | infeasible syncs per episode: learned / threshold | threshold "
        "return | best periodic: k, Δ | greedy Δ | ceiling Δ |",
        "|" + "---|" * (len(keys) + 11),
    ]
    points: dict[tuple, dict[str, list[Run]]] = {}
    for r in done:
        points.setdefault(point_of(r, keys), {}).setdefault(r.algorithm, []).append(r)
    for point in sorted(points, key=lambda p: [(isinstance(v, str), v) for v in p]):
        everyone = [r for members in points[point].values() for r in members]
        values = [everyone[0].params.get(k, "?") for k in keys]
        periods = [r.best_period for r in everyone if r.best_period is not None]
        period = f"k = {int(np.median(periods))}" if periods else "k = ?"

        def ref(name: str, key: str = "diff_threshold", runs: list[Run] = everyone) -> float:
            return _finite_mean([r.final(name, key) for r in runs])

        for algo, members in sorted(points[point].items()):
            ret, ret_ci = mean_ci95([m.final("policy") for m in members])
            diff = _diff_text(
                [(m.final("policy", "diff_threshold"), m.final("policy", "diff_threshold_ci95"))
                 for m in members]
            )  # fmt: skip
            share = (
                f"{100 * ref('policy', 'share', members):.1f} / "
                f"{100 * ref('threshold', 'share'):.1f} %"
            )
            sync = (
                f"{ref('policy', 'sync_fraction', members):.3f} / "
                f"{ref('threshold', 'sync_fraction'):.3f}"
            )
            infeasible = (
                f"{_num(_per_episode(members, 'policy'), '.2f')} / "
                f"{_num(_per_episode(everyone, 'threshold'), '.2f')}"
            )
            lines.append(
                f"| {' | '.join(values)} | {algo} | {len(members)} | {ret:.2f} ± {_ci(ret_ci)} | "
                f"{diff} | {share} | {sync} | {infeasible} | "
                f"{ref('threshold', 'return'):.2f} | {period}, "
                f"{ref('best_periodic'):+.2f} | {ref('greedy'):+.2f} | {ref('ceiling'):+.2f} |"
            )
    lines += [
        "",
        "One row per grid point: the learned policy (its deterministic actions, mean over "
        "seeds) and every reference on the same evaluation episodes, the threshold rule fitted "
        "for that point. Δ: the mean per-episode difference to the threshold rule (95 % CI over"
        " seeds, or over episodes with one seed, marked ep.); best periodic, greedy and ceiling"
        " as their paired Δ to the rule. Infeasible syncs: requests no RB could carry within γ "
        "(scored as no sync).",
    ]
    return "\n".join(lines) + "\n"
