"""The experiment YAML's small shared pieces: its owner name in errors, the seed range, the
``reward`` and kind sections, and the type checks of a mapping, a flag and a name."""

from __future__ import annotations

import dataclasses
from typing import Any

from dnt_rllib.rllib_ext.fast_replay import REPLAY_KINDS
from dnt_rllib.rllib_ext.lean_learner import LEARNER_KINDS
from dnt_rllib.trial.settings import REPLAY_DEFAULTS
from dnt_rllib.trial.spec import RewardSpec
from dnt_rllib.validation import ConfigError, Range, check_choice, check_float, check_keys, short

OWNER = "experiment"


#: Trial and search seeds: numpy's legacy seeding (RLlib's, Optuna's) takes < 2^32, and
#: RLlib adds env runner and env offsets to the trial seed.
SEEDS = Range(0, 2**31 - 1)


REWARD_KEYS = {"scale", "baseline"}


#: Sections that choose one implementation: ``kind`` only, its values and its default.
KIND_SECTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "replay": (REPLAY_KINDS, REPLAY_DEFAULTS["kind"]),
    "learner": (LEARNER_KINDS, None),  # None: each trial's default (default_learner)
}


def mapping_of(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{OWNER}.{name}: must be a mapping, got {type(value).__name__}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{OWNER}.{name} = {short(value)}: must be true or false")
    return value


def nonempty_string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{OWNER}.{name} = {short(value)}: must be a non-empty string")
    return value


def section_reward(values: Any) -> RewardSpec:
    values = mapping_of(values, "reward")
    owner = f"{OWNER}.reward"
    check_keys(owner, values, REWARD_KEYS)
    out = RewardSpec()
    if "scale" in values:
        scale = check_float(owner, "scale", values["scale"], Range(0.0, 1e6, lo_open=True))
        out = dataclasses.replace(out, scale=scale)
    if "baseline" in values:
        out = dataclasses.replace(out, baseline=boolean(values["baseline"], "reward.baseline"))
    return out


def section_kind(section: str, values: Any) -> str | None:
    """A :data:`KIND_SECTIONS` section's ``kind``: one of its values, or the default."""
    kinds, default = KIND_SECTIONS[section]
    values = mapping_of(values, section)
    owner = f"{OWNER}.{section}"
    check_keys(owner, values, {"kind"})
    if "kind" in values:
        return check_choice(owner, "kind", values["kind"], kinds)
    return default


def algorithms_of(space: dict[str, tuple[str, list[Any]]], algorithm: str) -> list[str]:
    """Every algorithm a trial may run, in order, once each."""
    return list(dict.fromkeys(space["algorithm"][1] if "algorithm" in space else [algorithm]))
