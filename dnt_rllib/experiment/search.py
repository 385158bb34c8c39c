"""The experiment's ``search_space``: its domains, what each key may sample, and the
points ``search_alg`` starts from."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.fields import (
    KIND_SECTIONS,
    OWNER,
    SEEDS,
    mapping_of,
    section_kind,
    section_reward,
)
from dnt_rllib.trial.settings import (
    ALGORITHMS,
    LSTM_SIZES,
    MODEL_SHAPE,
    TRAINING_SETTINGS,
    check_model,
    check_training,
)
from dnt_rllib.validation import ConfigError, check_choice, check_int, short

DOMAINS = {"grid", "choice", "uniform", "loguniform", "randint"}


def section_search(
    values: Any, env: SystemConfig, training: dict[str, dict[str, Any]], algorithm: str
) -> dict[str, tuple[str, list[Any]]]:
    values = mapping_of(values, "search_space")
    space: dict[str, tuple[str, list[Any]]] = {}
    for key, spec in values.items():
        owner = f"{OWNER}.search_space.{key}"
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DOMAINS:
            raise ConfigError(
                f"{owner}: must be one domain, e.g. {{grid: [...]}}; domains: "
                + ", ".join(sorted(DOMAINS))
            )
        domain, args = next(iter(spec.items()))
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{owner}.{domain}: must be a non-empty list")
        if domain in ("uniform", "loguniform", "randint") and len(args) != 2:
            raise ConfigError(f"{owner}.{domain}: must be [low, high]")
        _check_domain(key, owner, domain, args, training, algorithm)
        # what the domain can sample: grid/choice their values, uniform/loguniform their
        # ends, randint its ends low and high - 1 (Tune's randint excludes high)
        samples = [args[0], args[1] - 1] if domain == "randint" else args
        for value in samples:
            _check_search_value(key, owner, value, env, training, algorithm)
        space[key] = (domain, list(args))
    algos = list(dict.fromkeys(space.get("algorithm", ("grid", [algorithm]))[1]))
    for key, (domain, args) in space.items():
        if key.startswith("training."):
            samples = [args[0], args[1] - 1] if domain == "randint" else args
            for algo in algos:  # a searched key goes to every algorithm's settings
                for value in samples:
                    check_training(
                        algo, f"{OWNER}.search_space.training", {key.split(".", 1)[1]: value}
                    )
            if domain == "grid" and len(algos) > 1:
                # each algorithm's settings would hold its own copy of the grid, and Tune
                # would run every combination of the copies: each point once per other copy
                raise ConfigError(
                    f"{OWNER}.search_space.{key}: a grid over a training setting needs one "
                    "algorithm; with algorithm searched use choice, or one experiment per "
                    "algorithm"
                )
    _check_env_corners(space, env)
    if {"model.width", "model.depth"} & space.keys():  # the widest and deepest together
        check_model(f"{OWNER}.search_space", model_extremes(space))
    return space


#: Most env combinations :func:`_check_env_corners` tries (beyond: each value alone).
MAX_CORNERS = 4096


def _check_env_corners(space: dict[str, tuple[str, list[Any]]], env: SystemConfig) -> None:
    """Every combination of the searched env fields' values (a range's two ends) must be a
    valid network: fields checked against each other (``step_size < area_size / 2``,
    ``history < episode_length``, memory) would otherwise fail in a trial, after the
    earlier grid points' twins were trained. The constraints are monotone in each field,
    so a range's ends stand for it."""
    keys = [k for k in space if k.startswith("env.")]
    options = []
    for key in keys:
        domain, args = space[key]
        options.append([args[0], args[1] - 1] if domain == "randint" else list(args))
    if len(keys) < 2 or math.prod(len(o) for o in options) > MAX_CORNERS:
        return
    for combo in itertools.product(*options):
        values = {k.split(".", 1)[1]: v for k, v in zip(keys, combo, strict=True)}
        try:
            env.replace(**values)
        except ConfigError as err:
            shown = ", ".join(f"{k} = {short(v)}" for k, v in values.items())
            raise ConfigError(
                f"{OWNER}.search_space: the point {shown} is not a valid network ({err})"
            ) from None


def model_extremes(space: dict[str, tuple[str, list[Any]]]) -> dict[str, int]:
    """The largest ``model.width``, ``model.depth`` and ``model.lstm_cell_size`` the search
    space can sample."""
    out: dict[str, int] = {}
    for name in ("width", "depth", "lstm_cell_size"):
        if f"model.{name}" in space:
            domain, args = space[f"model.{name}"]
            out[name] = args[1] - 1 if domain == "randint" else max(args)
    return out


def _is_int_key(key: str, algorithm: str, training: dict) -> bool:
    """Whether the searched key takes integers only."""
    if key == "seed":
        return True
    section, _, name = key.partition(".")
    if section == "env":
        types = {f.name: f.type for f in dataclasses.fields(SystemConfig)}
        return types.get(name) in ("int", int)
    if section == "training":
        return any(
            settings[name].kind == "int"
            for settings in TRAINING_SETTINGS.values()
            if name in settings
        )
    return section == "model" and name in {*MODEL_SHAPE, *LSTM_SIZES}


def _check_domain(
    key: str, owner: str, domain: str, args: list[Any], training: dict, algorithm: str
) -> None:
    """Refuse domains that sample what the key cannot take."""
    if key == "algorithm" and domain not in ("grid", "choice"):
        raise ConfigError(f"{owner}.{domain}: the algorithm is searched with grid or choice")
    if domain in ("grid", "choice"):
        return
    low, high = args
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, int | float):
            raise ConfigError(f"{owner}.{domain} = {short(args)}: low and high must be numbers")
    if domain in ("uniform", "loguniform") and _is_int_key(key, algorithm, training):
        raise ConfigError(
            f"{owner}.{domain}: {key} takes integers and {domain} samples floats; "
            "use randint, grid or choice"
        )
    if domain == "randint":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise ConfigError(f"{owner}.randint = {short(args)}: low and high must be integers")
        if high <= low + 1:
            raise ConfigError(
                f"{owner}.randint = {short(args)}: samples low..high-1, so high must be >= low + 2 "
                "(for one value, set it instead of searching)"
            )
    elif not low < high:
        raise ConfigError(f"{owner}.{domain} = {short(args)}: must be [low, high] with low < high")
    if domain == "loguniform" and low <= 0:
        raise ConfigError(f"{owner}.loguniform = {short(args)}: low must be > 0")


def _check_search_value(
    key: str, owner: str, value: Any, env: SystemConfig, training: dict, algorithm: str
) -> None:
    if key == "algorithm":
        check_choice(owner, "value", value, tuple(ALGORITHMS))
    elif key == "seed":
        check_int(owner, "value", value, SEEDS)
    elif key.startswith("env."):
        name = key.split(".", 1)[1]
        if name not in SystemConfig.field_names():
            raise ConfigError(f"{owner}: unknown env field {short(name)}")
        try:
            env.replace(**{name: value})
        except ConfigError as err:
            raise ConfigError(f"{owner}: {err}") from None
    elif key.startswith("training."):
        pass  # checked for every searched algorithm once the space is known
    elif key == "model.kind":
        raise ConfigError(
            f"{owner}: model.kind is not searched (the set model needs its own observation "
            "mode); run one experiment per model kind"
        )
    elif key.startswith("model."):
        check_model(owner, {key.split(".", 1)[1]: value})
    elif key.startswith("reward."):
        section_reward({key.split(".", 1)[1]: value})
    elif key.split(".", 1)[0] in KIND_SECTIONS:
        section, name = key.split(".", 1)
        section_kind(section, {name: value})
    else:
        raise ConfigError(
            f"{owner}: unknown search key; allowed: algorithm, seed, env.<field>, "
            "training.<key>, model.<field>, reward.scale, reward.baseline, replay.kind, "
            "learner.kind"
        )


def check_point(owner: str, value: Any, domain: tuple[str, list[Any]]) -> None:
    """A starting point must be one the domain can sample."""
    kind, args = domain
    if kind in ("grid", "choice"):
        if not any(same_value(value, arg) for arg in args):
            raise ConfigError(f"{owner} = {short(value)}: must be one of {short(args)}")
        return
    low, high = args
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if kind == "randint":
        if not (number and isinstance(value, int) and low <= value < high):
            raise ConfigError(
                f"{owner} = {short(value)}: must be an integer in the randint range "
                f"[{low}, {high - 1}]"
            )
    elif not (number and low <= value <= high):
        raise ConfigError(f"{owner} = {short(value)}: must be in the {kind} range [{low}, {high}]")


def same_value(value: Any, arg: Any) -> bool:
    """``value == arg`` of the same kind: ``true`` is not 1, nor ``"1"`` 1."""
    numbers = (int, float)
    if isinstance(value, bool) or isinstance(arg, bool):
        return isinstance(value, bool) and isinstance(arg, bool) and value == arg
    if isinstance(value, numbers) and isinstance(arg, numbers):
        return value == arg
    return type(value) is type(arg) and value == arg
