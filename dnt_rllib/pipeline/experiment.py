"""`ExperimentConfig`: one Tune experiment, read from a YAML file and validated up front.

Schema (every key optional but ``algorithm``; see ``tune_configs/`` for examples)::

    name: sac                       # Tune experiment folder and default MLflow experiment
    algorithm: SAC                  # SAC or DQN (or search over it, see search_space)
    training:                       # per algorithm: RLlib AlgorithmConfig.training() kwargs,
      SAC: {actor_lr: 1.0e-4}       #   over the paper's defaults (pipeline/algorithms.py)
    model: {fcnet_hiddens: [256, 256]}   # RLlib DefaultModelConfig fields
    env: {epsilon: 0.987}           # SystemConfig fields
    seed: 0                         # trial seed (RLlib's, and the env runners' base seed)
    search_space:                   # Tune domains; keys: algorithm, seed, env.F, training.K
      seed: {grid: [0, 1, 2]}       #   domains: grid, choice, uniform, loguniform, randint
      env.epsilon: {grid: [0.9, 0.987]}
    num_samples: 1                  # repeats of the search space (random search draws)
    stop: {num_env_steps_sampled_lifetime: 30000, training_iteration: 200, time_total_s: 1200}
    resources:                      # per trial; Tune reserves what RLlib requests for it
      num_env_runners: 0            #   remote env runners, 1 CPU each (0..64)
      num_envs_per_env_runner: 8    #   vectorised envs per runner (1..256)
      num_learners: 0               #   0: learn in the trial process; n: n learner actors
      num_gpus_per_learner: 0       #   GPUs per learner (>= 0; fractions < 1, or whole)
      max_concurrent_trials: 1      #   trials at a time (default: as resources allow)
    checkpoint: {frequency: 5, num_to_keep: 2}
    max_failures: 2                 # retries of a crashed trial
    storage_path: ray_results       # Tune storage (local folder, or s3://… on a cluster)
    mlflow: {tracking_uri: null, experiment_name: null}   # null → sqlite:///mlflow.db, name
    evaluation: {episodes: 100, seed: 10000}    # final evaluation vs. the baselines

Any unknown key or bad value raises :class:`ConfigError` with one line, before Ray starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.evaluation import check_seeds
from dnt_rllib.pipeline.algorithms import ALGORITHMS, check_model, check_training
from dnt_rllib.policies import TRIAL_PERIODS, baseline_policies
from dnt_rllib.validation import (
    ConfigError,
    Range,
    check_choice,
    check_float,
    check_int,
    check_keys,
    read_yaml_mapping,
)

TOP_KEYS = {
    "name",
    "algorithm",
    "training",
    "model",
    "env",
    "seed",
    "search_space",
    "num_samples",
    "stop",
    "resources",
    "checkpoint",
    "max_failures",
    "storage_path",
    "mlflow",
    "evaluation",
}
STOP_KEYS = {"num_env_steps_sampled_lifetime", "training_iteration", "time_total_s"}
EVALUATION_KEYS = {
    "episodes",
    "seed",
    "reference",
    "curve_episodes",
    "curve_seed",
    "curve_interval",
}
RESOURCE_KEYS = {
    "num_env_runners",
    "num_envs_per_env_runner",
    "num_learners",
    "num_gpus_per_learner",
    "max_concurrent_trials",
}
DOMAINS = {"grid", "choice", "uniform", "loguniform", "randint"}
OWNER = "experiment"


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment; ``search_space`` holds (key, domain, values) triples."""

    name: str
    algorithm: str
    training: dict[str, dict[str, Any]]
    model: dict[str, Any]
    env: SystemConfig
    seed: int
    search_space: dict[str, tuple[str, list[Any]]]
    num_samples: int
    stop: dict[str, float]
    num_env_runners: int
    num_envs_per_env_runner: int
    max_concurrent_trials: int | None
    checkpoint_frequency: int
    checkpoint_num_to_keep: int
    max_failures: int
    storage_path: str
    tracking_uri: str
    mlflow_experiment: str
    evaluation_episodes: int
    evaluation_seed: int
    evaluation_reference: str | None
    curve_episodes: int
    curve_seed: int
    curve_interval: int
    num_learners: int = 0
    num_gpus_per_learner: float = 0.0
    source: str = ""  # the YAML file it came from
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def algorithms(self) -> list[str]:
        """Every algorithm a trial of this experiment may run."""
        if "algorithm" in self.search_space:
            return list(dict.fromkeys(self.search_space["algorithm"][1]))
        return [self.algorithm]

    def trial_base(self) -> dict[str, Any]:
        """The fixed part of every trial's parameters (before the search space)."""
        return {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "env": self.env.to_dict(),
            "training": self.training,
            "model": self.model,
            "num_env_runners": self.num_env_runners,
            "num_envs_per_env_runner": self.num_envs_per_env_runner,
            "num_learners": self.num_learners,
            "num_gpus_per_learner": self.num_gpus_per_learner,
            "stop": self.stop,
            "checkpoint_frequency": self.checkpoint_frequency,
            "evaluation_episodes": self.evaluation_episodes,
            "evaluation_seed": self.evaluation_seed,
            "evaluation_reference": self.evaluation_reference,
            "curve_episodes": self.curve_episodes,
            "curve_seed": self.curve_seed,
            "curve_interval": self.curve_interval,
        }


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML (safe loader)."""
    path = Path(path)
    raw = read_yaml_mapping(path, "--config", "experiment keys (see tune_configs/)")
    return parse_experiment(raw, source=str(path))


def parse_experiment(raw: Mapping[str, Any], source: str = "") -> ExperimentConfig:
    """Validate an experiment mapping; raise one-line :class:`ConfigError` on the first fault."""
    raw = dict(raw)
    check_keys(OWNER, raw, TOP_KEYS)
    if "algorithm" not in raw:
        raise ConfigError(f"{OWNER}.algorithm: missing; must be one of {', '.join(ALGORITHMS)}")
    algorithm = check_choice(OWNER, "algorithm", raw["algorithm"], tuple(ALGORITHMS))
    name = _folder_name(raw.get("name", Path(source).stem or "dnt"), "name")
    env = _section_env(raw.get("env") or {})
    training = _section_training(raw.get("training") or {})
    model = check_model(f"{OWNER}.model", raw.get("model") or {})
    seed = check_int(OWNER, "seed", raw.get("seed", 0), Range(0, None))
    space = _section_search(raw.get("search_space") or {}, env, training, algorithm)

    stop = _mapping(raw.get("stop") or {"training_iteration": 100}, "stop")
    check_keys(f"{OWNER}.stop", stop, STOP_KEYS)
    for key, value in stop.items():
        check_int(f"{OWNER}.stop", key, value, Range(1, None))
    res = _mapping(raw.get("resources") or {}, "resources")
    check_keys(f"{OWNER}.resources", res, RESOURCE_KEYS)
    ckpt = _mapping(raw.get("checkpoint") or {}, "checkpoint")
    check_keys(f"{OWNER}.checkpoint", ckpt, {"frequency", "num_to_keep"})
    mlf = _mapping(raw.get("mlflow") or {}, "mlflow")
    check_keys(f"{OWNER}.mlflow", mlf, {"tracking_uri", "experiment_name"})
    ev = _mapping(raw.get("evaluation") or {}, "evaluation")
    check_keys(f"{OWNER}.evaluation", ev, EVALUATION_KEYS)
    evaluation = _section_evaluation(ev)
    max_conc = res.get("max_concurrent_trials")

    return ExperimentConfig(
        name=name,
        algorithm=algorithm,
        training=training,
        model=model,
        env=env,
        seed=seed,
        search_space=space,
        num_samples=check_int(OWNER, "num_samples", raw.get("num_samples", 1), Range(1, None)),
        stop={k: int(v) for k, v in stop.items()},
        num_env_runners=check_int(
            f"{OWNER}.resources", "num_env_runners", res.get("num_env_runners", 0), Range(0, 64)
        ),
        num_envs_per_env_runner=check_int(
            f"{OWNER}.resources",
            "num_envs_per_env_runner",
            res.get("num_envs_per_env_runner", 8),
            Range(1, 256),
        ),
        **_section_learners(res),
        max_concurrent_trials=None
        if max_conc is None
        else check_int(f"{OWNER}.resources", "max_concurrent_trials", max_conc, Range(1, None)),
        checkpoint_frequency=check_int(
            f"{OWNER}.checkpoint", "frequency", ckpt.get("frequency", 5), Range(1, None)
        ),
        checkpoint_num_to_keep=check_int(
            f"{OWNER}.checkpoint", "num_to_keep", ckpt.get("num_to_keep", 2), Range(1, None)
        ),
        max_failures=check_int(OWNER, "max_failures", raw.get("max_failures", 2), Range(0, 100)),
        storage_path=storage_path(raw.get("storage_path", "ray_results")),
        tracking_uri=_tracking_uri(mlf.get("tracking_uri")),
        mlflow_experiment=_string(mlf.get("experiment_name") or name, "mlflow.experiment_name"),
        **evaluation,
        source=source,
        raw=raw,
    )


# --- sections ---
def _section_env(values: Any) -> SystemConfig:
    values = _mapping(values, "env")
    check_keys(f"{OWNER}.env", values, SystemConfig.field_names())
    try:
        return SystemConfig.from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{OWNER}.env: {err}") from None


def _section_evaluation(ev: dict[str, Any]) -> dict[str, Any]:
    owner = f"{OWNER}.evaluation"
    out = {
        "evaluation_episodes": check_int(
            owner, "episodes", ev.get("episodes", 100), Range(2, None)
        ),
        "evaluation_seed": check_int(owner, "seed", ev.get("seed", 10_000), Range(0, None)),
        "curve_episodes": check_int(
            owner, "curve_episodes", ev.get("curve_episodes", 50), Range(0, 10_000)
        ),
        "curve_seed": check_int(owner, "curve_seed", ev.get("curve_seed", 20_000), Range(0, None)),
        "curve_interval": check_int(
            owner, "curve_interval", ev.get("curve_interval", 10), Range(1, None)
        ),
    }
    if 0 < out["curve_episodes"] < 2:
        raise ConfigError(f"{owner}.curve_episodes = 1: must be 0 (off) or an integer >= 2")
    reference = ev.get("reference")
    if reference is not None and reference not in {
        *baseline_policies(TRIAL_PERIODS),
        "threshold",
    }:
        raise ConfigError(
            f"{owner}.reference = {reference!r}: must be null (the best rule), never, always, "
            "greedy, threshold or periodic(k) with k in 2..10"
        )
    out["evaluation_reference"] = reference
    for kind, name in (("evaluation", "seed"), ("curve", "curve_seed")):
        first = out[f"{kind}_seed"]
        check_seeds(range(first, first + out[f"{kind}_episodes"]), f"{owner}.{name}")
    return out


def _section_learners(res: dict[str, Any]) -> dict[str, Any]:
    """``num_learners`` (int 0..64) and ``num_gpus_per_learner`` (>= 0; Ray takes fractions
    below 1 and whole numbers above)."""
    owner = f"{OWNER}.resources"
    learners = check_int(owner, "num_learners", res.get("num_learners", 0), Range(0, 64))
    gpus = check_float(
        owner, "num_gpus_per_learner", res.get("num_gpus_per_learner", 0), Range(0.0, None)
    )
    if gpus > 1 and not gpus.is_integer():
        raise ConfigError(
            f"{owner}.num_gpus_per_learner = {gpus!r}: must be >= 0, a fraction below 1 or "
            "a whole number (Ray cannot split more than one GPU)"
        )
    return {"num_learners": learners, "num_gpus_per_learner": gpus}


def _section_training(values: Any) -> dict[str, dict[str, Any]]:
    values = _mapping(values, "training")
    check_keys(f"{OWNER}.training", values, set(ALGORITHMS))
    return {
        algo: check_training(algo, f"{OWNER}.training.{algo}", _mapping(kw, f"training.{algo}"))
        for algo, kw in values.items()
    }


def _section_search(
    values: Any, env: SystemConfig, training: dict[str, dict[str, Any]], algorithm: str
) -> dict[str, tuple[str, list[Any]]]:
    values = _mapping(values, "search_space")
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
    algos = space.get("algorithm", ("grid", [algorithm]))[1]
    for key in space:
        if key.startswith("training."):
            for algo in algos:
                check_training(
                    algo, f"{OWNER}.search_space", {key.split(".", 1)[1]: None}, values_too=False
                )
    return space


def _is_int_key(key: str, algorithm: str, training: dict) -> bool:
    """Whether the searched key takes integers only."""
    from dnt_rllib.pipeline.algorithms import _RANGES

    if key == "seed":
        return True
    section, _, name = key.partition(".")
    if section == "env":
        types = {f.name: f.type for f in dataclasses.fields(SystemConfig)}
        return types.get(name) in ("int", int)
    if section == "training":
        return _RANGES.get(name, ("", None))[0] == "int"
    return False


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
            raise ConfigError(f"{owner}.{domain} = {args!r}: low and high must be numbers")
    if domain in ("uniform", "loguniform") and _is_int_key(key, algorithm, training):
        raise ConfigError(
            f"{owner}.{domain}: {key} takes integers and {domain} samples floats; "
            "use randint, grid or choice"
        )
    if domain == "randint":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise ConfigError(f"{owner}.randint = {args!r}: low and high must be integers")
        if high <= low + 1:
            raise ConfigError(
                f"{owner}.randint = {args!r}: samples low..high-1, so high must be >= low + 2 "
                "(for one value, set it instead of searching)"
            )
    elif not low < high:
        raise ConfigError(f"{owner}.{domain} = {args!r}: must be [low, high] with low < high")
    if domain == "loguniform" and low <= 0:
        raise ConfigError(f"{owner}.loguniform = {args!r}: low must be > 0")


def _check_search_value(
    key: str, owner: str, value: Any, env: SystemConfig, training: dict, algorithm: str
) -> None:
    if key == "algorithm":
        check_choice(owner, "value", value, tuple(ALGORITHMS))
    elif key == "seed":
        check_int(owner, "value", value, Range(0, None))
    elif key.startswith("env."):
        name = key.split(".", 1)[1]
        if name not in SystemConfig.field_names():
            raise ConfigError(f"{owner}: unknown env field {name!r}")
        try:
            env.replace(**{name: value})
        except ConfigError as err:
            raise ConfigError(f"{owner}: {err}") from None
    elif key.startswith("training."):
        name = key.split(".", 1)[1]
        check_training(algorithm, owner, {name: value})
    else:
        raise ConfigError(
            f"{owner}: unknown search key; allowed: algorithm, seed, env.<field>, training.<key>"
        )


# --- small helpers ---
def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{OWNER}.{name}: must be a mapping, got {type(value).__name__}")
    return value


def _folder_name(value: Any, name: str) -> str:
    """A single folder name: the experiment stays inside storage_path."""
    value = _string(value, name)
    if "/" in value or "\\" in value or value in (".", "..") or value != value.strip():
        raise ConfigError(
            f"{OWNER}.{name} = {value!r}: must be one folder name (no '/', '\\', '.' or '..'): "
            "the experiment is written to storage_path/name"
        )
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{OWNER}.{name} = {value!r}: must be a non-empty string")
    return value


def storage_path(value: Any) -> str:
    """A storage URI as given, or a local folder made absolute."""
    value = _string(value, "storage_path")
    return value if "://" in value else str(Path(value).expanduser().resolve())


def _tracking_uri(value: Any) -> str:
    """The configured URI, else ``MLFLOW_TRACKING_URI``, else SQLite in the cwd."""
    if value is None:
        value = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    value = _string(value, "mlflow.tracking_uri")
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        # A relative SQLite path would move with each process's cwd: pin it here.
        value = f"sqlite:///{Path(value.removeprefix('sqlite:///')).resolve()}"
    return value
