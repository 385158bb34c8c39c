"""Train SAC / DQN / PPO with Ray Tune, every trial tracked in MLflow.

    python -m dnt_rllib.tune --config tune_configs/sac.yaml
    python -m dnt_rllib.tune --config tune_configs/paper_compare.yaml --resume
    python -m dnt_rllib.tune --config tune_configs/sweep.yaml --address auto   # a Ray cluster
    python -m dnt_rllib.tune --config tune_configs/sweep.yaml --plan --nodes 8 --cpus 16

The YAML is validated before Ray starts (schema: ``dnt_rllib/experiment/schema.py``). The
GRU twins the experiment needs are trained first (once, cached), then the threshold rule of
every network is fitted and the references (baselines, threshold, ceiling) are played on its
curve and evaluation episodes, in parallel as Ray tasks (once, cached). Each trial reports per
iteration and ends with an evaluation against the baselines; the best checkpoint of every
trial is tagged on its MLflow run. Open the results with ``mlflow ui --backend-store-uri
sqlite:///mlflow.db`` and ``python -m dnt_rllib.report --experiment NAME``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from dnt_rllib import cli
from dnt_rllib.experiment.schema import load_experiment, storage_path
from dnt_rllib.tuning.checks import (
    PROBE_S,
    check_address,
    check_resources,
    check_rllib,
    local_resources,
)
from dnt_rllib.tuning.cluster_storage import check_cluster_storage
from dnt_rllib.tuning.driver import INTERRUPTED, run, start_ray
from dnt_rllib.tuning.plan import describe, make_plan
from dnt_rllib.tuning.prepare import pretrain_twins
from dnt_rllib.tuning.state import (
    check_exists,
    check_resume_config,
    experiment_path,
    lock_experiment,
    save_started,
)
from dnt_rllib.twin.cache import check_cache_dir
from dnt_rllib.validation import Range, check_int, check_tracking_uri


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.tune", __doc__)
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted experiment of this config from its checkpoints",
    )
    parser.add_argument(
        "--storage-path",
        help="override the YAML's storage_path (default: the YAML's, else "
        "$DNT_SHARED_STORAGE/ray_results where set, else ray_results)",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the sweep's trials, rounds, CPU-hours and wall time on --nodes nodes of "
        "--cpus CPUs, from measured parts, and start nothing",
    )
    parser.add_argument("--nodes", type=int, default=1, help="--plan: worker nodes (1..10000)")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 1, help="--plan: CPUs per node (1..1024)"
    )
    args = parser.parse_args(argv)
    from dnt_rllib.rllib_ext.quiet import quiet_ray_logs

    quiet_ray_logs()
    try:
        exp = load_experiment(args.config)
        if args.storage_path:
            exp = dataclasses.replace(exp, storage_path=storage_path(args.storage_path))
        check_rllib(exp)
        check_cache_dir(exp.env)
        if args.plan:
            check_int("--nodes", "", args.nodes, Range(1, 10_000))
            check_int("--cpus", "", args.cpus, Range(1, 1024))
            print(describe(make_plan(exp, args.nodes, args.cpus), exp))
            return 0
        check_address(args.address or None)
        if args.address:  # a cluster: its storage must be shared, before any work
            start_ray(args.address)
            check_cluster_storage(exp)
        else:
            check_resources(exp, local_resources(), "this machine")
        check_tracking_uri(
            exp.tracking_uri, "experiment.mlflow.tracking_uri", write=True, probe_s=PROBE_S
        )
        from ray import tune

        check_exists(exp, args.resume, tune.Tuner.can_restore(experiment_path(exp)))
        note = check_resume_config(exp) if args.resume else None
        if note:
            print(note, file=sys.stderr)
        pretrain_twins(exp)
        lock = lock_experiment(exp)  # two identical commands never share the folder
        # the folder again, now that no other `tune` can write it
        check_exists(exp, args.resume, tune.Tuner.can_restore(experiment_path(exp)))
        if not args.resume:
            save_started(exp)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C) before training started", file=sys.stderr)
        return INTERRUPTED
    except cli.REFUSED as err:
        return cli.refuse(err)
    try:
        return run(exp, args.resume, args.address or None)
    except KeyboardInterrupt:  # a second Ctrl-C: Tune did not finish saving
        print(
            "error: interrupted twice (Ctrl-C): stopped at once; --resume continues from the "
            "last saved state",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        if lock is not None:
            lock.release()


if __name__ == "__main__":
    sys.exit(main())
