"""`ExperimentConfig`: one Tune experiment, read from a YAML file and validated up front.

Schema (every key optional but ``algorithm``; see ``tune_configs/`` for examples)::

    name: sac                       # Tune experiment folder and default MLflow experiment
    algorithm: SAC                  # SAC, DQN or PPO (or search over it, see search_space)
    training:                       # per algorithm: RLlib AlgorithmConfig.training() kwargs,
      SAC: {actor_lr: 1.0e-4}       #   over the paper's defaults (pipeline/algorithms.py)
    model: {fcnet_hiddens: [256, 256]}   # RLlib DefaultModelConfig fields (use_lstm: DQN, PPO)
    env: {epsilon: 0.987}           # SystemConfig fields
    seed: 0                         # trial seed (RLlib's, and the env runners' base seed)
    reward: {scale: 1.0, baseline: false}   # the learner's signal only (RLlibDNTEnv)
    replay: {kind: fast}            # SAC, DQN: our ring buffer, batches straight to the learner
                                    #   (pipeline/fast_replay.py); rllib: EpisodeReplayBuffer
    learner: {kind: rllib}          # SAC, DQN: RLlib's learner; lean: the same losses and
                                    #   steps, less bookkeeping (pipeline/lean_learner.py)
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
    storage_path: ray_results       # Tune storage (local folder, or s3://… on a cluster)
    mlflow: {tracking_uri: null, experiment_name: null}   # null → sqlite:///mlflow.db, name
    evaluation: {episodes: 100, seed: 10000}    # final evaluation vs. the baselines

``scheduler`` and ``search_alg`` both maximise :data:`SEARCH_METRIC`: the deterministic
policy's paired difference to ``threshold`` on the learning-curve episodes (seeds
``curve_seed``…, never the final evaluation's), the latest value reported every iteration.
ASHA's time is ``wall_time_s`` (training seconds) and its ``max_t`` is ``stop.time_total_s``.

Any unknown key or bad value raises :class:`ConfigError` with one line, before Ray starts.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.policies import TRIAL_PERIODS, baseline_policies
from dnt_rllib.rllib_ext.fast_replay import REPLAY_KINDS
from dnt_rllib.rllib_ext.lean_learner import LEARNER_KINDS
from dnt_rllib.rllib_ext.replay_ring import TransitionRing
from dnt_rllib.scoring import check_seeds
from dnt_rllib.trial.settings import (
    ALGORITHMS,
    LSTM_SIZES,
    MODEL_SHAPE,
    OFF_POLICY,
    PAPER_TRAINING,
    REPLAY_BUFFER,
    REPLAY_DEFAULTS,
    TRAINING_SETTINGS,
    check_learner,
    check_model,
    check_network_size,
    check_together,
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
DOMAINS = {"grid", "choice", "uniform", "loguniform", "randint"}
OWNER = "experiment"
SCHEDULER_KEYS = {"type", "grace_period", "reduction_factor"}
SEARCH_ALG_KEYS = {"type", "seed", "n_startup_trials", "points_to_evaluate"}
REWARD_KEYS = {"scale", "baseline"}
#: Sections that choose one implementation: ``kind`` only, its values and its default.
KIND_SECTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "replay": (REPLAY_KINDS, REPLAY_DEFAULTS["kind"]),
    "learner": (LEARNER_KINDS, None),  # None: each trial's default (default_learner)
}
#: Trial and search seeds: numpy's legacy seeding (RLlib's, Optuna's) takes < 2^32, and
#: RLlib adds env runner and env offsets to the trial seed.
SEEDS = Range(0, 2**31 - 1)


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
    env = _section_env(raw.get("env") or {})
    training = _section_training(raw.get("training") or {})
    model = check_model(f"{OWNER}.model", raw.get("model") or {})
    seed = check_int(OWNER, "seed", raw.get("seed", 0), SEEDS)
    reward = _section_reward(raw.get("reward") or {})
    replay = _section_kind("replay", raw.get("replay") or {})
    learner = _section_kind("learner", raw.get("learner") or {})
    space = _section_search(raw.get("search_space") or {}, env, training, algorithm)
    _check_buffer_and_replay(training, replay, space, algorithm)
    _check_together(training, model, replay, space, algorithm)
    _check_lstm_fields(model, space)
    _check_used(raw, training, space, algorithm)
    _check_module_size(env, model, space)
    _check_replay_size(env, training, replay, space, algorithm)

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
    resources = _section_resources(res)
    _check_learner(learner, model, space, algorithm, resources.num_learners)
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
        storage_path=storage_path(raw.get("storage_path", "ray_results")),
        tracking_uri=_tracking_uri(mlf.get("tracking_uri")),
        mlflow_experiment=_string(mlf.get("experiment_name") or name, "mlflow.experiment_name"),
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
def _section_env(values: Any) -> SystemConfig:
    values = _mapping(values, "env")
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


def _section_reward(values: Any) -> RewardSpec:
    values = _mapping(values, "reward")
    owner = f"{OWNER}.reward"
    check_keys(owner, values, REWARD_KEYS)
    out = RewardSpec()
    if "scale" in values:
        scale = check_float(owner, "scale", values["scale"], Range(0.0, 1e6, lo_open=True))
        out = dataclasses.replace(out, scale=scale)
    if "baseline" in values:
        out = dataclasses.replace(out, baseline=_bool(values["baseline"], "reward.baseline"))
    return out


def _section_kind(section: str, values: Any) -> str | None:
    """A :data:`KIND_SECTIONS` section's ``kind``: one of its values, or the default."""
    kinds, default = KIND_SECTIONS[section]
    values = _mapping(values, section)
    owner = f"{OWNER}.{section}"
    check_keys(owner, values, {"kind"})
    if "kind" in values:
        return check_choice(owner, "kind", values["kind"], kinds)
    return default


def _check_learner(
    learner: str | None,
    model: dict[str, Any],
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
    num_learners: int,
) -> None:
    """:func:`check_learner` for every algorithm, learner kind and LSTM switch searched."""
    kinds = space["learner.kind"][1] if "learner.kind" in space else [learner]
    lstms = space["model.use_lstm"][1] if "model.use_lstm" in space else [None]
    for algo, kind, lstm in itertools.product(_algorithms(space, algorithm), kinds, lstms):
        mine = model if lstm is None else {**model, "use_lstm": lstm}
        try:
            check_learner(algo, kind, mine, num_learners)
        except ConfigError as err:
            raise ConfigError(f"{OWNER}.{err}") from None


def _largest_input(env: SystemConfig, space: dict[str, tuple[str, list[Any]]]) -> SystemConfig:
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


def _input_fields(env: SystemConfig) -> str:
    """The fields that set the observation's length, as ``name = value`` (``frame_stack``
    only when it stacks)."""
    sizes = f"num_users = {env.num_users}, num_rbs = {env.num_rbs}"
    return sizes + (f", frame_stack = {env.frame_stack}" if env.frame_stack > 1 else "")


def _check_used(
    raw: dict[str, Any],
    training: dict[str, dict[str, Any]],
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """Refuse sections and settings no trial of the experiment reads (each would be ignored):
    ``training.<ALGO>`` of an algorithm never run, ``replay`` or ``learner`` with no SAC or
    DQN, PPO's ``kl_coeff`` and ``kl_target`` with ``use_kl_loss`` false at every point."""
    algos = _algorithms(space, algorithm)
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


def _check_lstm_fields(model: dict[str, Any], space: dict[str, tuple[str, list[Any]]]) -> None:
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


def _check_module_size(
    env: SystemConfig, model: dict[str, Any], space: dict[str, tuple[str, list[Any]]]
) -> None:
    """The policy network at the largest searched sizes holds at most ``MAX_WEIGHTS``
    weights: its input layer grows with ``num_users``, ``num_rbs`` and ``frame_stack``."""
    from dnt_rllib.env.observation import observation_dim

    env = _largest_input(env, space)
    outputs = 2 if env.action_mode == "binary" else env.num_rbs + 1
    lstm = space["model.use_lstm"][1] if "model.use_lstm" in space else [model.get("use_lstm")]
    for use_lstm in dict.fromkeys(lstm):  # with and without the LSTM, when searched
        check_network_size(f"{OWNER}.model", {**model, **model_extremes(space),
                           "use_lstm": bool(use_lstm)}, observation_dim(env), outputs,
                           _input_fields(env))  # fmt: skip


def _check_replay_size(
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
    algos = [a for a in _algorithms(space, algorithm) if a in OFF_POLICY]
    if "fast" not in kinds or not algos:
        return
    buffers = [training.get(a, {}).get("replay_buffer_config") or {} for a in algos]
    if "training.replay_buffer_config" in space:
        buffers += space["training.replay_buffer_config"][1]
    capacity = max(int(b.get("capacity", REPLAY_BUFFER["capacity"])) for b in buffers)
    env = _largest_input(env, space)
    dim = observation_dim(env)
    need = PROCESS_BYTES + capacity * TransitionRing.slot_bytes(dim)
    limit = physical_memory()
    if need > limit:
        fields = _input_fields(env)
        names = [part.split(" = ")[0] for part in fields.split(", ")]
        raise ConfigError(
            f"{OWNER}.training: a replay ring of {capacity:,} transitions with observations "
            f"of {dim:,} entries ({fields}) needs ~{need / 2**30:,.1f} GiB, more than this "
            f"machine's {limit / 2**30:,.1f} GiB of memory; lower replay_buffer_config."
            f"capacity, {', '.join(names[:-1])} or {names[-1]}"
        )


def _check_buffer_and_replay(
    training: dict[str, dict[str, Any]],
    replay: str,
    space: dict[str, tuple[str, list[Any]]],
    algorithm: str,
) -> None:
    """``replay.kind: fast`` samples uniformly: refuse it with a prioritised buffer."""
    kinds = space["replay.kind"][1] if "replay.kind" in space else [replay]
    if "fast" not in kinds:
        return
    for algo in [a for a in _algorithms(space, algorithm) if a in OFF_POLICY]:
        buffers = [training.get(algo, {}).get("replay_buffer_config") or {}]
        if "training.replay_buffer_config" in space:
            buffers += space["training.replay_buffer_config"][1]
        if any("Prioritized" in str(b.get("type", "")) for b in buffers):
            raise ConfigError(
                f"{OWNER}.training.{algo}.replay_buffer_config.type = "
                "'PrioritizedEpisodeReplayBuffer': replay.kind = fast samples uniformly; "
                "set replay: {kind: rllib} for a prioritised buffer"
            )


def _algorithms(space: dict[str, tuple[str, list[Any]]], algorithm: str) -> list[str]:
    """Every algorithm a trial may run, in order, once each."""
    return list(dict.fromkeys(space["algorithm"][1] if "algorithm" in space else [algorithm]))


#: The keys :func:`check_together` reads, and whether a searched value's ends stand for it
#: (numbers: its checks are monotone in each) or every value must be tried.
TOGETHER_KEYS = {"model.use_lstm": False, "model.max_seq_len": True, "replay.kind": False,
                 "training.burn_in_len": True, "training.n_step": True,
                 "training.minibatch_size": True, "training.train_batch_size_per_learner": True,
                 "training.replay_buffer_config": False}  # fmt: skip


def _check_together(
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
    for algo in _algorithms(space, algorithm):
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
        values = _mapping(raw["scheduler"], "scheduler")
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
        values = _mapping(raw["search_alg"], "search_alg")
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
                _check_point(f"{owner}.points_to_evaluate[{i}].{key}", value, space[key])
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


def _check_point(owner: str, value: Any, domain: tuple[str, list[Any]]) -> None:
    """A starting point must be one the domain can sample."""
    kind, args = domain
    if kind in ("grid", "choice"):
        if not any(_same(value, arg) for arg in args):
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


def _same(value: Any, arg: Any) -> bool:
    """``value == arg`` of the same kind: ``true`` is not 1, nor ``"1"`` 1."""
    numbers = (int, float)
    if isinstance(value, bool) or isinstance(arg, bool):
        return isinstance(value, bool) and isinstance(arg, bool) and value == arg
    if isinstance(value, numbers) and isinstance(arg, numbers):
        return value == arg
    return type(value) is type(arg) and value == arg


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
    elif key.startswith("model."):
        check_model(owner, {key.split(".", 1)[1]: value})
    elif key.startswith("reward."):
        _section_reward({key.split(".", 1)[1]: value})
    elif key.split(".", 1)[0] in KIND_SECTIONS:
        section, name = key.split(".", 1)
        _section_kind(section, {name: value})
    else:
        raise ConfigError(
            f"{owner}: unknown search key; allowed: algorithm, seed, env.<field>, "
            "training.<key>, model.<field>, reward.scale, reward.baseline, replay.kind, "
            "learner.kind"
        )


# --- small helpers ---
def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{OWNER}.{name}: must be a mapping, got {type(value).__name__}")
    return value


def _folder_name(value: Any, name: str) -> str:
    """A single folder name: the experiment stays inside storage_path."""
    value = _string(value, name)
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


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{OWNER}.{name} = {short(value)}: must be true or false")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{OWNER}.{name} = {short(value)}: must be a non-empty string")
    return value


#: ``storage_path`` URI schemes (pyarrow file systems Tune writes to).
STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss", "file")


def storage_path(value: Any) -> str:
    """A storage URI of :data:`STORAGE_SCHEMES` as given, or a local folder made absolute
    (that is not a file, nor under one)."""
    value = _string(value, "storage_path")
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
    value = _string(value, "mlflow.tracking_uri")
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        # A relative SQLite path would move with each process's cwd: pin it here.
        value = f"sqlite:///{Path(value.removeprefix('sqlite:///')).resolve()}"
    return check_tracking_uri(value, f"{OWNER}.mlflow.tracking_uri")
