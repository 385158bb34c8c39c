"""Silence Ray's known-harmless log lines so Tune's progress table stays readable.

Called in the Tune driver, in every trial (the trial's lines reach the driver through
``log_to_driver``) and where ``evaluate`` rebuilds a policy: the per-checkpoint
"Checkpoint successfully created" INFO line, RLlib's "You are running SAC on the new API
stack!" notice and its deprecation notice about ``RLModule(config=...)`` (raised by RLlib's
own SAC/DQN modules, nothing this package can change), "Install gputil", the note that the
local Ray instance uses token authentication, and Tune's "snapshotting has been triggered
multiple times" (trials that report within 5 s of each other). Other warnings
of those loggers still show. Tune's TensorBoard hint goes with its TensorBoard logger (see
``tune.run``: MLflow tracks the runs).
"""

from __future__ import annotations

import logging

#: logger name → the message fragments dropped from it.
QUIET = {
    "ray.train._internal.storage": ("Checkpoint successfully created",),
    "ray.train.v2._internal.execution.storage": ("Checkpoint successfully created",),
    "ray.rllib.algorithms.algorithm_config": ("on the new API stack",),
    "ray.rllib.algorithms.sac.sac": ("on the new API stack",),
    "ray.rllib.algorithms.dqn.dqn": ("on the new API stack",),
    "ray._common.deprecation": ("RLModule(config=[RLModuleConfig object])",),
    "ray.tune.utils.util": ("Install gputil for GPU system monitoring",),
    # a local instance started by `tune`: the token it made stays on this machine
    "ray._private.authentication.authentication_token_setup": (
        "Token authentication is enabled for this Ray cluster",
    ),
    # two trials reporting in the same seconds; Tune's state is still saved every time
    "ray.tune.execution.experiment_state": ("Experiment state snapshotting has been triggered",),
}


class _Drop(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


def quiet_ray_logs() -> None:
    """Install the filters (once per logger)."""
    for name, fragments in QUIET.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop(fragments))
