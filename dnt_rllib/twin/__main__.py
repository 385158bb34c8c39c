"""Command line of the GRU twin: pretrain it into the cache, and evaluate it (Fig. 2).

The twin is the config's: the joint GRU (``twin: gru``, also for a 'hold' config) or the
shared cell (``twin: gru_shared``).

    python -m dnt_rllib.twin train    [--config cfg.yaml] [--out DIR] [--cache-dir DIR] [--force]
    python -m dnt_rllib.twin evaluate [--config cfg.yaml] [--out DIR] [--episodes 1000] [--seed 0]

``train`` makes sure the cache holds the twin for the config (training it if missing, or
again with ``--force``) and, with ``--out``, copies the checkpoint and its training log
there. ``evaluate`` loads (or trains) the twin, prints the per-user one-step table against
the Bayes-optimal error of the config's mobility model (random walk or Gauss–Markov), the
hold-last twin's error and the k-step rollout table, and writes
``fig2.png``, ``evaluation.json`` and ``evaluation.txt`` to ``--out``. A bad ``--config``
prints one line and exits with code 2 before anything is written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from dnt_rllib import cli
from dnt_rllib.common import first_line
from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.twin.checkpoint import TwinCheckpointError, load_checkpoint
from dnt_rllib.validation import Range, check_int, check_output

EXIT_BAD_CONFIG = 2
EXIT_BAD_CHECKPOINT = 1


def load_config(path: str | None) -> SystemConfig:
    """The config from a YAML mapping of SystemConfig fields (safe loader), or the defaults."""
    if path is None:
        return SystemConfig()
    return SystemConfig.from_yaml(path)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("dnt_rllib.twin", "Pretrain and evaluate the GRU twin.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML file of SystemConfig fields (default: Table I)")
    common.add_argument(
        "--cache-dir", help="twin cache folder (default: the config's twin_cache_dir)"
    )
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    train = sub.add_parser("train", parents=[common], help="train the twin into the cache")
    train.add_argument("--out", help="also copy the checkpoint and training log here")
    train.add_argument("--force", action="store_true", help="retrain even if cached")
    ev = sub.add_parser("evaluate", parents=[common], help="Bayes-optimal comparison, Fig. 2")
    ev.add_argument("--out", default="reports/twin", help="output folder (default: %(default)s)")
    ev.add_argument("--episodes", type=int, default=1000, help="fresh evaluation trajectories")
    ev.add_argument("--seed", type=int, default=0, help="seed of the evaluation trajectories")
    ev.add_argument("--checkpoint", help="evaluate this checkpoint file instead of the cache's")
    return parser


def run_train(args: argparse.Namespace, config: SystemConfig) -> int:
    from dnt_rllib.twin.cache import ensure_checkpoint

    path, result = ensure_checkpoint(
        config, args.cache_dir, progress=not args.quiet, force=args.force
    )
    ckpt = load_checkpoint(path, config, check_training=True)
    info = ckpt.meta["training"]
    status = "trained" if result is not None else "already cached"
    kind = "shared GRU twin" if ckpt.kind == "gru_shared" else "GRU twin"
    print(f"{kind} {status}: {path}")
    print(
        f"  best epoch {info['best_epoch']} of {info['epochs_run']}, "
        f"{info['seconds']:.1f} s; validation eq. (11) loss {info['val_loss']:.5f} "
        f"(hold-last {info['hold_val_loss']:.5f}), normalised displacement units"
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / "twin.pt")
        log = {"checkpoint": str(path), "meta": ckpt.meta}
        if result is not None:
            log["history"] = result.history
        (out / "training.json").write_text(json.dumps(log, indent=2))
        print(f"  copied to {out / 'twin.pt'}, log {out / 'training.json'}")
    return 0


def run_evaluate(args: argparse.Namespace, config: SystemConfig) -> int:
    from dnt_rllib.twin.accuracy import evaluate_twin, format_report, plot_fig2

    if config.mobility_model == "gauss_markov" and config.history < 2:  # before any training
        print(
            f"error: history = {config.history}: the Gauss–Markov Bayes references read the "
            "velocity from the last two states; give history >= 2",
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    if args.checkpoint:
        twin = load_checkpoint(args.checkpoint, config).twin()
    else:
        from dnt_rllib.twin.cache import load_or_train

        twin = load_or_train(config, args.cache_dir, progress=not args.quiet)
    ev, trajectories = evaluate_twin(twin, config, args.episodes, args.seed)
    report = format_report(ev)
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_fig2(twin, config, ev, trajectories[0, : config.episode_length], out / "fig2.png")
    (out / "evaluation.txt").write_text(report + "\n")
    (out / "evaluation.json").write_text(
        json.dumps({"config": config.to_dict(), **ev.to_dict()}, indent=2, default=_json_default)
    )
    print(f"\nwrote {fig}, {out / 'evaluation.json'}, {out / 'evaluation.txt'}")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        if args.cache_dir is not None:
            check_output(args.cache_dir, "--cache-dir", folder=True)
        else:
            check_cache_dir(config)
        if args.out:
            check_output(args.out, "--out", folder=True)
        if args.command == "evaluate":
            check_int("--episodes", "", args.episodes, Range(1, 1_000_000))
            check_int("--seed", "", args.seed, Range(0, None))
        if config.episode_length <= config.history:
            from dnt_rllib.twin.data import training_data

            training_data(config)  # raises the one-line ConfigError
    except OSError as exc:
        print(f"error: cannot read --config {args.config}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except Exception as exc:  # ConfigError, YAML syntax, not a mapping: one line, nothing written
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        if args.command == "train":
            return run_train(args, config)
        return run_evaluate(args, config)
    except TwinCheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CHECKPOINT


if __name__ == "__main__":
    sys.exit(main())
