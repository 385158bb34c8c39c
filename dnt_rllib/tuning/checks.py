"""Checks ``tune`` makes before Ray starts: RLlib's own validation of each algorithm's
config, and the resources a trial needs against what the machine or cluster has."""

from __future__ import annotations

import math
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


#: Peak RSS of a trial's process apart from its replay buffer and the evaluation's arrays:
#: Ray's worker with torch, RLlib's Algorithm and this package, training and evaluating a
#: small network; 0.57–0.58 GiB measured (see :func:`trial_memory`).
TRIAL_PROCESS_BYTES = 0.6 * 2**30


def trial_memory(exp: ExperimentConfig) -> float:
    """Bytes a trial's process needs at most, at the largest values its search reaches: the
    process (:data:`TRIAL_PROCESS_BYTES`), a full replay buffer of the off-policy
    algorithms (``replay_buffer_config.capacity`` transitions of
    ``TransitionRing.slot_bytes``: o_t and o_{t+1} as float32 and the rest; RLlib's episode
    buffer holds each observation once, plus its episodes' overhead) and the env's largest
    in-trial phase of :func:`~dnt_rllib.config.memory_estimate` without its process (the
    threshold rule's batched replay or an episode's tapes; the twin is pretrained before
    Ray starts).

    Measured, the peak RSS (VmHWM, polled every 0.5 s) of each trial's process in a real
    ``tune`` run: smoke.yaml's SAC and DQN trials 0.570 and 0.571 GiB (estimate 0.63 GiB,
    1.10×); sac.yaml shortened to 60 s of training, a 200-trajectory twin and 50
    evaluation episodes (U = 10, N = 6, observations of 50 entries; 51,648 transitions in
    its ring of 100,000) 0.601 GiB (estimate 0.68 GiB, 1.14×). docs/speed.md, "Memory of a
    trial", has the command."""
    from dnt_rllib.config import PROCESS_BYTES, memory_estimate
    from dnt_rllib.env.observation import observation_dim
    from dnt_rllib.experiment.checks import largest_input, replay_capacity
    from dnt_rllib.rllib_ext.replay_ring import TransitionRing

    env = largest_input(exp.env, exp.search_space)
    capacity = replay_capacity(exp.training, exp.search_space, exp.algorithm)
    replay = capacity * TransitionRing.slot_bytes(observation_dim(env))
    phases = [size - PROCESS_BYTES for what, (_, size) in memory_estimate(env).items()
              if "pretraining" not in what]  # fmt: skip
    return TRIAL_PROCESS_BYTES + replay + max(phases)


def trial_resources(exp: ExperimentConfig) -> Any:
    """The placement group of one trial, as RLlib requests it for the trial's algorithm
    (``Algorithm.default_resource_request``): the trial process (1 CPU, and
    ``num_gpus_per_learner`` GPUs when it learns itself, ``num_learners: 0``), one bundle
    per env runner (1 CPU) and one per learner actor (``num_gpus_per_learner`` GPUs, or
    1 CPU without a GPU). Every algorithm of the experiment asks the same. The first
    bundle, the trial's process, also declares its :func:`trial_memory` as Ray's
    ``memory`` resource, so that Ray places no more trials on a node than its memory holds."""
    from ray.tune import PlacementGroupFactory

    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config

    config = build_algorithm_config(exp.trial_spec(exp.algorithms[0]), RLlibDNTEnv)
    group = config.algo_class.default_resource_request(config)
    bundles = [dict(bundle) for bundle in group.bundles]
    bundles[0]["memory"] = float(math.ceil(trial_memory(exp)))
    return PlacementGroupFactory(bundles, strategy=group.strategy)


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
    """Refuse a trial that needs more CPUs, GPUs or memory than ``have`` (``where`` says
    whose): Tune would keep it PENDING for ever."""
    need = trial_resources(exp).required_resources
    fields = {
        "GPU": "resources (num_gpus_per_learner)",
        "CPU": "resources (num_env_runners, num_learners)",
        "memory": "training (replay_buffer_config.capacity; env num_users, num_rbs, frame_stack)",
    }
    for kind, field in fields.items():
        if kind == "memory" and kind not in have:  # not told: left to Ray
            continue
        if need.get(kind, 0) <= have.get(kind, 0):
            continue
        if kind == "memory":
            amounts = (f"{kind} {need[kind] / 2**30:,.2f} GiB (its process, replay buffer "
                       f"and evaluation)", f"{kind} {have[kind] / 2**30:,.2f} GiB for Ray's "
                       "tasks and actors")  # fmt: skip
        else:
            amounts = (f"{kind} {need.get(kind, 0):g}", f"{kind} {have.get(kind, 0):g}")
        raise ConfigError(
            f"experiment.{field}: a trial needs {amounts[0]}, {where} has {amounts[1]}; "
            "lower them, or run where there are more (--address)"
        )


def local_resources() -> dict[str, float]:
    """What a local Ray would find: the CPUs (os.cpu_count), the CUDA devices torch sees and
    the ``memory`` resource Ray gives its node (the available memory less the object
    store's share, as ``ray._private.resource_and_label_spec`` computes it)."""
    import ray._private.utils
    import torch

    available = ray._private.utils.estimate_available_memory()
    memory = available - ray._private.utils.resolve_object_store_memory(available)
    return {
        "CPU": float(os.cpu_count() or 1),
        "GPU": float(torch.cuda.device_count()),
        "memory": float(memory),
    }
