"""The RLlib ``AlgorithmConfig`` of one trial, built from its :class:`TrialSpec`."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from dnt_rllib.trial.settings import ALGORITHMS, REPLAY_BUFFER
from dnt_rllib.trial.spec import TrialSpec


def build_algorithm_config(spec: TrialSpec, env: str | type) -> AlgorithmConfig:
    """The RLlib config of one trial: its settings (the paper's, then the experiment's).

    For SAC and DQN, ``replay: fast`` builds the algorithm class of
    :mod:`dnt_rllib.rllib_ext.fast_replay` (same losses and schedules, batches straight from
    a ring buffer), ``rllib`` RLlib's own; ``learner: lean`` trains with
    :mod:`dnt_rllib.rllib_ext.lean_learner`'s learner (the same losses and steps, less
    bookkeeping per update), ``rllib`` with RLlib's. PPO has no replay. DQN with an LSTM gets
    :mod:`dnt_rllib.rllib_ext.recurrent_dqn`'s module (RLlib's, exploring on vector envs).
    ``model.kind: set`` gets RLlib's module with :mod:`dnt_rllib.rllib_ext.set_model`'s
    catalog (a set encoder whose weights do not depend on U or N). SAC's module is
    :mod:`dnt_rllib.rllib_ext.sac_module`'s (RLlib's, with log-probabilities that stay
    finite when the actor saturates).
    """
    from dnt_rllib.rllib_ext.fast_replay import FAST_CLASSES
    from dnt_rllib.rllib_ext.lean_learner import LEAN_CLASSES

    algorithm = spec.algorithm
    training = dict(spec.training)
    if spec.off_policy:
        # a buffer config without a type stays an EpisodeReplayBuffer (RLlib's default type
        # is the prioritised one, which replay: fast refuses)
        training["replay_buffer_config"] = {**REPLAY_BUFFER, **training["replay_buffer_config"]}
    model = spec.model_config
    module_class: type | None = None
    catalog_class: type | None = None
    if algorithm == "SAC":
        from dnt_rllib.rllib_ext.sac_module import FiniteLogProbSACTorchRLModule

        module_class = FiniteLogProbSACTorchRLModule
    elif algorithm == "DQN" and model.get("use_lstm"):
        from dnt_rllib.rllib_ext.recurrent_dqn import RecurrentDQNTorchRLModule

        module_class = RecurrentDQNTorchRLModule
    if model.pop("kind", "mlp") == "set":
        from dnt_rllib.rllib_ext.set_model import SET_CATALOGS, set_model_config

        model = set_model_config(model, spec.env)
        catalog_class = SET_CATALOGS[algorithm]
    module: dict[str, Any] = {}
    if module_class or catalog_class:
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

        module["rl_module_spec"] = RLModuleSpec(
            module_class=module_class, catalog_class=catalog_class
        )
    lean = spec.off_policy and spec.learner == "lean"
    learner = {"learner_class": LEAN_CLASSES[algorithm]} if lean else {}
    env_config = {
        **spec.env.to_dict(),
        "seed": spec.seed,
        "reward_scale": spec.reward.scale,
        "reward_baseline": spec.reward.baseline,
    }
    fast = spec.off_policy and spec.replay == "fast"
    res = spec.resources
    return (
        ALGORITHMS[algorithm](algo_class=FAST_CLASSES[algorithm] if fast else None)
        .environment(env, env_config=env_config)
        .env_runners(
            num_env_runners=res.num_env_runners,
            num_envs_per_env_runner=res.num_envs_per_env_runner,
            num_cpus_per_env_runner=1,
            gym_env_vectorize_mode="vector_entry_point",  # one batched twin call per step
        )
        .learners(
            num_learners=res.num_learners,
            num_gpus_per_learner=res.num_gpus_per_learner,
            **learner,
        )
        .training(**training)
        .rl_module(model_config=model, **module)
        .fault_tolerance(restart_failed_env_runners=True, restart_failed_sub_environments=True)
        .debugging(seed=spec.seed, log_level="ERROR")
    )
