"""The table ``tune`` prints after a run: each trial's final evaluation, its scored
checkpoint (tagged on its MLflow run, and logged as its MLflow model) and where to look."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

from dnt_rllib.common import first_line
from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.names import (
    BEST_CHECKPOINT_TAG,
    SEARCH_METRIC,
    TUNE_TAG,
    eval_key,
    reference_metric,
)
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.tuning.state import experiment_path
from dnt_rllib.validation import ConfigError


def scored_checkpoint(result: Any) -> Path | None:
    """The absolute folder of the trial's final checkpoint: the one its evaluation scored."""
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is None or "://" in str(checkpoint.path):
        return None if checkpoint is None else checkpoint.path
    return Path(checkpoint.path).resolve()


def summarise(results: Any, exp: ExperimentConfig, interrupted: bool = False) -> int:
    """Print each trial's final evaluation, where its scored checkpoint is and how to evaluate
    it again, and tag its MLflow run with that checkpoint (``best_checkpoint``). After an
    ``interrupted`` run, a trial without its evaluation was stopped by the interrupt: it is
    said so, and its MLflow run is marked KILLED."""
    from dnt_rllib.tracking.mlflow_runs import MLflowTracking
    from dnt_rllib.tracking.ui import runs_url, ui_command

    folder = experiment_path(exp)
    tracking = MLflowTracking(exp.tracking_uri, exp.mlflow_experiment, tags={TUNE_TAG: folder})
    lines: list[str] = []

    def say(text: str) -> None:
        print(text)
        lines.append(text)

    failed = 0
    checkpoints: list[tuple[str, Any]] = []
    models: list[tuple[str, str]] = []
    seeds = exp.evaluation.seeds
    say(
        f"\nFinal evaluation on episodes {seeds[0]}–{seeds[-1]}, every "
        "policy on the same ones (the threshold rule was fitted on other episodes):"
    )
    say(
        "| trial | algorithm | seed | policy return | Δ vs threshold (paired 95% CI) "
        "| share never→ceiling | threshold | best periodic | greedy | ceiling |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        if result.error is not None:
            failed += 1
            say(f"| {Path(result.path).name} | failed: {str(result.error).splitlines()[0][:80]} |")
            continue
        m, cfg = result.metrics, result.config
        if not m or not cfg:  # never reported: pending when the experiment ended
            name = Path(result.path).name if result.path else m.get("trial_id", "?")
            say(f"| {name} | not started{'; --resume starts it' if interrupted else ''} |")
            continue
        spec = TrialSpec.from_params(cfg)
        trial = f"| {m['trial_id']} | {spec.algorithm} | {spec.seed} |"
        if eval_key("return") not in m and interrupted:
            tracking.set_status(m["trial_id"], "KILLED")
            say(
                f"{trial} interrupted after "
                f"{m.get('wall_time_s', 0):.0f} s of training; --resume continues it |"
            )
            continue
        if eval_key("return") not in m:  # ASHA or the time budget ended it early
            say(
                f"{trial} stopped after "
                f"{m.get('wall_time_s', 0):.0f} s of training, {SEARCH_METRIC} = "
                f"{m.get(SEARCH_METRIC, float('nan')):+.2f} |"
            )
            continue
        scored = scored_checkpoint(result)
        if scored is not None:
            tracking.set_tag(m["trial_id"], BEST_CHECKPOINT_TAG, str(scored))
            checkpoints.append((m["trial_id"], scored))
            if isinstance(scored, Path):  # a local folder (not s3://…): its MLflow model
                models.append((m["trial_id"], tracking.log_model(m["trial_id"], scored)))

        def value(key: str, m: dict = m) -> float:
            return m.get(key, float("nan"))

        cols = [
            f"{value(eval_key('return')):.2f}",
            f"{value(eval_key('diff_threshold')):+.2f} ± "
            f"{value(eval_key('diff_threshold_ci95')):.2f}",
            f"{100 * value(eval_key('share')):.1f} %",
            *(f"{value(reference_metric(p, eval_key('return'))):.2f}"
              for p in ("threshold", "best_periodic", "greedy", "ceiling")),
        ]  # fmt: skip
        say(f"{trial} " + " | ".join(cols) + " |")
    if checkpoints:
        say("\nTrained policies (the checkpoints scored above):")
        for trial_id, path in checkpoints:
            say(f"  {trial_id}: {path}")
        ref = exp.evaluation.reference
        ref = f" --reference {shlex.quote(ref)}" if ref else ""
        say(
            "Evaluate one again on the same episodes: python -m dnt_rllib.evaluate "
            f"--checkpoint {checkpoints[0][1]} --episodes {exp.evaluation.episodes} "
            f"--seed {exp.evaluation.seed}{ref}"
        )
    if models:
        say(f"MLflow models of the policies (after mlflow.set_tracking_uri("
              f"{exp.tracking_uri!r}), mlflow.pyfunc.load_model(uri).predict(observations) "
              "→ the deterministic policy's actions):")  # fmt: skip
        for trial_id, uri in models:
            say(f"  {trial_id}: {uri}")
    status = "KILLED" if interrupted else "FAILED" if failed else "FINISHED"
    with tempfile.TemporaryDirectory() as tmp:
        figures = report_figures(exp, Path(tmp))
        tracking.finish_parent("\n".join(lines) + "\n", figures, status)
    print(
        f"\nMLflow: {exp.tracking_uri} (experiment {exp.mlflow_experiment!r}: the parent run "
        f"{tracking.parent_id()} holds this experiment's runs, the table above and the "
        f"report's figures); Tune: {folder}"
    )
    params = dict.fromkeys(["algorithm", "seed", *exp.search_space])  # the columns, in order
    tracking.set_results_view(params)
    command = ui_command(exp.tracking_uri)
    print(f"Open the runs: {command}\n  then" if command else "Open the runs:")
    print(
        f"  {runs_url(exp.tracking_uri, tracking.experiment_id)}\n    (every run, trained "
        "and reference, sorted by its final Δ vs threshold)"
    )
    print(
        f"  {runs_url(exp.tracking_uri, tracking.experiment_id, charts=True)}\n    (charts: "
        "the learning curves against the references' lines, the final figures as bars)"
    )
    return 1 if failed else 0


def report_figures(exp: ExperimentConfig, out: Path) -> Path | None:
    """The report's figures of this experiment's runs in ``out`` (``python -m
    dnt_rllib.report``'s), or None, said in one line, when there are none to draw."""
    import mlflow

    from dnt_rllib.report import write_report

    try:
        write_report(exp.mlflow_experiment, exp.tracking_uri, out, experiment_path(exp))
    except (ConfigError, OSError, ValueError, mlflow.exceptions.MlflowException) as err:
        print(f"note: the report's figures are not logged on the parent run: {first_line(err)}")
        return None
    return out
