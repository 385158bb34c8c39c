"""The settings of RLlib's SAC, DQN and PPO (new API stack): the paper's defaults, the
``training`` and ``model`` keys accepted and their checks, and the learner and replay
defaults (:mod:`dnt_rllib.trial.rllib_config` builds the RLlib config from them).

Table I: actor / critic learning rates λ_π = 1e-4, λ_Q = 1e-3, discount β = 0.8 (RLlib's
``gamma``), temperature α = 0.05. RLlib's SAC has no "fixed α" switch; ``alpha_lr = 0``
keeps α at ``initial_alpha`` (Adam with a zero step), which is eq. (13) as written. DQN is
"similar" (§IV): the same network sizes, discount and learning rate as SAC's critic. PPO is
not in the paper: cleanrl's ``ppo.py`` settings with the paper's discount.

``model: {use_lstm: true}`` wraps the policy network in an LSTM (RLlib's recurrent encoder:
``fcnet_hiddens`` before it, ``head_fcnet_hiddens`` after it) for DQN and PPO; RLlib's SAC
module passes no recurrent state, so SAC with an LSTM is refused (:func:`check_together`).

``model: {kind: set}`` replaces the MLP's first layers by a set encoder whose weights do
not depend on U or N (:mod:`dnt_rllib.rllib_ext.set_model`): per-user and per-RB MLPs of
``set_hiddens``, mean and max pooling, then ``fcnet_hiddens``. It reads the ``'set'`` and
``'set_memory'`` observations and the binary action (:func:`check_set_model`).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from dataclasses import dataclass
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from dnt_rllib.validation import (
    ConfigError,
    Range,
    check_bool,
    check_choice,
    check_float,
    check_int,
    key_text,
    short,
)

ALGORITHMS: dict[str, type[AlgorithmConfig]] = {
    "SAC": SACConfig,
    "DQN": DQNConfig,
    "PPO": PPOConfig,
}
#: The algorithms that learn from a replay buffer (the ``replay`` section is theirs).
OFF_POLICY = ("SAC", "DQN")

#: SAC's and DQN's replay buffer: RLlib's new stack needs an episode buffer.
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
    "PPO": {  # not in the paper: cleanrl's ppo.py, with the paper's discount β
        "lr": 3e-4,
        "gamma": 0.8,  # β
        "lambda_": 0.95,  # GAE
        "clip_param": 0.2,
        "use_kl_loss": False,  # the clipped objective alone
        "entropy_coeff": 0.01,
        "vf_loss_coeff": 0.5,
        "vf_clip_param": 1e6,  # RLlib's 10 zeroes the value loss's gradient at returns ~10^2
        "grad_clip": 0.5,  # of the global norm
        "train_batch_size_per_learner": 2048,
        "minibatch_size": 256,
        "num_epochs": 10,
    },
}
PAPER_MODEL: dict[str, Any] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"}

#: Largest hidden layer accepted (a 2-layer MLP of this width holds ~10^8 weights).
MAX_LAYER = 8192
#: ``model`` keys of our own: ``fcnet_hiddens = [width] * depth`` (searchable as numbers).
MODEL_SHAPE = {"width": Range(1, MAX_LAYER), "depth": Range(1, 16)}
ACTIVATIONS = ("relu", "tanh", "elu", "swish", "silu", "linear")
#: The ``DefaultModelConfig`` fields accepted: layer sizes, activations, layer norms, the LSTM.
MODEL_FIELDS = (
    "fcnet_hiddens",
    "fcnet_activation",
    "fcnet_use_layernorm",
    "head_fcnet_hiddens",
    "head_fcnet_activation",
    "head_fcnet_use_layernorm",
    "use_lstm",
    "lstm_cell_size",
    "max_seq_len",
)
#: ``model.kind``: RLlib's MLP encoder or the set encoder (:mod:`dnt_rllib.rllib_ext.set_model`).
MODEL_KINDS = ("mlp", "set")
#: ``model`` keys of the set encoder alone: the per-user and per-RB MLPs' layer sizes.
SET_FIELDS = ("set_hiddens",)
#: The set model's per-user and per-RB ReLU layers when the model section names none.
SET_HIDDENS = [32]
#: The observation modes the set encoder can cut into users and RBs.
SET_OBSERVATIONS = ("set", "set_memory")
#: The LSTM's integer fields: its cell size, and the sequences the learner trains on (slots).
LSTM_SIZES = {"lstm_cell_size": Range(1, MAX_LAYER), "max_seq_len": Range(1, 1000)}

#: Most weights of one network, input and output layers included (2 × 4096 wide: 16.8 M);
#: SAC holds five such networks, and Adam two more copies of the trained ones.
MAX_WEIGHTS = 20_000_000

#: RLlib ``.training()`` keys whose value RLlib resolves by name: a class, a callable or a
#: config dict whose ``type`` it imports and calls. Never accepted from a file.
BY_NAME = frozenset({"learner_class", "learner_connector", "optimizer", "before_learn_on_batch",
                     "model", "policy_model_config", "q_model_config", "optimization_config",
                     "learner_config_dict", "lr_schedule"})  # fmt: skip
#: ``replay_buffer_config.type``: the episode buffers RLlib's new stack needs.
BUFFER_TYPES = ("EpisodeReplayBuffer", "PrioritizedEpisodeReplayBuffer")
#: The other ``replay_buffer_config`` keys: numbers only (``alpha``/``beta``: prioritised).
BUFFER_KEYS: dict[str, tuple[str, Range]] = {
    "capacity": ("int", Range(1, 10_000_000)),
    "alpha": ("float", Range(0.0, None)),
    "beta": ("float", Range(0.0, None)),
}


@dataclass(frozen=True)
class Setting:
    """One accepted ``training`` key: the kind of its value and, for numbers, their range.

    Kinds: ``float``, ``int``, ``bool``, ``choice`` (one of ``choices``), ``float_or_choice``,
    ``schedule`` (a number, or ``[[timestep, value], ...]`` from timestep 0, increasing) and
    ``buffer`` (``replay_buffer_config``). ``nullable``: ``null`` (RLlib's default) is taken.
    """

    kind: str
    rng: Range | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False


_COMMON: dict[str, Setting] = {
    "gamma": Setting("float", Range(0.0, 1.0)),
    "tau": Setting("float", Range(0.0, 1.0)),
    "training_intensity": Setting("float", Range(0.0, None, lo_open=True), nullable=True),
    "train_batch_size_per_learner": Setting("int", Range(1, None)),
    "num_steps_sampled_before_learning_starts": Setting("int", Range(0, None)),
    "target_network_update_freq": Setting("int", Range(0, None)),
    "n_step": Setting("int", Range(1, None)),
    "grad_clip": Setting("float", Range(0.0, None, lo_open=True), nullable=True),
    "grad_clip_by": Setting("choice", choices=("value", "norm", "global_norm")),
    "replay_buffer_config": Setting("buffer"),
}
_PPO_COMMON = ("gamma", "train_batch_size_per_learner", "grad_clip", "grad_clip_by")
#: The ``training.<ALGO>`` keys this project accepts; everything else is refused.
TRAINING_SETTINGS: dict[str, dict[str, Setting]] = {
    "SAC": {
        **_COMMON,
        "actor_lr": Setting("float", Range(0.0, None)),
        "critic_lr": Setting("float", Range(0.0, None)),
        "alpha_lr": Setting("float", Range(0.0, None)),
        "initial_alpha": Setting("float", Range(0.0, None, lo_open=True)),
        "target_entropy": Setting("float_or_choice", Range(None, None), choices=("auto",)),
        "twin_q": Setting("bool"),
    },
    "DQN": {
        **_COMMON,
        "lr": Setting("float", Range(0.0, None)),
        "double_q": Setting("bool"),
        "dueling": Setting("bool"),
        "epsilon": Setting("schedule", Range(0.0, 1.0)),
        "adam_epsilon": Setting("float", Range(0.0, None, lo_open=True)),
        "td_error_loss_fn": Setting("choice", choices=("huber", "mse")),
        "burn_in_len": Setting("int", Range(0, None)),  # with use_lstm: slots not learned on
    },
    "PPO": {
        **{k: _COMMON[k] for k in _PPO_COMMON},
        "lr": Setting("float", Range(0.0, None)),
        "lambda_": Setting("float", Range(0.0, 1.0)),
        "clip_param": Setting("float", Range(0.0, None, lo_open=True)),
        "vf_clip_param": Setting("float", Range(0.0, None, lo_open=True)),
        "vf_loss_coeff": Setting("float", Range(0.0, None)),
        "entropy_coeff": Setting("schedule", Range(0.0, None)),
        "use_kl_loss": Setting("bool"),
        "kl_coeff": Setting("float", Range(0.0, None)),
        "kl_target": Setting("float", Range(0.0, None, lo_open=True)),
        "minibatch_size": Setting("int", Range(1, None)),
        "num_epochs": Setting("int", Range(1, None)),
        "shuffle_batch_per_epoch": Setting("bool"),
    },
}


def training_keys(algorithm: str) -> set[str]:
    """The keyword arguments ``<Algo>Config.training()`` accepts (RLlib's, not ours)."""
    cls = ALGORITHMS[algorithm]
    names: set[str] = set()
    for klass in (cls, AlgorithmConfig):
        params = inspect.signature(klass.training).parameters.values()
        names |= {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    return {n for n in names if not n.startswith("_")}


def check_training_key(algorithm: str, owner: str, key: Any) -> Setting:
    """The :class:`Setting` of ``key``, or one line saying why it is not accepted."""
    settings = TRAINING_SETTINGS[algorithm]
    if algorithm == "SAC" and key == "lr":
        raise ConfigError(f"{owner}.lr: SAC uses actor_lr, critic_lr and alpha_lr; leave lr unset")
    if key in settings:
        return settings[key]
    accepted = ", ".join(sorted(settings))
    if key in BY_NAME:
        why = "not accepted: RLlib would resolve its value by name (a class, callable or config)"
    elif key in training_keys(algorithm):
        why = f"an RLlib {algorithm} setting this project does not accept"
    else:
        why = f"not a {algorithm} training setting"
    raise ConfigError(f"{owner}.{key_text(key)}: {why}; accepted: {accepted}")


def check_setting(owner: str, key: str, value: Any, setting: Setting) -> Any:
    """``value`` if it is of ``setting``'s kind, else one line naming ``owner.key``."""
    if value is None and setting.nullable:
        return None
    kind, rng = setting.kind, setting.rng or Range()
    if kind == "int":
        return check_int(owner, key, value, rng)
    if kind == "float":
        return check_float(owner, key, value, rng)
    if kind == "bool":
        return check_bool(owner, key, value)
    if kind == "choice" or (kind == "float_or_choice" and isinstance(value, str)):
        return check_choice(owner, key, value, setting.choices)
    if kind == "float_or_choice":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{owner}.{key} = {short(value)}: must be a number or "
                + " or ".join(map(repr, setting.choices))
            )
        return check_float(owner, key, value, rng)
    if kind == "schedule":
        return _check_schedule(owner, key, value, rng)
    return _check_buffer(f"{owner}.{key}", value)


def _check_schedule(owner: str, key: str, value: Any, rng: Range) -> Any:
    """A number in ``rng``, or ``[[0, v0], [t1, v1], ...]`` with increasing timesteps."""
    if not isinstance(value, list):
        return check_float(owner, key, value, rng)
    ok = bool(value) and all(
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], int)
        and not isinstance(pair[0], bool)
        and isinstance(pair[1], int | float)
        and not isinstance(pair[1], bool)
        and rng.contains(float(pair[1]))
        for pair in value
    )
    steps = [pair[0] for pair in value] if ok else []
    if not ok or steps[0] != 0 or any(b <= a for a, b in itertools.pairwise(steps)):
        raise ConfigError(
            f"{owner}.{key} = {short(value)}: must be a number {rng.describe()} or a schedule "
            f"[[0, v0], [t1, v1], ...] (timesteps from 0, increasing; values {rng.describe()})"
        )
    return value


def _check_buffer(owner: str, value: Any) -> dict[str, Any]:
    """``replay_buffer_config``: ``type`` one of :data:`BUFFER_TYPES`, the rest numbers
    (``alpha``, ``beta``: the prioritised buffer's only)."""
    if not isinstance(value, dict):
        raise ConfigError(
            f"{owner} = {short(value)}: must be a mapping with type "
            f"({' or '.join(BUFFER_TYPES)}) and {', '.join(BUFFER_KEYS)}"
        )
    for key, item in value.items():
        if key == "type":
            if item not in BUFFER_TYPES:
                raise ConfigError(
                    f"{owner}.type = {short(item)}: must be one of "
                    f"{', '.join(map(repr, BUFFER_TYPES))} (RLlib imports the type by name: "
                    "no other is accepted)"
                )
        elif key in BUFFER_KEYS:
            kind, rng = BUFFER_KEYS[key]
            (check_int if kind == "int" else check_float)(owner, key, item, rng)
        else:
            raise ConfigError(
                f"{owner}.{key_text(key)}: not accepted (RLlib passes it on to the buffer it "
                f"builds); accepted: type, {', '.join(BUFFER_KEYS)}"
            )
    kind = value.get("type", REPLAY_BUFFER["type"])
    for key in ("alpha", "beta"):  # EpisodeReplayBuffer takes **kwargs: it would ignore them
        if key in value and kind != "PrioritizedEpisodeReplayBuffer":
            raise ConfigError(
                f"{owner}.{key} = {short(value[key])} with type {kind}: only the prioritised "
                "buffer reads it; set type: PrioritizedEpisodeReplayBuffer (with replay: "
                f"{{kind: rllib}}), or drop {key}"
            )
    return value


def check_training(algorithm: str, owner: str, values: dict[str, Any]) -> dict[str, Any]:
    """Refuse every ``.training()`` key but :data:`TRAINING_SETTINGS` (and, for SAC, ``lr``)
    and every value not of its setting's kind: nothing RLlib resolves by name gets through."""
    for key, value in values.items():
        check_setting(owner, key, value, check_training_key(algorithm, owner, key))
    return dict(values)


def check_model(owner: str, values: dict[str, Any]) -> dict[str, Any]:
    """Refuse keys but :data:`MODEL_FIELDS` and ``width``/``depth``, bad values, and hidden
    layers of more than :data:`MAX_WEIGHTS` weights."""
    if not isinstance(values, dict):
        raise ConfigError(f"{owner}: must be a mapping of model fields")
    known = {f.name for f in dataclasses.fields(DefaultModelConfig)}
    accepted = ", ".join(sorted({*MODEL_FIELDS, *MODEL_SHAPE, "kind", *SET_FIELDS}))
    for key in values:
        if key == "kind":
            check_choice(owner, key, values[key], MODEL_KINDS)
        elif key in SET_FIELDS:
            continue  # a list of layer sizes, checked below
        elif key in MODEL_SHAPE:
            check_int(owner, key, values[key], MODEL_SHAPE[key])
        elif key in LSTM_SIZES:
            check_int(owner, key, values[key], LSTM_SIZES[key])
        elif key == "use_lstm":
            check_bool(owner, key, values[key])
        elif key in known and key not in MODEL_FIELDS:
            raise ConfigError(
                f"{owner}.{key}: not a model setting of this project (it passes RLlib layer "
                "sizes, activations, layer norms and the LSTM's size only; initializers "
                f"RLlib resolves by name); accepted: {accepted}"
            )
        elif key not in MODEL_FIELDS:
            raise ConfigError(
                f"{owner}.{key_text(key)}: not a DefaultModelConfig field, nor width or depth; "
                f"accepted: {accepted}"
            )
    if MODEL_SHAPE.keys() & values.keys() and "fcnet_hiddens" in values:
        raise ConfigError(f"{owner}: give fcnet_hiddens or width/depth, not both")
    for key in ("fcnet_hiddens", "head_fcnet_hiddens", *SET_FIELDS):
        layers = values.get(key)
        if layers is not None and (
            not isinstance(layers, list)
            or (key in SET_FIELDS and not layers)
            or len(layers) > 16
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in layers)
            or not all(1 <= n <= MAX_LAYER for n in layers)
        ):
            raise ConfigError(
                f"{owner}.{key} = {short(layers)}: must be a list of at most 16 layer sizes, "
                f"integers in [1, {MAX_LAYER}], e.g. [256, 256]"
            )
    for key in ("fcnet_activation", "head_fcnet_activation"):
        act = values.get(key)
        if act is not None and act not in ACTIVATIONS:
            raise ConfigError(
                f"{owner}.{key} = {short(act)}: must be one of {', '.join(map(repr, ACTIVATIONS))}"
            )
    for key in ("fcnet_use_layernorm", "head_fcnet_use_layernorm"):
        if key in values:
            check_bool(owner, key, values[key])
    check_network_size(owner, values)
    return dict(values)


def check_together(
    algorithm: str, model: dict[str, Any], training: dict[str, Any], replay: str
) -> None:
    """Refuse settings that are wrong only together, in one line naming them (the caller
    says where they come from): an LSTM for SAC (RLlib's SAC module passes no recurrent
    state); for DQN with an LSTM, anything but RLlib's ``EpisodeReplayBuffer`` (the only one
    that samples sequences, with burn-in), ``n_step`` > 1 (sequences are sampled 1-step)
    and a burn-in as long as the sequences; a burn-in without an LSTM; a PPO minibatch
    larger than its train batch. ``training`` holds the algorithm's effective settings
    (the paper's, then the trial's)."""
    lstm = bool(model.get("use_lstm", False))
    if model.get("kind") == "set" and lstm:
        raise ConfigError(
            "model.use_lstm = true with model.kind = set: the set encoder is not recurrent; "
            "drop use_lstm, or use env.frame_stack (each user's frames are one input)"
        )
    if algorithm == "SAC" and lstm:
        raise ConfigError(
            "model.use_lstm = true with algorithm = SAC: RLlib's SAC module passes no "
            "recurrent state between slots; use DQN or PPO for an LSTM (or env.frame_stack)"
        )
    if algorithm == "PPO":
        batch, mini = training["train_batch_size_per_learner"], training["minibatch_size"]
        if mini > batch:
            raise ConfigError(
                f"training.PPO.minibatch_size = {mini}: must be <= train_batch_size_per_learner "
                f"({batch}), the batch its minibatches are cut from"
            )
    if algorithm != "DQN":
        return
    burn_in = training.get("burn_in_len", 0)
    if not lstm:
        if burn_in:
            raise ConfigError(
                f"training.DQN.burn_in_len = {burn_in} with model.use_lstm = false: a burn-in "
                "warms an LSTM's state; set model.use_lstm: true or burn_in_len: 0"
            )
        return
    if replay == "fast":
        raise ConfigError(
            "replay.kind = 'fast' with DQN and model.use_lstm = true: the ring buffer samples "
            "single transitions, an LSTM learns on sequences (RLlib's EpisodeReplayBuffer, "
            "with burn-in); set replay: {kind: rllib}"
        )
    buffer = training.get("replay_buffer_config", {}).get("type", REPLAY_BUFFER["type"])
    if buffer != "EpisodeReplayBuffer":
        raise ConfigError(
            f"training.DQN.replay_buffer_config.type = {short(buffer)} with model.use_lstm = "
            "true: it samples single transitions; use 'EpisodeReplayBuffer' (sequences)"
        )
    n_step = training.get("n_step", 1)
    if n_step != 1:
        raise ConfigError(
            f"training.DQN.n_step = {n_step} with model.use_lstm = true: RLlib samples "
            "sequences 1-step only; set n_step: 1"
        )
    seq = model.get("max_seq_len", DefaultModelConfig.max_seq_len)
    if burn_in >= seq:
        raise ConfigError(
            f"training.DQN.burn_in_len = {burn_in} with model.max_seq_len = {seq}: the "
            "burn-in must be shorter than the sequences it starts (DQN learns on the "
            "max_seq_len − burn_in_len slots after it)"
        )


def check_set_model(model: dict[str, Any], env: Any) -> None:
    """Refuse, in one line naming the fields, a set model on an env it cannot read: an
    observation it cannot cut into users and RBs (any but :data:`SET_OBSERVATIONS`) and
    ``action_mode: rb``, whose N + 1 actions would size its heads by N; and ``set_hiddens``
    without ``kind: set`` (it would be ignored)."""
    if model.get("kind") != "set":
        if "set_hiddens" in model:
            raise ConfigError(
                "model.set_hiddens with model.kind = mlp: it sizes the set encoder's per-user "
                "and per-RB layers and would be ignored; set model.kind: set, or drop it"
            )
        return
    if env.observation_mode not in SET_OBSERVATIONS:
        raise ConfigError(
            f"model.kind = set with env.observation_mode = {env.observation_mode}: the set "
            f"encoder reads the users and RBs of {' or '.join(map(repr, SET_OBSERVATIONS))}"
        )
    if env.action_mode != "binary":
        raise ConfigError(
            f"model.kind = set with env.action_mode = {env.action_mode}: its N + 1 actions "
            "would size the heads by N; the set model takes action_mode: binary"
        )


def set_model_weights(model: dict[str, Any], layout: Any) -> tuple[int, int]:
    """(weights of the per-user and per-RB MLPs, inputs of the pooled MLP) of a set model
    on frames of ``layout`` (:class:`~dnt_rllib.env.observation.SetLayout`): the same for
    every U and N."""
    hidden = model.get("set_hiddens") or SET_HIDDENS
    k = layout.frames
    items = sum(sum(a * b + b for a, b in itertools.pairwise([width, *hidden]))
                for width in (k * layout.user_features, k * layout.RB_FEATURES))  # fmt: skip
    return items, 4 * hidden[-1] + k * layout.globals


def check_learner(algorithm: str, kind: str, model: dict[str, Any], num_learners: int) -> None:
    """``learner.kind: lean`` trains one non-recurrent SAC or DQN module in one process:
    refuse it, in one line, with an LSTM or with more than one learner actor."""
    if kind != "lean" or algorithm not in OFF_POLICY:
        return
    if model.get("use_lstm", False):
        raise ConfigError(
            f"learner.kind = 'lean' with {algorithm} and model.use_lstm = true: the lean "
            "learner trains non-recurrent modules; set learner: {kind: rllib}"
        )
    if num_learners > 1:
        raise ConfigError(
            f"learner.kind = 'lean' with resources.num_learners = {num_learners}: the lean "
            "learner updates one module in one process (no DDP); set num_learners <= 1 or "
            "learner: {kind: rllib}"
        )


def check_network_size(
    owner: str, values: dict[str, Any], inputs: int = 1, outputs: int = 1, sizes: str = ""
) -> None:
    """At most :data:`MAX_WEIGHTS` weights in one network of the model ``values`` between
    ``inputs`` observations and ``outputs`` actions; ``sizes`` (e.g. ``num_rbs = 6``) names
    the env fields that set them."""
    model = model_config(values)
    hidden = [*model["fcnet_hiddens"], *(model.get("head_fcnet_hiddens") or [])]
    weights = sum(a * b for a, b in itertools.pairwise([inputs, *hidden, outputs]))
    lstm = model.get("use_lstm", False)
    if lstm:  # fcnet_hiddens → LSTM (4 gates on [input, h]) → the head
        cell = model.get("lstm_cell_size", DefaultModelConfig.lstm_cell_size)
        head = model.get("head_fcnet_hiddens") or []
        before = [inputs, *model["fcnet_hiddens"]]
        weights = (sum(a * b for a, b in itertools.pairwise(before))
                   + 4 * cell * (before[-1] + cell)
                   + sum(a * b for a, b in itertools.pairwise([cell, *head, outputs])))  # fmt: skip
    if weights > MAX_WEIGHTS:
        layers = short(hidden)
        if lstm:  # e.g. [256, 256, LSTM 256]
            parts = [*map(str, model["fcnet_hiddens"]), f"LSTM {cell}", *map(str, head)]
            layers = f"[{', '.join(parts)}]"
        shape = f"{inputs:,} inputs ({sizes}), hidden {layers}" if sizes else layers
        names = [part.split(" = ")[0] for part in sizes.split(", ") if sizes]
        names += ["width", "depth", "fcnet_hiddens", *(["lstm_cell_size"] * bool(lstm))]
        raise ConfigError(
            f"{owner}: layers {shape} hold {weights / 1e6:,.0f} M weights per network, more "
            f"than {MAX_WEIGHTS / 1e6:.1f} M; lower {', '.join(names[:-1])} or {names[-1]}"
        )


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


def default_learner(algorithm: str, model: dict[str, Any], num_learners: int) -> str:
    """The SAC/DQN learner of a trial whose experiment names none: the lean one
    (:mod:`dnt_rllib.rllib_ext.lean_learner`, the default since its learning A/B held for
    SAC and DQN: docs/speed.md) where it applies (SAC or DQN, no LSTM, one learner at most),
    RLlib's elsewhere."""
    applies = algorithm in OFF_POLICY and not model.get("use_lstm") and num_learners <= 1
    return "lean" if applies else "rllib"
