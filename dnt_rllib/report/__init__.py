r"""Figures and tables from an MLflow experiment written by ``python -m dnt_rllib.tune``.

    python -m dnt_rllib.report --experiment paper_compare      # → reports/paper_compare/
    python -m dnt_rllib.report --experiment sweep --tracking-uri http://127.0.0.1:5000

Writes, from the logged runs only (nothing typed in):
- ``fig3_reward.png``: the paper's Fig. 3 — (a) the deterministic policy's return on the
  fixed learning-curve episodes against env steps (mean over seeds, 95 % band with ≥ 2
  seeds), with threshold, best periodic, greedy and ceiling on the same episodes as lines;
  (b) the exploring training return;
- ``tradeoff_front.png``: mean sum rate against mean sync gap per ε and algorithm, with the
  baselines (when the experiment varies ε);
- ``sweep_<field>.png``: final return against each swept field (ε, γ, N, U);
- ``sweep_heatmaps.png`` (when the experiment varies N and/or U; one per algorithm with
  several): a row per value of the other swept fields (e.g. γ) and five annotated heatmaps
  over N (rows) and U (columns), each column on one colour scale: the learned policy − the
  threshold rule fitted for that cell, paired on the same episodes (diverging colours
  centred on 0: blue where learning pays, red where the rule is better), the room above
  the rule (ceiling − threshold), the share of never → ceiling the learned policy closes,
  and the sync fraction of the learned policy and of the rule; a cell with several seeds
  also shows their 95 % CI and count;
- ``settings.png`` (when an env field with named values is swept, e.g. the networks of
  ``interference_model`` × ``mobility_model``): per setting the paired difference to the
  threshold rule of each learned seed, their mean and 95 % CI, the ``--reference-json``
  policies (lookahead) and the ceiling, and the sync fraction of each;
- ``results.md``: the learned policies against threshold and ceiling (paired differences,
  share of never → ceiling closed, when they first reached greedy and the rule), and SAC
  against DQN, paired (when the experiment has both); when γ, N or U is swept, first a
  table with one row per grid point (learned return, Δ vs threshold paired, share closed
  and sync fraction of learned and rule, infeasible syncs per episode, best periodic's k
  and Δ, greedy's and ceiling's Δ); then the notes, which are also printed.

A sweep with extra seeds of one point run as a second Tune experiment into the same MLflow
experiment is reported by naming both folders::

    python -m dnt_rllib.report --experiment sweep --tune-experiment ray_results/sweep \
        --tune-experiment ray_results/sweep_default_seeds

Modules: ``runs`` (reading MLflow), ``tables``, ``figures``.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import mlflow

from dnt_rllib import cli
from dnt_rllib.names import PAIRED_REFERENCE_RUNS
from dnt_rllib.report.figures import (
    plot_fig3,
    plot_front,
    plot_settings,
    plot_sweep_heatmaps,
    plot_sweeps,
)
from dnt_rllib.report.runs import load_runs, pair_with_reference, varying
from dnt_rllib.report.tables import grid_table, results_table
from dnt_rllib.validation import ConfigError, check_output, check_tracking_uri, short

__all__ = ["load_runs", "main", "write_report"]


#: Swept fields that give the report its per-grid-point table.
GRID_KEYS = ("env.delay_bound", "env.num_rbs", "env.num_users")
#: Seconds an MLflow server has to accept a connection (MLflow itself retries for minutes).
PROBE_S = 5.0


def write_report(
    experiment: str,
    tracking_uri: str,
    out: Path,
    tune_experiment: str | list[str] | None = None,
    references: list[Path] | None = None,
) -> tuple[list[Path], list[str]]:
    """Write every figure and the table; return the files and the notes (results.md ends
    with them, and `main` prints results.md)."""
    client = mlflow.MlflowClient(tracking_uri)
    runs = load_runs(client, experiment, tune_experiment)
    paired: tuple[str, ...] = ()
    if references:
        paired = tuple(pair_with_reference(client, runs, references, PAIRED_REFERENCE_RUNS))
    if not any(r.status == "FINISHED" for r in runs):
        counts = Counter(r.status for r in runs)
        raise ConfigError(
            f"--experiment {short(experiment)}: no run has finished yet "
            f"({', '.join(f'{n} {status}' for status, n in sorted(counts.items()))}); report "
            "once `tune` has ended, or continue it with --resume"
        )
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
    files += plot_sweep_heatmaps(done, keys, out)
    files += plot_settings(done, keys, out)
    table = results_table(runs, keys, paired)
    body = f"# Experiment `{experiment}`: {len(runs)} runs\n\n"
    if any(k in keys for k in GRID_KEYS):
        body += f"## Grid points\n\n{grid_table(runs, keys)}\n## Every policy per setting\n\n"
    body += table
    if notes:
        body += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    (out / "results.md").write_text(body)
    files.append(out / "results.md")
    return files, notes


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.report", __doc__)
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    parser.add_argument(
        "--tune-experiment",
        action="append",
        help="the Tune experiment folder (storage_path/name) whose runs to report, when the "
        "MLflow experiment holds runs of several; repeat it to pool several (e.g. "
        "ray_results/sweep and ray_results/sweep_default_seeds)",
    )
    parser.add_argument(
        "--reference-json",
        type=Path,
        action="append",
        help="an `evaluate --json` output on the trials' evaluation episodes (e.g. with "
        "--lookahead 16): the learned policies are also paired with its lookahead; repeat "
        "it with one per network when the experiment sweeps the network",
    )
    parser.add_argument("--out", type=Path, help="output folder (default reports/EXPERIMENT)")
    args = parser.parse_args(argv)
    uri = args.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return cli.refuse(f"--tracking-uri {uri}: no such MLflow store")
    try:
        check_tracking_uri(uri, "--tracking-uri", probe_s=PROBE_S)
        out = args.out or Path("reports") / args.experiment
        if args.out is None and (
            Path(args.experiment).name != args.experiment or args.experiment in ("", ".", "..")
        ):
            raise ConfigError(
                f"--experiment {short(args.experiment)}: not one folder name, so "
                "reports/EXPERIMENT would leave reports/; give --out FOLDER"
            )
        check_output(out, "--out", folder=True)
        scope = None
        if args.tune_experiment is not None:
            scope = [
                f if "://" in f else str(Path(f).expanduser().resolve())
                for f in args.tune_experiment
            ]
        files, _notes = write_report(
            args.experiment,
            uri,
            out,
            scope,
            args.reference_json,
        )
    except cli.REFUSED as err:
        return cli.refuse(err)
    print((files[-1]).read_text())  # results.md, its notes at the end
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
