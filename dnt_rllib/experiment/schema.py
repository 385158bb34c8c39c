"""`ExperimentConfig`: one Tune experiment, read from a YAML file and validated up front.

Schema (every key optional but ``algorithm``; see ``tune_configs/`` for examples)::

    name: sac                       # Tune experiment folder and default MLflow experiment
    algorithm: SAC                  # SAC, DQN or PPO (or search over it, see search_space)
    training:                       # per algorithm: RLlib AlgorithmConfig.training() kwargs,
      SAC: {actor_lr: 1.0e-4}       #   over the paper's defaults (trial/settings.py)
    model: {fcnet_hiddens: [256, 256]}   # RLlib DefaultModelConfig fields (use_lstm: DQN, PPO)
    env: {epsilon: 0.987}           # SystemConfig fields
    seed: 0                         # trial seed (RLlib's, and the env runners' base seed)
    reward: {scale: 1.0, baseline: false}   # the learner's signal only (RLlibDNTEnv)
    replay: {kind: fast}            # SAC, DQN: our ring buffer, batches straight to the learner
                                    #   (rllib_ext/fast_replay.py); rllib: EpisodeReplayBuffer
    learner: {kind: lean}           # SAC, DQN: lean (the default where it applies): RLlib's
                                    #   losses and steps, less bookkeeping (rllib_ext/
                                    #   lean_learner.py); rllib: RLlib's learner
    search_space:                   # Tune domains; keys: algorithm, seed, env.F, training.K,
      seed: {grid: [0, 1, 2]}       #   model.K (DefaultModelConfig, width, depth), reward.K
      env.epsilon: {grid: [0.9, 0.987]}   # domains: grid, choice, uniform, loguniform, randint
    num_samples: 1                  # repeats of the search space (random search draws)
    scheduler: {type: asha, grace_period: 120, reduction_factor: 3}  # stops weak trials
    search_alg: {type: optuna, seed: 0, n_startup_trials: 8,        # TPE over the space,
                 points_to_evaluate: [{training.gamma: 0.8}]}       #   these points first
    time_budget_s: 7200             # the whole experiment's wall time (running trials end)
    stop: {num_env_steps_sampled_lifetime: 30000, training_iteration: 200, time_total_s: 1200}
    resources:                      # per trial; Tune reserves what RLlib requests for it
      num_env_runners: 0            #   remote env runners, 1 CPU each (0..64)
      num_envs_per_env_runner: 8    #   vectorised envs per runner (1..256)
      num_learners: 0               #   0: learn in the trial process; n: n learner actors
      num_gpus_per_learner: 0       #   GPUs per learner (>= 0; fractions < 1, or whole)
      max_concurrent_trials: 1      #   trials at a time (default: as resources allow)
    checkpoint: {frequency: 5, num_to_keep: 2}
    max_failures: 2                 # retries of a crashed trial
    storage_path: ray_results       # Tune storage (local folder, or s3://…); default:
                                    #   $DNT_SHARED_STORAGE/ray_results where it is set
    mlflow: {tracking_uri: null, experiment_name: null}   # null → sqlite:///mlflow.db, name
    evaluation: {episodes: 100, seed: 10000}    # final evaluation vs. the baselines

``scheduler`` and ``search_alg`` both maximise :data:`SEARCH_METRIC`: the deterministic
policy's paired difference to ``threshold`` on the learning-curve episodes (seeds
``curve_seed``…, never the final evaluation's), the latest value reported every iteration.
ASHA's time is ``wall_time_s`` (training seconds) and its ``max_t`` is ``stop.time_total_s``.

Any unknown key or bad value raises :class:`ConfigError` with one line, before Ray starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnt_rllib import shared_storage
from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.checks import (
    check_buffer_and_replay,
    check_every_point,
    check_learners,
    check_lstm_fields,
    check_module_size,
    check_replay_size,
    check_used,
)
from dnt_rllib.experiment.fields import (
    OWNER,
    SEEDS,
    mapping_of,
    nonempty_string,
    section_kind,
    section_reward,
)
from dnt_rllib.experiment.search import check_point, section_search
from dnt_rllib.policies import TRIAL_PERIODS, baseline_policies
from dnt_rllib.scoring import check_seeds
from dnt_rllib.trial.settings import (
    ALGORITHMS,
    PAPER_TRAINING,
    REPLAY_DEFAULTS,
    check_model,
    check_training,
    default_learner,
)
from dnt_rllib.trial.spec import EvaluationSpec, Resources, RewardSpec, TrialSpec
from dnt_rllib.validation import (
    ConfigError,
    Range,
    check_choice,
    check_float,
    check_int,
    check_keys,
    check_output,
    check_tracking_uri,
    key_text,
    read_yaml_mapping,
    short,
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
    "reward",
    "scheduler",
    "search_alg",
    "time_budget_s",
    "replay",
    "learner",
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
SCHEDULER_KEYS = {"type", "grace_period", "reduction_factor"}
SEARCH_ALG_KEYS = {"type", "seed", "n_startup_trials", "points_to_evaluate"}


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment; ``search_space`` holds (key, domain, values) triples."""

    name: str
    algorithm: str
    training: dict[str, dict[str, Any]]  # per algorithm: the YAML's settings (no defaults)
    model: dict[str, Any]
    env: SystemConfig
    seed: int
    search_space: dict[str, tuple[str, list[Any]]]
    num_samples: int
    stop: dict[str, int]
    resources: Resources
    max_concurrent_trials: int | None
    checkpoint_frequency: int
    checkpoint_num_to_keep: int
    max_failures: int
    storage_path: str
    tracking_uri: str
    mlflow_experiment: str
    evaluation: EvaluationSpec
    reward: RewardSpec = field(default_factory=RewardSpec)
    replay: str = REPLAY_DEFAULTS["kind"]
    learner: str | None = None  # None: each trial's default (default_learner)
    scheduler: dict[str, Any] | None = None
    search_alg: dict[str, Any] | None = None
    time_budget_s: int | None = None
    source: str = ""  # the YAML file it came from
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def algorithms(self) -> list[str]:
        """Every algorithm a trial of this experiment may run."""
        if "algorithm" in self.search_space:
            return list(dict.fromkeys(self.search_space["algorithm"][1]))
        return [self.algorithm]

    def trial_spec(self, algorithm: str | None = None) -> TrialSpec:
        """The trial of this experiment before its search space is sampled (of
        ``algorithm``, one the experiment runs; default: the ``algorithm`` key)."""
        algorithm = algorithm or self.algorithm
        learner = self.learner or default_learner(
            algorithm, self.model, self.resources.num_learners
        )
        return TrialSpec(
            algorithm=algorithm,
            seed=self.seed,
            env=self.env,
            training={**PAPER_TRAINING[algorithm], **self.training.get(algorithm, {})},
            model=dict(self.model),
            reward=self.reward,
            replay=self.replay,
            learner=learner,
            resources=self.resources,
            stop=dict(self.stop),
            checkpoint_frequency=self.checkpoint_frequency,
            evaluation=self.evaluation,
        )


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
    env = _section_env(shared_cache_default(raw.get("env") or {}))
    training = _section_training(raw.get("training") or {})
    model = check_model(f"{OWNER}.model", raw.get("model") or {})
    seed = check_int(OWNER, "seed", raw.get("seed", 0), SEEDS)
    reward = section_reward(raw.get("reward") or {})
    replay = section_kind("replay", raw.get("replay") or {})
    learner = section_kind("learner", raw.get("learner") or {})
    space = section_search(raw.get("search_space") or {}, env, training, algorithm)
    check_buffer_and_replay(training, replay, space, algorithm)
    check_every_point(training, model, replay, space, algorithm)
    check_lstm_fields(model, space)
    check_used(raw, training, space, algorithm)
    check_module_size(env, model, space)
    check_replay_size(env, training, replay, space, algorithm)

    stop = mapping_of(raw.get("stop") or {"training_iteration": 100}, "stop")
    check_keys(f"{OWNER}.stop", stop, STOP_KEYS)
    for key, value in stop.items():
        check_int(f"{OWNER}.stop", key, value, Range(1, None))
    res = mapping_of(raw.get("resources") or {}, "resources")
    check_keys(f"{OWNER}.resources", res, RESOURCE_KEYS)
    ckpt = mapping_of(raw.get("checkpoint") or {}, "checkpoint")
    check_keys(f"{OWNER}.checkpoint", ckpt, {"frequency", "num_to_keep"})
    mlf = mapping_of(raw.get("mlflow") or {}, "mlflow")
    check_keys(f"{OWNER}.mlflow", mlf, {"tracking_uri", "experiment_name"})
    ev = mapping_of(raw.get("evaluation") or {}, "evaluation")
    check_keys(f"{OWNER}.evaluation", ev, EVALUATION_KEYS)
    evaluation = _section_evaluation(ev)
    max_conc = res.get("max_concurrent_trials")
    resources = _section_resources(res)
    check_learners(learner, model, space, algorithm, resources.num_learners)
    scheduler, search_alg = _section_scheduling(raw, stop, space, evaluation)

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
        resources=resources,
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
        storage_path=storage_path(raw.get("storage_path", default_storage_path())),
        tracking_uri=_tracking_uri(mlf.get("tracking_uri")),
        mlflow_experiment=nonempty_string(
            mlf.get("experiment_name") or name, "mlflow.experiment_name"
        ),
        evaluation=evaluation,
        reward=reward,
        replay=replay,
        learner=learner,
        scheduler=scheduler,
        search_alg=search_alg,
        time_budget_s=None
        if raw.get("time_budget_s") is None
        else check_int(OWNER, "time_budget_s", raw["time_budget_s"], Range(1, None)),
        source=source,
        raw=raw,
    )


# --- sections ---
def default_storage_path() -> str:
    """``storage_path`` where the YAML gives none: ``<DNT_SHARED_STORAGE>/ray_results`` on a
    cluster that exports it (cluster/*.yaml), else ``ray_results`` in the working folder."""
    root = shared_storage.shared_root()
    return "ray_results" if root is None else f"{root}/{shared_storage.RESULTS_DIR}"


def shared_cache_default(values: Any) -> Any:
    """The env section with ``twin_cache_dir: <DNT_SHARED_STORAGE>/twins`` where it gives
    none and the shared storage is a folder (a URI root mirrors each node's cache
    instead: :mod:`dnt_rllib.shared_storage`)."""
    root = shared_storage.shared_root()
    if root is None or shared_storage.is_uri(root) or not isinstance(values, Mapping):
        return values
    if "twin_cache_dir" in values:
        return values
    return {**values, "twin_cache_dir": f"{root}/{shared_storage.CACHE_DIR}"}


def _section_env(values: Any) -> SystemConfig:
    values = mapping_of(values, "env")
    check_keys(f"{OWNER}.env", values, SystemConfig.field_names())
    try:
        return SystemConfig.from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{OWNER}.env: {err}") from None


def _section_evaluation(ev: dict[str, Any]) -> EvaluationSpec:
    owner = f"{OWNER}.evaluation"
    curve_episodes = check_int(
        owner, "curve_episodes", ev.get("curve_episodes", 50), Range(0, 10_000)
    )
    if 0 < curve_episodes < 2:
        raise ConfigError(f"{owner}.curve_episodes = 1: must be 0 (off) or an integer >= 2")
    reference = ev.get("reference")
    known = {*baseline_policies(TRIAL_PERIODS), "threshold"}
    if reference is not None and (not isinstance(reference, str) or reference not in known):
        raise ConfigError(
            f"{owner}.reference = {short(reference)}: must be null (the best rule), never, always, "
            "greedy, threshold or periodic(k) with k in 2..10"
        )
    out = EvaluationSpec(
        episodes=check_int(owner, "episodes", ev.get("episodes", 100), Range(2, None)),
        seed=check_int(owner, "seed", ev.get("seed", 10_000), Range(0, None)),
        reference=reference,
        curve_episodes=curve_episodes,
        curve_seed=check_int(owner, "curve_seed", ev.get("curve_seed", 20_000), Range(0, None)),
        curve_interval=check_int(
            owner, "curve_interval", ev.get("curve_interval", 10), Range(1, None)
        ),
    )
    check_seeds(out.seeds, f"{owner}.seed")
    check_seeds(out.curve_seeds, f"{owner}.curve_seed")
    return out


def _section_scheduling(
    raw: dict[str, Any],
    stop: dict[str, Any],
    space: dict[str, tuple[str, list[Any]]],
    evaluation: EvaluationSpec,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``scheduler`` (ASHA) and ``search_alg`` (Optuna's TPE), checked against the rest."""
    scheduler = search_alg = None
    if raw.get("scheduler") is not None:
        owner = f"{OWNER}.scheduler"
        values = mapping_of(raw["scheduler"], "scheduler")
        check_keys(owner, values, SCHEDULER_KEYS)
        check_choice(owner, "type", values.get("type"), ("asha",))
        if "time_total_s" not in stop:
            raise ConfigError(f"{owner}: ASHA needs stop.time_total_s (its max_t)")
        grace = check_int(owner, "grace_period", values.get("grace_period", 60), Range(1, None))
        if grace >= stop["time_total_s"]:
            raise ConfigError(
                f"{owner}.grace_period = {grace}: must be < stop.time_total_s "
                f"({stop['time_total_s']}), or no trial is ever stopped early"
            )
        scheduler = {
            "type": "asha",
            "grace_period": grace,
            "reduction_factor": check_float(
                owner, "reduction_factor", values.get("reduction_factor", 3), Range(1.0, 100.0,
                lo_open=True)
            ),
        }  # fmt: skip
    if raw.get("search_alg") is not None:
        owner = f"{OWNER}.search_alg"
        values = mapping_of(raw["search_alg"], "search_alg")
        check_keys(owner, values, SEARCH_ALG_KEYS)
        check_choice(owner, "type", values.get("type"), ("optuna",))
        search_alg = {
            "type": "optuna",
            "seed": check_int(owner, "seed", values.get("seed", 0), SEEDS),
            "n_startup_trials": check_int(
                owner, "n_startup_trials", values.get("n_startup_trials", 8), Range(1, None)
            ),
        }
        points = values.get("points_to_evaluate")
        points = [] if points is None else points
        if not isinstance(points, list) or not all(isinstance(pt, dict) for pt in points):
            raise ConfigError(f"{owner}.points_to_evaluate: must be a list of mappings")
        for i, point in enumerate(points):
            if missing := [key for key in space if key not in point]:
                raise ConfigError(
                    f"{owner}.points_to_evaluate[{i}]: gives no value for {missing[0]}; "
                    "a point names every search_space key"
                )
            for key, value in point.items():
                if key not in space:
                    raise ConfigError(
                        f"{owner}.points_to_evaluate[{i}].{key}: not a search_space key"
                    )
                check_point(f"{owner}.points_to_evaluate[{i}].{key}", value, space[key])
        search_alg["points_to_evaluate"] = [dict(pt) for pt in points]
        grids = [key for key, (domain, _) in space.items() if domain == "grid"]
        if grids:
            raise ConfigError(
                f"{OWNER}.search_space.{grids[0]}: a search_alg samples its points; "
                "use choice instead of grid"
            )
        if not space:
            raise ConfigError(f"{owner}: needs a search_space to search")
    if (scheduler or search_alg) and evaluation.curve_episodes == 0:
        raise ConfigError(
            f"{OWNER}.evaluation.curve_episodes = 0: a scheduler or search_alg optimises "
            "the paired difference to threshold on the curve episodes; set >= 2"
        )
    if scheduler or search_alg:
        first, count = evaluation.curve_seed, evaluation.curve_episodes
        start, total = evaluation.seed, evaluation.episodes
        if first < start + total and start < first + count:
            raise ConfigError(
                f"{OWNER}.evaluation.curve_seed = {first}: the search's episodes "
                f"{first}..{first + count - 1} overlap the final evaluation's "
                f"{start}..{start + total - 1}; settings chosen on them would be scored "
                "on the episodes they were tuned on"
            )
    return scheduler, search_alg


def _section_resources(res: dict[str, Any]) -> Resources:
    """One trial's resources: ``num_env_runners`` (0..64), ``num_envs_per_env_runner``
    (1..256), ``num_learners`` (0..64) and ``num_gpus_per_learner`` (>= 0; Ray takes
    fractions below 1 and whole numbers above)."""
    owner = f"{OWNER}.resources"
    gpus = check_float(
        owner, "num_gpus_per_learner", res.get("num_gpus_per_learner", 0), Range(0.0, None)
    )
    if gpus > 1 and not gpus.is_integer():
        raise ConfigError(
            f"{owner}.num_gpus_per_learner = {short(gpus)}: must be >= 0, a fraction below 1 or "
            "a whole number (Ray cannot split more than one GPU)"
        )
    return Resources(
        num_env_runners=check_int(
            owner, "num_env_runners", res.get("num_env_runners", 0), Range(0, 64)
        ),
        num_envs_per_env_runner=check_int(
            owner, "num_envs_per_env_runner", res.get("num_envs_per_env_runner", 8), Range(1, 256)
        ),
        num_learners=check_int(owner, "num_learners", res.get("num_learners", 0), Range(0, 64)),
        num_gpus_per_learner=gpus,
    )


def _section_training(values: Any) -> dict[str, dict[str, Any]]:
    values = mapping_of(values, "training")
    check_keys(f"{OWNER}.training", values, set(ALGORITHMS))
    return {
        algo: check_training(algo, f"{OWNER}.training.{algo}", mapping_of(kw, f"training.{algo}"))
        for algo, kw in values.items()
    }


# --- small helpers ---


def _folder_name(value: Any, name: str) -> str:
    """A single folder name: the experiment stays inside storage_path."""
    value = nonempty_string(value, name)
    if (
        "/" in value
        or "\\" in value
        or value in (".", "..")
        or value != value.strip()
        or not value.isprintable()
    ):
        raise ConfigError(
            f"{OWNER}.{name} = {short(value)}: must be one folder name (printable, no '/', "
            "'\\', '.' or '..'): the experiment is written to storage_path/name"
        )
    return value


#: ``storage_path`` URI schemes (pyarrow file systems Tune writes to).
STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss", "file")


def storage_path(value: Any) -> str:
    """A storage URI of :data:`STORAGE_SCHEMES` as given, or a local folder made absolute
    (that is not a file, nor under one)."""
    value = nonempty_string(value, "storage_path")
    if "\0" in value:
        raise ConfigError(f"{OWNER}.storage_path = {short(value)}: holds a NUL character")
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in STORAGE_SCHEMES:
            raise ConfigError(
                f"{OWNER}.storage_path = {short(value)}: unknown scheme {key_text(scheme)}://; "
                f"use a local folder or {', '.join(s + '://' for s in STORAGE_SCHEMES)}"
            )
        return value
    return str(check_output(Path(value).expanduser().resolve(), f"{OWNER}.storage_path",
                            folder=True))  # fmt: skip


def _tracking_uri(value: Any) -> str:
    """The configured URI, else ``MLFLOW_TRACKING_URI``, else SQLite in the cwd."""
    if value is None:
        value = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    value = nonempty_string(value, "mlflow.tracking_uri")
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        # A relative SQLite path would move with each process's cwd: pin it here.
        value = f"sqlite:///{Path(value.removeprefix('sqlite:///')).resolve()}"
    return check_tracking_uri(value, f"{OWNER}.mlflow.tracking_uri")
