"""RLlib SAC and DQN (new API stack) with the paper's hyper-parameters, built from a trial.

Table I: actor / critic learning rates λ_π = 1e-4, λ_Q = 1e-3, discount β = 0.8 (RLlib's
``gamma``), temperature α = 0.05. RLlib's SAC has no "fixed α" switch; ``alpha_lr = 0``
keeps α at ``initial_alpha`` (Adam with a zero step), which is eq. (13) as written. DQN is
"similar" (§IV): the same network sizes, discount and learning rate as SAC's critic.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from dnt_rllib.validation import ConfigError, Range, check_float, check_int

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {"SAC": SACConfig, "DQN": DQNConfig}

#: Both algorithms' replay buffer: RLlib's new stack needs an episode buffer.
REPLAY_BUFFER = {"type": "EpisodeReplayBuffer", "capacity": 100_000}

PAPER_TRAINING: dict[str, dict[str, Any]] = {
    "SAC": {
        "actor_lr": 1e-4,  # λ_π
        "critic_lr": 1e-3,  # λ_Q
        "alpha_lr": 0.0,  # α held fixed ...
        "initial_alpha": 0.05,  # ... at Table I's 0.05
        "gamma": 0.8,  # β
        "tau": 0.005,
        "train_batch_size_per_learner": 256,
        "num_steps_sampled_before_learning_starts": 1_000,
        "replay_buffer_config": REPLAY_BUFFER,
    },
    "DQN": {
        "lr": 1e-3,  # = SAC's critic rate
        "gamma": 0.8,
        "tau": 0.005,  # the same soft target update as SAC's critics
        "target_network_update_freq": 1,
        "double_q": True,
        "dueling": False,
        "epsilon": [[0, 1.0], [10_000, 0.02]],
        "train_batch_size_per_learner": 256,
        "num_steps_sampled_before_learning_starts": 1_000,
        "replay_buffer_config": REPLAY_BUFFER,
    },
}
PAPER_MODEL: dict[str, Any] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"}

#: Largest hidden layer accepted (a 2-layer MLP of this width holds ~10^8 weights).
MAX_LAYER = 8192
#: ``model`` keys of our own: ``fcnet_hiddens = [width] * depth`` (searchable as numbers).
MODEL_SHAPE = {"width": Range(1, MAX_LAYER), "depth": Range(1, 16)}
ACTIVATIONS = ("relu", "tanh", "elu", "swish", "silu", "linear")

#: Ranges checked before Ray starts; RLlib validates the rest when the config is built.
_RANGES: dict[str, tuple[str, Range]] = {
    "lr": ("float", Range(0.0, None)),
    "actor_lr": ("float", Range(0.0, None)),
    "critic_lr": ("float", Range(0.0, None)),
    "alpha_lr": ("float", Range(0.0, None)),
    "initial_alpha": ("float", Range(0.0, None, lo_open=True)),
    "gamma": ("float", Range(0.0, 1.0)),
    "tau": ("float", Range(0.0, 1.0)),
    "training_intensity": ("float", Range(0.0, None, lo_open=True)),
    "train_batch_size_per_learner": ("int", Range(1, None)),
    "num_steps_sampled_before_learning_starts": ("int", Range(0, None)),
    "target_network_update_freq": ("int", Range(0, None)),
    "n_step": ("int", Range(1, None)),
}


def training_keys(algorithm: str) -> set[str]:
    """The keyword arguments ``<Algo>Config.training()`` accepts."""
    cls = ALGORITHMS[algorithm]
    names: set[str] = set()
    for klass in (cls, AlgorithmConfig):
        params = inspect.signature(klass.training).parameters.values()
        names |= {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    return {n for n in names if not n.startswith("_")}


def check_training(
    algorithm: str, owner: str, values: dict[str, Any], values_too: bool = True
) -> dict[str, Any]:
    """Refuse unknown ``.training()`` keys (and, for SAC, ``lr``) and out-of-range values."""
    allowed = training_keys(algorithm)
    for key, value in values.items():
        if algorithm == "SAC" and key == "lr":
            raise ConfigError(
                f"{owner}.lr: SAC uses actor_lr, critic_lr and alpha_lr; leave lr unset"
            )
        if key not in allowed:
            raise ConfigError(
                f"{owner}.{key}: not a {algorithm} training setting; "
                f"see {ALGORITHMS[algorithm].__name__}.training()"
            )
        if values_too and key in _RANGES and value is not None:
            kind, rng = _RANGES[key]
            (check_int if kind == "int" else check_float)(owner, key, value, rng)
    return dict(values)


def check_model(owner: str, values: dict[str, Any]) -> dict[str, Any]:
    """Refuse keys that are not ``DefaultModelConfig`` fields."""
    if not isinstance(values, dict):
        raise ConfigError(f"{owner}: must be a mapping of DefaultModelConfig fields")
    allowed = {f.name for f in dataclasses.fields(DefaultModelConfig)}
    for key in values:
        if key in MODEL_SHAPE:
            check_int(owner, key, values[key], MODEL_SHAPE[key])
        elif key not in allowed:
            raise ConfigError(f"{owner}.{key}: not a DefaultModelConfig field, nor width or depth")
    if MODEL_SHAPE.keys() & values.keys() and "fcnet_hiddens" in values:
        raise ConfigError(f"{owner}: give fcnet_hiddens or width/depth, not both")
    for key in ("fcnet_hiddens", "head_fcnet_hiddens"):
        layers = values.get(key)
        if layers is not None and (
            not isinstance(layers, list)
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in layers)
            or not all(1 <= n <= MAX_LAYER for n in layers)
            or len(layers) > 16
        ):
            raise ConfigError(
                f"{owner}.{key} = {layers!r}: must be a list of at most 16 layer sizes, "
                f"integers in [1, {MAX_LAYER}], e.g. [256, 256]"
            )
    for key in ("fcnet_activation", "head_fcnet_activation"):
        act = values.get(key)
        if act is not None and act not in ACTIVATIONS:
            raise ConfigError(
                f"{owner}.{key} = {act!r}: must be one of {', '.join(map(repr, ACTIVATIONS))}"
            )
    return dict(values)


def model_config(values: dict[str, Any]) -> dict[str, Any]:
    """The DefaultModelConfig fields: the paper's, then ``values`` (width/depth expanded)."""
    model = {**PAPER_MODEL, **values}
    width = model.pop("width", None)
    depth = model.pop("depth", None)
    if width is not None or depth is not None:
        hidden = PAPER_MODEL["fcnet_hiddens"]
        model["fcnet_hiddens"] = [width or hidden[0]] * (depth or len(hidden))
    return model


#: The learner's reward when the experiment has no ``reward`` section: eq. (17) unchanged.
REWARD_DEFAULTS: dict[str, Any] = {"scale": 1.0, "baseline": False}


def reward_config(values: dict[str, Any]) -> dict[str, Any]:
    """The experiment's ``reward`` section with its defaults filled in."""
    return {**REWARD_DEFAULTS, **values}


#: The experiment's ``replay`` section when it has none: the batch-native ring buffer.
REPLAY_DEFAULTS: dict[str, Any] = {"kind": "fast"}


def replay_kind(params: dict[str, Any]) -> str:
    """The trial's replay path; trials saved before ``replay`` existed ran RLlib's."""
    return str(params.get("replay", {"kind": "rllib"}).get("kind", REPLAY_DEFAULTS["kind"]))


def build_algorithm_config(params: dict[str, Any], env: str | type) -> AlgorithmConfig:
    """The RLlib config of one trial: paper defaults, then the trial's overrides.

    ``num_learners`` and ``num_gpus_per_learner`` default to 0 (trials written before
    they existed): one learner, on the trial process's CPU. ``replay.kind: fast`` builds
    the algorithm class of :mod:`dnt_rllib.pipeline.fast_replay` (same losses and
    schedules, batches straight from a ring buffer); ``rllib`` RLlib's own.
    """
    from dnt_rllib.pipeline.fast_replay import FAST_CLASSES

    algorithm = params["algorithm"]
    training = {**PAPER_TRAINING[algorithm], **params["training"].get(algorithm, {})}
    reward = reward_config(params.get("reward", {}))
    env_config = {
        **params["env"],
        "seed": params["seed"],
        "reward_scale": reward["scale"],
        "reward_baseline": reward["baseline"],
    }
    algo_class = FAST_CLASSES[algorithm] if replay_kind(params) == "fast" else None
    config = (
        ALGORITHMS[algorithm](algo_class=algo_class)
        .environment(env, env_config=env_config)
        .env_runners(
            num_env_runners=params["num_env_runners"],
            num_envs_per_env_runner=params["num_envs_per_env_runner"],
            num_cpus_per_env_runner=1,
            gym_env_vectorize_mode="vector_entry_point",  # one batched twin call per step
        )
        .learners(
            num_learners=params.get("num_learners", 0),
            num_gpus_per_learner=params.get("num_gpus_per_learner", 0),
        )
        .training(**training)
        .rl_module(model_config=model_config(params["model"]))
        .fault_tolerance(restart_failed_env_runners=True, restart_failed_sub_environments=True)
        .debugging(seed=params["seed"], log_level="ERROR")
    )
    return config
