"""Field checks shared by every config type: one clear line per bad value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Range:
    """A numeric interval; ``None`` leaves a side unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"in {left}{self.lo:g}, {self.hi:g}{right}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "finite"


def check_int(owner: str, name: str, value: Any, rng: Range) -> int:
    """Return ``value`` as an int, or raise a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} = {value!r}: must be an integer {rng.describe()}")
    if not rng.contains(value):
        raise ConfigError(f"{owner}.{name} = {value!r}: must be an integer {rng.describe()}")
    return value


def check_float(owner: str, name: str, value: Any, rng: Range) -> float:
    """Return ``value`` as a float, or raise a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{name} = {value!r}: must be a number {rng.describe()}")
    if not rng.contains(float(value)):
        raise ConfigError(f"{owner}.{name} = {value!r}: must be a number {rng.describe()}")
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{owner}.{name} = {value!r}: must be one of {allowed}")
    return value


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} = {value!r}: must be true or false")
    return value


def check_pair(owner: str, name: str, value: Any, rng: Range) -> tuple[float, float]:
    """Return a 2-tuple of floats (e.g. a coordinate), each checked against ``rng``."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ConfigError(f"{owner}.{name} = {value!r}: must be a pair [a, b] of numbers")
    return (
        check_float(owner, f"{name}[0]", value[0], rng),
        check_float(owner, f"{name}[1]", value[1], rng),
    )


def check_keys(owner: str, given: dict[str, Any], allowed: set[str]) -> None:
    """Refuse keys that are not fields, naming the first one and the allowed set."""
    if not isinstance(given, dict):
        raise ConfigError(f"{owner}: expected a mapping of fields, got {type(given).__name__}")
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ConfigError(
            f"{owner}: unknown field {unknown[0]!r}; allowed fields: {', '.join(sorted(allowed))}"
        )


def read_yaml(path: str | Path, what: str = "--config") -> Any:
    """The YAML document in ``path`` (safe loader: no Python objects), or one line naming the
    file: missing, a folder, unreadable, not UTF-8, not YAML or a tag the safe loader refuses.
    An empty file is ``None``."""
    import yaml

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a folder; give a YAML file") from None
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{what} {path}: not valid YAML ({first})") from None


def read_yaml_mapping(path: str | Path, what: str, fields: str) -> dict[str, Any]:
    """:func:`read_yaml` that must give a mapping (``fields`` says of what); empty → {}."""
    value = read_yaml(path, what)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{what} {path}: must be a YAML mapping of {fields}, got {type(value).__name__}"
        )
    return value
