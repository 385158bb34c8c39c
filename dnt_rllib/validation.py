"""Field checks shared by every config type: one clear line per bad value."""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnt_rllib.common import first_line


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""


#: The most characters of a value an error line shows.
SHORT = 80
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 4, 6, 6
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = SHORT, 40, SHORT


def short(value: object, limit: int = SHORT) -> str:
    """``repr(value)`` for an error line: at most ``limit`` characters, built without ever
    expanding more than a few items of each level (a nested value stays cheap)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_text(key: object) -> str:
    """A key for an error line: a short string as it is, anything else :func:`short`."""
    return key if isinstance(key, str) and len(key) <= SHORT else short(key)


def _number(value: float) -> str:
    """An interval end as written: integers in full, floats short (``1e-06``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """A numeric interval; ``None`` leaves a side unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False  # (an int of any size compares exactly)
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"in {left}{_number(self.lo)}, {_number(self.hi)}{right}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_number(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_number(self.hi)}"
        return "finite"


def check_int(owner: str, name: str, value: Any, rng: Range) -> int:
    """Return ``value`` as an int, or raise a one-line :class:`ConfigError` naming
    ``owner.name`` (``owner`` alone when ``name`` is empty, e.g. a command-line flag)."""
    if isinstance(value, bool) or not isinstance(value, int) or not rng.contains(value):
        where = f"{owner}.{name}" if name else owner
        raise ConfigError(f"{where} = {short(value)}: must be an integer {rng.describe()}")
    return value


def check_float(owner: str, name: str, value: Any, rng: Range) -> float:
    """Return ``value`` as a float, or raise a one-line :class:`ConfigError` (naming as
    :func:`check_int`)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not rng.contains(float(value))
    ):
        where = f"{owner}.{name}" if name else owner
        raise ConfigError(f"{where} = {short(value)}: must be a number {rng.describe()}")
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{owner}.{name} = {short(value)}: must be one of {allowed}")
    return value


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} = {short(value)}: must be true or false")
    return value


def check_pair(owner: str, name: str, value: Any, rng: Range) -> tuple[float, float]:
    """Return a 2-tuple of floats (e.g. a coordinate), each checked against ``rng``."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ConfigError(f"{owner}.{name} = {short(value)}: must be a pair [a, b] of numbers")
    return (
        check_float(owner, f"{name}[0]", value[0], rng),
        check_float(owner, f"{name}[1]", value[1], rng),
    )


def check_keys(owner: str, given: dict[str, Any], allowed: set[str]) -> None:
    """Refuse keys that are not fields, naming the first one and the allowed set."""
    if not isinstance(given, dict):
        raise ConfigError(f"{owner}: expected a mapping of fields, got {type(given).__name__}")
    unknown = [key for key in given if key not in allowed]
    if unknown:
        raise ConfigError(
            f"{owner}: unknown field {short(unknown[0])}; "
            f"allowed fields: {', '.join(sorted(allowed))}"
        )


class _RefusedYAMLError(Exception):
    """YAML the strict loader refuses although it is valid YAML."""


def _strict_loader() -> type:
    """PyYAML's safe loader that also refuses aliases (``*name``: a few bytes can expand to
    gigabytes) and a mapping key given twice (YAML would keep the last, silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """:func:`read_yaml`'s loader (see :func:`_strict_loader`)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _RefusedYAMLError(
                    f"line {event.start_mark.line + 1}: alias *{key_text(event.anchor)} is not "
                    "accepted; write the value out in full"
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    twice = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the safe loader refuses it itself
                    continue
                if twice:
                    raise _RefusedYAMLError(
                        f"line {key_node.start_mark.line + 1}: key {key_text(key)} given "
                        "twice; give each key once"
                    )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def read_yaml(path: str | Path, what: str = "--config") -> Any:
    """The YAML document in ``path`` (safe loader: no Python objects, no aliases, no key
    twice), or one line naming the file: missing, a folder, unreadable, not UTF-8, not YAML,
    a tag the safe loader refuses, an alias or a repeated key. An empty file is ``None``."""
    import yaml

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_strict_loader())  # a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a folder; give a YAML file") from None
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path}: not UTF-8 text (byte {err.start})") from None
    except _RefusedYAMLError as err:
        raise ConfigError(f"{what} {path}: {err}") from None
    except yaml.YAMLError as err:
        first = first_line(err)
        raise ConfigError(f"{what} {path}: not valid YAML ({first[:200]})") from None


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


def check_output(path: str | Path, flag: str, folder: bool = False, writable: bool = True) -> Path:
    """``path``, if a file (``folder``: a folder) can be written there: it is not of the other
    kind, and its nearest existing ancestor is a writable folder (not asked, ``writable``
    false: a cache that may already hold what is read). One line naming ``flag`` otherwise;
    nothing is created."""
    import os

    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; give a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    above = path.parent if not folder or not path.exists() else path
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"{flag} {path}: {above} is a file, so no folder can be made there")
    if writable and not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {above} (permission denied)")
    return path


#: Figure formats a ``--plot`` file may end in (none: PNG, written under the name given).
PLOT_SUFFIXES = ("", ".png", ".pdf", ".svg")


def check_plot(path: str | Path, flag: str) -> Path:
    """:func:`check_output` for a figure, whose name ends in one of :data:`PLOT_SUFFIXES`."""
    path = check_output(path, flag)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(
            f"{flag} {path}: must end in .png, .pdf or .svg (or nothing: PNG), not {path.suffix}"
        )
    return path


#: MLflow tracking URI schemes (a database's ``+driver`` suffix aside).
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql",
                    "databricks")  # fmt: skip
SQLITE_HEADER = b"SQLite format 3\0"


def check_tracking_uri(uri: str, what: str, write: bool = False, probe_s: float = 0.0) -> str:
    """``uri`` if MLflow can use it, else one line naming ``what``: a known scheme; a SQLite
    file that is one (and, ``write``, a folder it can be written in); a plain path that is a
    folder; with ``probe_s`` > 0, an HTTP server that accepts a connection within that many
    seconds (MLflow itself retries for minutes)."""
    import os
    import socket
    from urllib.parse import urlsplit

    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme and scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"{what} = {short(uri)}: unknown scheme {key_text(scheme)}://; use sqlite:///PATH, "
            "http(s)://HOST:PORT, file:///FOLDER or a database URI (postgresql, mysql, mssql)"
        )
    if scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///")).expanduser()
        if path.is_dir():
            raise ConfigError(f"{what} = {short(uri)}: {path} is a folder, not a SQLite file")
        if path.exists():
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
            if head and head != SQLITE_HEADER:
                raise ConfigError(f"{what} = {short(uri)}: {path} is not a SQLite database")
        if write:
            check_output(path, what)
            if path.exists() and not os.access(path, os.W_OK):
                raise ConfigError(f"{what} = {short(uri)}: cannot write {path} (read-only)")
    elif scheme in ("", "file"):
        path = Path(urlsplit(uri).path if scheme else uri).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(
                f"{what} = {short(uri)}: {path} is a file; a file store is a folder "
                "(for a SQLite file write sqlite:///PATH)"
            )
        if write:
            check_output(path, what, folder=True)
    elif scheme in ("http", "https") and probe_s > 0:
        parts = urlsplit(uri)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise ConfigError(f"{what} = {short(uri)}: the port must be a number") from None
        try:
            socket.create_connection((parts.hostname or "", port), timeout=probe_s).close()
        except OSError as err:
            raise ConfigError(
                f"{what} = {short(uri)}: no MLflow server answers there "
                f"({err.strerror or err}, within {probe_s:g} s)"
            ) from None
    return uri
