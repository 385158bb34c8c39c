"""Figures and tables from an MLflow experiment written by ``python -m dnt_rllib.tune``.

    python -m dnt_rllib.report --experiment compare            # → reports/compare/
    python -m dnt_rllib.report --experiment sweep --tracking-uri http://127.0.0.1:5000

Writes, from the logged runs only (nothing typed in):
- ``fig3_reward.png``: the paper's Fig. 3 — (a) the deterministic policy's return on the
  fixed learning-curve episodes against env steps (mean over seeds, 95 % band with ≥ 2
  seeds), with threshold, best periodic, greedy and ceiling on the same episodes as lines;
  (b) the exploring training return;
- ``tradeoff_front.png``: mean sum rate against mean sync gap per ε and algorithm, with the
  baselines (when the experiment varies ε);
- ``sweep_<field>.png``: final return against each swept field (ε, γ, N, U);
- ``results.md``: the learned policies against threshold and ceiling (paired differences,
  share of never → ceiling closed, when they first reached greedy and the rule), and SAC
  against DQN, paired.

Modules: ``runs`` (reading MLflow), ``tables``, ``figures``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import mlflow

from dnt_rllib.report.figures import plot_fig3, plot_front, plot_sweeps
from dnt_rllib.report.runs import load_runs, pair_with_reference, varying
from dnt_rllib.report.tables import results_table
from dnt_rllib.validation import ConfigError

__all__ = ["load_runs", "main", "write_report"]


#: The policies of a ``--reference-json`` the learned ones are paired with.
REFERENCE_LABELS = ("lookahead",)


def write_report(
    experiment: str,
    tracking_uri: str,
    out: Path,
    tune_experiment: str | None = None,
    reference: Path | None = None,
) -> tuple[list[Path], list[str]]:
    """Write every figure and the table; return the files and the notes printed."""
    client = mlflow.MlflowClient(tracking_uri)
    runs = load_runs(client, experiment, tune_experiment)
    paired: tuple[str, ...] = ()
    if reference is not None:
        paired = tuple(pair_with_reference(client, runs, reference, REFERENCE_LABELS))
    out.mkdir(parents=True, exist_ok=True)
    done = [r for r in runs if r.finished]
    keys = varying(done or runs)
    notes: list[str] = []
    files = [plot_fig3(done, keys, out, notes)]
    front = plot_front(done, out)
    if front is None:
        notes.append("ε is not varied in this experiment: no trade-off front")
    else:
        files.append(front)
    files += plot_sweeps(done, out)
    table = results_table(runs, keys, paired)
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
    parser.add_argument(
        "--tune-experiment",
        help="the Tune experiment folder (storage_path/name) whose runs to report, when the "
        "MLflow experiment holds runs of several",
    )
    parser.add_argument(
        "--reference-json",
        type=Path,
        help="an `evaluate --json` output on the trials' evaluation episodes (e.g. with "
        "--lookahead 16): the learned policies are also paired with its lookahead",
    )
    parser.add_argument("--out", type=Path, help="output folder (default reports/EXPERIMENT)")
    args = parser.parse_args(argv)
    uri = args.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        print(f"error: --tracking-uri {uri}: no such MLflow store", file=sys.stderr)
        return 2
    try:
        scope = args.tune_experiment
        if scope is not None and "://" not in scope:
            scope = str(Path(scope).expanduser().resolve())
        files, notes = write_report(
            args.experiment,
            uri,
            args.out or Path("reports") / args.experiment,
            scope,
            args.reference_json,
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    print((files[-1]).read_text())
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
