"""`TrialSpec`: everything one trial runs on, typed and frozen.

An experiment (:class:`~dnt_rllib.experiment.schema.ExperimentConfig`) makes the spec of its
trials; it becomes a plain dict only at Tune's boundary (the param space, and each trial's
``config`` back: :meth:`TrialSpec.to_params`, :meth:`TrialSpec.from_params`), in the
trial's checkpoint (``dnt_trial.json``) and in the MLflow params. Everything else (the
trainable, the RLlib config builder, the policy checkpoint, the MLflow callback, ``tune``'s
summary) reads its attributes.

The dict keeps the layout trials have always saved, so checkpoints written before the spec
existed load as they were trained: no ``replay`` or ``learner`` section means RLlib's
replay buffer and learner, no ``num_learners`` means 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dnt_rllib.config import SystemConfig
from dnt_rllib.trial.settings import (
    OFF_POLICY,
    PAPER_TRAINING,
    REPLAY_DEFAULTS,
    default_learner,
    model_config,
    reward_config,
)


@dataclass(frozen=True)
class EvaluationSpec:
    """The final evaluation's episodes and the learning curve's (``evaluation:`` section)."""

    episodes: int = 100
    seed: int = 10_000
    reference: str | None = None  # the policy the share is judged against; None: the best rule
    curve_episodes: int = 50
    curve_seed: int = 20_000
    curve_interval: int = 10

    @property
    def seeds(self) -> range:
        """The final evaluation's episode seeds."""
        return range(self.seed, self.seed + self.episodes)

    @property
    def curve_seeds(self) -> range:
        """The learning curve's episode seeds (empty: no curve)."""
        return range(self.curve_seed, self.curve_seed + self.curve_episodes)


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for (``resources:`` section, but ``max_concurrent_trials``)."""

    num_env_runners: int = 0
    num_envs_per_env_runner: int = 8
    num_learners: int = 0
    num_gpus_per_learner: float = 0.0


@dataclass(frozen=True)
class RewardSpec:
    """The learner's reward (``reward:`` section): eq. (17) × ``scale``, less the slot's
    baseline when ``baseline``."""

    scale: float = 1.0
    baseline: bool = False


#: The flat keys of the params dict, beside its sections.
FLAT_RESOURCES = tuple(f.name for f in dataclasses.fields(Resources))
FLAT_EVALUATION = {
    "evaluation_episodes": "episodes",
    "evaluation_seed": "seed",
    "evaluation_reference": "reference",
    "curve_episodes": "curve_episodes",
    "curve_seed": "curve_seed",
    "curve_interval": "curve_interval",
}


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its algorithm's settings already merged over the paper's defaults."""

    algorithm: str
    seed: int
    env: SystemConfig
    training: Mapping[str, Any]  # PAPER_TRAINING[algorithm], then the experiment's
    model: Mapping[str, Any]  # the experiment's model section (width/depth as given)
    reward: RewardSpec = field(default_factory=RewardSpec)
    replay: str = REPLAY_DEFAULTS["kind"]  # SAC/DQN: fast (the ring) or rllib
    learner: str = "rllib"  # SAC/DQN: lean or rllib
    resources: Resources = field(default_factory=Resources)
    stop: Mapping[str, int] = field(default_factory=lambda: {"training_iteration": 100})
    checkpoint_frequency: int = 5
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)

    @property
    def off_policy(self) -> bool:
        """SAC or DQN: the ``replay`` and ``learner`` sections are theirs."""
        return self.algorithm in OFF_POLICY

    @property
    def model_config(self) -> dict[str, Any]:
        """RLlib's ``DefaultModelConfig`` fields: the paper's, then the model section."""
        return model_config(dict(self.model))

    @property
    def name(self) -> str:
        """How a trained policy of this trial is named in tables, e.g. ``SAC (seed 0)``."""
        return f"{self.algorithm} (seed {self.seed})"

    def value(self, key: str) -> Any:
        """A search-space key's value in this trial (``algorithm``, ``seed``, ``env.F``,
        ``training.K``, ``model.K``, ``reward.K``, ``replay.kind``, ``learner.kind``)."""
        if key in ("algorithm", "seed"):
            return getattr(self, key)
        section, name = key.split(".", 1)
        if section == "env":
            return getattr(self.env, name)
        if section in ("replay", "learner"):
            return getattr(self, section)
        if section == "reward":
            return getattr(self.reward, name)
        return getattr(self, section).get(name)

    @classmethod
    def make(cls, env: SystemConfig, algorithm: str = "SAC", **changes: Any) -> TrialSpec:
        """A trial of ``algorithm`` on ``env`` with the paper's settings and the defaults
        above; ``changes`` replace fields (``training`` is merged over the paper's)."""
        training = {**PAPER_TRAINING[algorithm], **changes.pop("training", {})}
        model = changes.pop("model", {})
        learner = changes.pop("learner", None) or default_learner(
            algorithm, model, changes.get("resources", Resources()).num_learners
        )
        return cls(algorithm, int(changes.pop("seed", 0)), env, training, model,
                   learner=learner, **changes)  # fmt: skip

    # --- Tune's boundary ---
    def to_params(self) -> dict[str, Any]:
        """The plain dict Tune holds as the trial's ``config`` and the checkpoint saves."""
        return {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "env": self.env.to_dict(),
            "training": {self.algorithm: dict(self.training)},
            "model": dict(self.model),
            "reward": dataclasses.asdict(self.reward),
            "replay": {"kind": self.replay},
            "learner": {"kind": self.learner},
            **dataclasses.asdict(self.resources),
            "stop": dict(self.stop),
            "checkpoint_frequency": self.checkpoint_frequency,
            **{flat: getattr(self.evaluation, name) for flat, name in FLAT_EVALUATION.items()},
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrialSpec:
        """The spec of a trial's ``config`` (Tune's sampled param space) or of a saved
        ``dnt_trial.json``; sections a trial saved before they existed take the values that
        trial ran with."""
        algorithm = params["algorithm"]
        training = {**PAPER_TRAINING[algorithm], **params["training"].get(algorithm, {})}
        model = dict(params["model"])
        resources = Resources(**{k: params[k] for k in FLAT_RESOURCES if k in params})
        learner = params.get("learner")
        if learner is None:  # saved before the section: RLlib's learner
            kind = "rllib"
        else:
            kind = learner.get("kind") or default_learner(algorithm, model, resources.num_learners)
        defaults = EvaluationSpec()
        given = {name: params.get(flat, getattr(defaults, name))
                 for flat, name in FLAT_EVALUATION.items()}  # fmt: skip
        replay = params.get("replay", {"kind": "rllib"})  # saved before it: RLlib's buffer
        return cls(
            algorithm=algorithm,
            seed=int(params["seed"]),
            env=SystemConfig.from_dict(params["env"]),
            training=training,
            model=model,
            reward=RewardSpec(**reward_config(params.get("reward") or {})),
            replay=str(replay.get("kind", REPLAY_DEFAULTS["kind"])),
            learner=str(kind),
            resources=resources,
            stop=dict(params.get("stop", {"training_iteration": 100})),
            checkpoint_frequency=int(params.get("checkpoint_frequency", 5)),
            evaluation=EvaluationSpec(**given),
        )
