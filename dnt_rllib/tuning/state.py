"""An experiment's folder: where it is, the YAML it started with (what ``--resume``
compares) and the lock that keeps two ``tune`` processes out of one folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.validation import ConfigError, short


def experiment_path(exp: ExperimentConfig) -> str:
    return f"{exp.storage_path.rstrip('/')}/{exp.name}"


LOCK_FILE = ".dnt_tune.lock"


#: The experiment's YAML as parsed, saved when it starts: ``--resume`` compares against it.
STARTED_FILE = "dnt_experiment.json"


def _normalised(raw: Any) -> Any:
    """A parsed YAML mapping as JSON gives it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(raw, default=str, sort_keys=True))


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old → new`` for each leaf where two parsed configs differ (dotted keys)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted({*old, *new}, key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                out.append(f"{name}: {short(old[key])} → (removed)")
            elif key not in old:
                out.append(f"{name}: (absent) → {short(new[key])}")
            else:
                out += differences(old[key], new[key], name)
        return out
    return [] if old == new else [f"{prefix or '(file)'}: {short(old)} → {short(new)}"]


def save_started(exp: ExperimentConfig) -> None:
    """Record the experiment's parsed YAML in its folder (local storage only)."""
    if "://" not in exp.storage_path:
        path = Path(experiment_path(exp)) / STARTED_FILE
        path.write_text(json.dumps(_normalised(exp.raw), indent=1, sort_keys=True))


def check_resume_config(exp: ExperimentConfig) -> str | None:
    """Refuse ``--resume`` with a YAML that differs from the one the experiment started with
    (Tune resumes the saved trials' config, whatever the file now says), naming the first
    differences. A note instead when the experiment did not record it (older, or remote)."""
    if "://" in exp.storage_path:
        return f"note: {exp.storage_path} is remote; --resume cannot compare the config"
    path = Path(experiment_path(exp)) / STARTED_FILE
    if not path.is_file():
        return f"note: {path} is missing (an older experiment); the config is not compared"
    try:
        started = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"--resume: {path} is damaged; cannot compare the config") from None
    changed = differences(started, _normalised(exp.raw))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ConfigError(
            f"--resume: {exp.source} is not the config this experiment started with "
            f"({'; '.join(changed[:3])}{more}); Tune would resume the old one: restore the "
            "file, or start a new experiment under another name"
        )
    return None


def check_exists(exp: ExperimentConfig, resume: bool, exists: bool) -> None:
    """Refuse to start over an experiment, or to resume one that is not there."""
    if resume and not exists:
        raise ConfigError(f"--resume: no experiment to resume at {experiment_path(exp)}")
    if exists and not resume:
        raise ConfigError(
            f"experiment.name = {short(exp.name)}: {experiment_path(exp)} already holds this "
            "experiment; pass --resume to continue it, or choose another name"
        )


def lock_experiment(exp: ExperimentConfig) -> Any:
    """Take ``<experiment folder>/.dnt_tune.lock`` (local storage), or refuse in one line if
    another ``tune`` process holds it: two runs never share an experiment folder. The lock
    is released when the returned object is dropped or the process ends. Remote storage
    (``s3://…``) is not locked."""
    if "://" in exp.storage_path:
        return None
    from filelock import FileLock, Timeout

    folder = Path(experiment_path(exp))
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"experiment.name = {short(exp.name)}: another `tune` process is running {folder} "
            "now; wait for it, or choose another name"
        ) from None
    return lock
