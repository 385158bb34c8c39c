"""Checks ``tune`` makes before Ray starts: RLlib's own validation of each algorithm's
config, and the resources a trial needs against what the machine or cluster has."""

from __future__ import annotations

import os
from typing import Any

from dnt_rllib.common import first_line
from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.validation import ConfigError, key_text

#: Seconds an MLflow server or a Ray cluster has to accept a connection before Ray starts.
PROBE_S = 5.0


def check_rllib(exp: ExperimentConfig) -> None:
    """Let RLlib validate each algorithm's config before Ray starts (one line on error)."""
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config
    from dnt_rllib.trial.trained_policy import build_module

    for algo in exp.algorithms:
        spec = exp.trial_spec(algo)
        try:
            build_algorithm_config(spec, RLlibDNTEnv).validate()
        except Exception as err:  # RLlib raises ValueError / TypeError with long texts
            first = first_line(err)
            raise ConfigError(f"experiment.training.{algo}: RLlib refuses it: {first}") from None
        try:  # the policy module itself, as each trial builds it (model values)
            build_module(spec)
        except Exception as err:
            first = first_line(err)
            raise ConfigError(
                f"experiment.model: RLlib cannot build the {algo} module: {first[:200]}"
            ) from None


def trial_resources(exp: ExperimentConfig) -> Any:
    """The placement group of one trial, as RLlib requests it for the trial's algorithm
    (``Algorithm.default_resource_request``): the trial process (1 CPU, and
    ``num_gpus_per_learner`` GPUs when it learns itself, ``num_learners: 0``), one bundle
    per env runner (1 CPU) and one per learner actor (``num_gpus_per_learner`` GPUs, or
    1 CPU without a GPU). Every algorithm of the experiment asks the same."""
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config

    config = build_algorithm_config(exp.trial_spec(exp.algorithms[0]), RLlibDNTEnv)
    return config.algo_class.default_resource_request(config)


def check_address(address: str | None, probe_s: float = PROBE_S) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) cluster address must accept a connection
    within ``probe_s`` seconds: Ray itself waits for minutes, deaf to SIGTERM. ``auto`` and
    ``local`` are left to Ray, which refuses them at once when there is nothing to join."""
    import socket

    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--address {key_text(address)}: must be HOST:PORT, ray://HOST:PORT, auto or local"
        )
    try:
        socket.create_connection((host, int(port)), timeout=probe_s).close()
    except OSError as err:
        raise ConfigError(
            f"--address {key_text(address)}: no Ray cluster answers there "
            f"({err.strerror or err}, within {probe_s:g} s)"
        ) from None


def check_resources(exp: ExperimentConfig, have: dict[str, float], where: str) -> None:
    """Refuse a trial that needs more CPUs or GPUs than ``have`` (``where`` says whose):
    Tune would keep it PENDING for ever."""
    need = trial_resources(exp).required_resources
    fields = {"GPU": "num_gpus_per_learner", "CPU": "num_env_runners, num_learners"}
    for kind, field in fields.items():
        if need.get(kind, 0) > have.get(kind, 0):
            raise ConfigError(
                f"experiment.resources ({field}): a trial needs {kind} {need.get(kind, 0):g}, "
                f"{where} has {kind} {have.get(kind, 0):g}; lower them, or run where there "
                "are more (--address)"
            )


def local_resources() -> dict[str, float]:
    """The CPUs and GPUs a local Ray would find (os.cpu_count, CUDA devices torch sees)."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}
