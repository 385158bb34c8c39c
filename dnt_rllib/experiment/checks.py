"""Checks across an experiment's sections, at every point its search can reach: settings
that only work together, settings no trial reads, and networks and replay rings too large
for this machine. Each refuses in one line before Ray starts."""

from __future__ import annotations

import itertools
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.fields import OWNER, algorithms_of
from dnt_rllib.experiment.search import model_extremes
from dnt_rllib.rllib_ext.replay_ring import TransitionRing
from dnt_rllib.trial.settings import (
    LSTM_SIZES,
    MAX_WEIGHTS,
    OFF_POLICY,
    PAPER_TRAINING,
    REPLAY_BUFFER,
    check_learner,
    check_network_size,
    check_set_model,
    check_together,
    set_model_weights,
)
from dnt_rllib.validation import ConfigError, short


def check_learners(
    learner: str | None,
    model: dict[str, Any],
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
    num_learners: int,
) -> None:
    """:func:`check_learner` for every algorithm, learner kind and LSTM switch searched."""
    kinds = space["learner.kind"][1] if "learner.kind" in space else [learner]
    lstms = space["model.use_lstm"][1] if "model.use_lstm" in space else [None]
    for algo, kind, lstm in itertools.product(algorithms_of(space, algorithm), kinds, lstms):
        mine = model if lstm is None else {**model, "use_lstm": lstm}
        try:
            check_learner(algo, kind, mine, num_learners)
        except ConfigError as err:
            raise ConfigError(f"{OWNER}.{err}") from None


def largest_input(env: SystemConfig, space: dict[str, tuple[str, list[Any]]]) -> SystemConfig:
    """``env`` at the searched values that make the observation longest: the largest
    ``num_users``, ``num_rbs``, ``history`` and ``frame_stack`` and the longest
    ``observation_mode``."""
    from dnt_rllib.env.observation import observation_dim

    big: dict[str, Any] = {}
    for name in ("num_users", "num_rbs", "history", "frame_stack"):
        if f"env.{name}" in space:
            domain, args = space[f"env.{name}"]
            big[name] = args[1] - 1 if domain == "randint" else max(args)
    env = env.replace(**big) if big else env
    if "env.observation_mode" in space:
        modes = space["env.observation_mode"][1]
        env = max((env.replace(observation_mode=m) for m in modes), key=observation_dim)
    return env


def input_fields(env: SystemConfig) -> str:
    """The fields that set the observation's length, as ``name = value`` (``frame_stack``
    only when it stacks)."""
    sizes = f"num_users = {env.num_users}, num_rbs = {env.num_rbs}"
    return sizes + (f", frame_stack = {env.frame_stack}" if env.frame_stack > 1 else "")


def check_used(
    raw: dict[str, Any],
    training: dict[str, dict[str, Any]],
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """Refuse sections and settings no trial of the experiment reads (each would be ignored):
    ``training.<ALGO>`` of an algorithm never run, ``replay`` or ``learner`` with no SAC or
    DQN, PPO's ``kl_coeff`` and ``kl_target`` with ``use_kl_loss`` false at every point."""
    algos = algorithms_of(space, algorithm)
    for algo in training:
        if algo not in algos:
            raise ConfigError(
                f"{OWNER}.training.{algo}: the experiment never runs {algo} (algorithm: "
                f"{', '.join(algos)}); drop it, or search algorithm"
            )
    for section, what in (("replay", "from no replay buffer"), ("learner", "with RLlib's learner")):
        if set(algos) & set(OFF_POLICY) or not (raw.get(section) or f"{section}.kind" in space):
            continue
        where = section if raw.get(section) else f"search_space.{section}.kind"
        raise ConfigError(
            f"{OWNER}.{where} with algorithm = {algorithm}: PPO learns on-policy, {what}; "
            f"drop it (the {section} section is SAC's and DQN's)"
        )
    if "PPO" not in algos:
        return
    ppo = {**PAPER_TRAINING["PPO"], **training.get("PPO", {})}
    searched = space.get("training.use_kl_loss", ("grid", [ppo["use_kl_loss"]]))[1]
    if True in searched:
        return
    for name in ("kl_coeff", "kl_target"):
        given = f"training.PPO.{name} = {short(ppo[name])}" if name in ppo else None
        where = given or (f"search_space.training.{name}" if f"training.{name}" in space else None)
        if where is not None:
            raise ConfigError(
                f"{OWNER}.{where} with training.PPO.use_kl_loss = false: only the KL loss "
                f"reads it and would ignore it; set use_kl_loss: true, or drop {name}"
            )


def check_lstm_fields(model: dict[str, Any], space: dict[str, tuple[str, list[Any]]]) -> None:
    """``lstm_cell_size`` and ``max_seq_len`` size the LSTM: refused, set or searched, when no
    point of the experiment has ``model.use_lstm: true`` (RLlib would ignore them)."""
    lstm = space["model.use_lstm"][1] if "model.use_lstm" in space else [model.get("use_lstm")]
    if True in lstm:
        return
    for name, rng in LSTM_SIZES.items():
        searched = f"search_space.model.{name}" if f"model.{name}" in space else None
        where = f"model.{name} = {short(model[name])}" if name in model else searched
        if where is not None:
            raise ConfigError(
                f"{OWNER}.{where} with model.use_lstm = false: it sizes the LSTM (an integer "
                f"{rng.describe()} with model.use_lstm: true) and would be ignored; set "
                f"model.use_lstm: true, or drop {name}"
            )


def check_module_size(
    env: SystemConfig, model: dict[str, Any], space: dict[str, tuple[str, list[Any]]]
) -> None:
    """The policy network at the largest searched sizes holds at most ``MAX_WEIGHTS``
    weights: its input layer grows with ``num_users``, ``num_rbs`` and ``frame_stack``."""
    from dnt_rllib.env.observation import observation_dim

    if model.get("kind") == "set" or "set_hiddens" in model:
        check_set_size(env, model, space)
        return
    env = largest_input(env, space)
    outputs = 2 if env.action_mode == "binary" else env.num_rbs + 1
    lstm = space["model.use_lstm"][1] if "model.use_lstm" in space else [model.get("use_lstm")]
    for use_lstm in dict.fromkeys(lstm):  # with and without the LSTM, when searched
        check_network_size(f"{OWNER}.model", {**model, **model_extremes(space),
                           "use_lstm": bool(use_lstm)}, observation_dim(env), outputs,
                           input_fields(env))  # fmt: skip


def replay_capacity(
    training: dict[str, dict[str, Any]], space: dict[str, tuple[str, list[Any]]], algorithm: str
) -> int:
    """The largest replay buffer (transitions) a trial may fill: the largest
    ``replay_buffer_config.capacity`` of the off-policy algorithms, searched values
    included; 0 without an off-policy algorithm."""
    algos = [a for a in algorithms_of(space, algorithm) if a in OFF_POLICY]
    if not algos:
        return 0
    buffers = [training.get(a, {}).get("replay_buffer_config") or {} for a in algos]
    if "training.replay_buffer_config" in space:
        buffers += space["training.replay_buffer_config"][1]
    return max(int(b.get("capacity", REPLAY_BUFFER["capacity"])) for b in buffers)


def check_set_size(
    env: SystemConfig, model: dict[str, Any], space: dict[str, tuple[str, list[Any]]]
) -> None:
    """A set model fits every searched env (:func:`check_set_model`: a set observation, the
    binary action) and holds at most ``MAX_WEIGHTS`` weights in its per-item MLPs and in its
    pooled MLP at the largest searched ``history`` and ``frame_stack`` (U and N size
    nothing)."""
    from dnt_rllib.env.observation import set_layout

    modes = space["env.observation_mode"][1] if "env.observation_mode" in space else [None]
    actions = space["env.action_mode"][1] if "env.action_mode" in space else [None]
    for mode, action in itertools.product(modes, actions):
        changes = {"observation_mode": mode, "action_mode": action}
        mine = env.replace(**{k: v for k, v in changes.items() if v is not None})
        try:
            check_set_model(model, mine)
        except ConfigError as err:
            raise ConfigError(f"{OWNER}.{err}") from None
    big = largest_input(env, space)
    items, inputs = set_model_weights(model, set_layout(big))
    if items > MAX_WEIGHTS:
        raise ConfigError(
            f"{OWNER}.model.set_hiddens = {short(model.get('set_hiddens'))}: the per-user and "
            f"per-RB layers hold {items / 1e6:,.0f} M weights, more than "
            f"{MAX_WEIGHTS / 1e6:.1f} M; lower set_hiddens"
        )
    check_network_size(f"{OWNER}.model", {**model, **model_extremes(space)}, inputs, 2)


def check_replay_size(
    env: SystemConfig,
    training: dict[str, dict[str, Any]],
    replay: str,
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """``replay.kind: fast`` allocates its ring of ``capacity`` transitions (o_t and o_{t+1}
    each, stacked frames included) when training starts: at the largest searched capacity and
    observation it must fit in this machine's memory, beside the process."""
    from dnt_rllib.config import PROCESS_BYTES, physical_memory
    from dnt_rllib.env.observation import observation_dim

    kinds = space["replay.kind"][1] if "replay.kind" in space else [replay]
    capacity = replay_capacity(training, space, algorithm)
    if "fast" not in kinds or not capacity:
        return
    env = largest_input(env, space)
    dim = observation_dim(env)
    need = PROCESS_BYTES + capacity * TransitionRing.slot_bytes(dim)
    limit = physical_memory()
    if need > limit:
        fields = input_fields(env)
        names = [part.split(" = ")[0] for part in fields.split(", ")]
        raise ConfigError(
            f"{OWNER}.training: a replay ring of {capacity:,} transitions with observations "
            f"of {dim:,} entries ({fields}) needs ~{need / 2**30:,.1f} GiB, more than this "
            f"machine's {limit / 2**30:,.1f} GiB of memory; lower replay_buffer_config."
            f"capacity, {', '.join(names[:-1])} or {names[-1]}"
        )


def check_buffer_and_replay(
    training: dict[str, dict[str, Any]],
    replay: str,
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """``replay.kind: fast`` samples uniformly: refuse it with a prioritised buffer."""
    kinds = space["replay.kind"][1] if "replay.kind" in space else [replay]
    if "fast" not in kinds:
        return
    for algo in [a for a in algorithms_of(space, algorithm) if a in OFF_POLICY]:
        buffers = [training.get(algo, {}).get("replay_buffer_config") or {}]
        if "training.replay_buffer_config" in space:
            buffers += space["training.replay_buffer_config"][1]
        if any("Prioritized" in str(b.get("type", "")) for b in buffers):
            raise ConfigError(
                f"{OWNER}.training.{algo}.replay_buffer_config.type = "
                "'PrioritizedEpisodeReplayBuffer': replay.kind = fast samples uniformly; "
                "set replay: {kind: rllib} for a prioritised buffer"
            )


#: The keys :func:`check_together` reads, and whether a searched value's ends stand for it
#: (numbers: its checks are monotone in each) or every value must be tried.
TOGETHER_KEYS = {"model.use_lstm": False, "model.max_seq_len": True, "replay.kind": False,
                 "training.burn_in_len": True, "training.n_step": True,
                 "training.minibatch_size": True, "training.train_batch_size_per_learner": True,
                 "training.replay_buffer_config": False}  # fmt: skip


def check_every_point(
    training: dict[str, dict[str, Any]],
    model: dict[str, Any],
    replay: str,
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """:func:`check_together` at every point the search can reach (every algorithm, a
    number's ends, every other value): SAC with an LSTM, DQN's LSTM on the fast replay
    path, a PPO minibatch above its batch, … are refused before any trial meets them."""
    searched = [key for key in TOGETHER_KEYS if key in space]
    options = []
    for key in searched:
        domain, args = space[key]
        values = [args[0], args[1] - 1] if domain == "randint" else list(args)
        options.append([min(values), max(values)] if TOGETHER_KEYS[key] else values)
    for algo in algorithms_of(space, algorithm):
        for combo in itertools.product(*options):
            point = dict(zip(searched, combo, strict=True))
            values: dict[str, dict[str, Any]] = {"model": {}, "training": {}, "replay": {}}
            for key, value in point.items():
                section, name = key.split(".", 1)
                values[section][name] = value
            mine = {**model, **values["model"]}
            effective = {**PAPER_TRAINING[algo], **training.get(algo, {}), **values["training"]}
            kind = values["replay"].get("kind", replay)
            try:
                check_together(algo, mine, effective, kind)
            except ConfigError as err:
                if not point and "algorithm" not in space:
                    raise ConfigError(f"{OWNER}.{err}") from None
                shown = ", ".join(f"{k} = {short(v)}" for k, v in
                                  {"algorithm": algo, **point}.items())  # fmt: skip
                raise ConfigError(f"{OWNER}.search_space: the point {shown}: {err}") from None
