"""Scale-out on this machine: a sweep on a loopback Ray cluster of K one-CPU workers.

    python -m dnt_rllib.bench.scale_out --config tune_configs/scale_out.yaml --workers 1 2

For each K: a head with no CPU (as ``cluster/*.yaml`` ship it) and K worker nodes of one CPU
(``ray.cluster_utils.Cluster``, all on 127.0.0.1), then the real ``tune`` command with
``--address``, its storage and twin cache in a fresh ``DNT_SHARED_STORAGE`` folder (so each
run trains its twin and plays its fits and references again). Prints ``tune --plan``'s
prediction for K nodes of one CPU before each run, then the measured wall time, trials per
hour and measured / predicted. The nodes share this machine's cores: run it on a machine
doing nothing else, with at least K + 1 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dnt_rllib.experiment.schema import load_experiment
from dnt_rllib.shared_storage import SHARED_STORAGE_ENV
from dnt_rllib.tuning.plan import describe, make_plan


def run(config: Path, workers: int, root: Path) -> tuple[float, float, int]:
    """(measured wall s, predicted wall s, trials) of ``config`` on ``workers`` nodes."""
    import ray
    import ray._common.utils
    import ray._private.utils
    from ray.cluster_utils import Cluster

    # Other Ray instances may run on this machine: never point their ``ray.init()`` at ours.
    ray._private.utils.write_ray_address = lambda *args, **kwargs: None
    ray._common.utils.reset_ray_address = lambda *args, **kwargs: None
    shared = root / f"shared_{workers}"
    os.environ[SHARED_STORAGE_ENV] = str(shared)  # the plan reads the same (empty) cache
    exp = load_experiment(config)
    plan = make_plan(exp, workers, 1)
    print(describe(plan, exp), flush=True)
    node = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    head = {**node, "num_cpus": 0, "temp_dir": str(root / "ray")}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        for _ in range(workers):
            cluster.add_node(**node, num_cpus=1)
        cluster.wait_for_nodes()
        env = {**os.environ, "RAY_ADDRESS": "", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "MLFLOW_TRACKING_URI": f"sqlite:///{root / f'mlflow_{workers}.db'}"}  # fmt: skip
        command = [sys.executable, "-m", "dnt_rllib.tune", "--config", str(config),
                   "--address", cluster.address]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, cwd=root, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"tune exited {done.returncode} on {workers} worker node(s)")
    finally:
        cluster.shutdown()
    return wall, plan.wall_s, plan.trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dnt_rllib.bench.scale_out",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="the sweep's YAML")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="node counts")
    args = parser.parse_args(argv)
    config = args.config.resolve()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnt-scale-", dir="/tmp") as tmp:  # short paths
        for workers in args.workers:
            wall, predicted, trials = run(config, workers, Path(tmp))
            rows.append((workers, trials, wall, predicted))
    print("\n| worker nodes (1 CPU) | trials | wall | trials per hour | predicted | measured "
          "/ predicted |\n|---|---|---|---|---|---|")  # fmt: skip
    for workers, trials, wall, predicted in rows:
        print(f"| {workers} | {trials} | {wall / 60:.1f} min | {trials / wall * 3600:.1f} | "
              f"{predicted / 60:.1f} min | {wall / predicted:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
