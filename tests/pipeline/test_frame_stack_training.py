"""``frame_stack`` and the ``'memory'`` observation through the pipeline: SAC and DQN build
on the stacked observation and train one iteration on the fast replay path, the learning
curve and the final evaluation play the greedy policy on stacked frames, and a checkpoint
evaluates only on the layout it was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from dnt_rllib import ConfigError, DNTSyncEnv, SystemConfig
from dnt_rllib.env.observation import frame_dim
from dnt_rllib.evaluation import run_policy
from dnt_rllib.pipeline.algorithms import build_algorithm_config
from dnt_rllib.pipeline.learner_cost import trial_params
from dnt_rllib.pipeline.policy import TRIAL_FILE, greedy_policy, load_policy, save_weights
from dnt_rllib.pipeline.replay import TransitionRing
from dnt_rllib.pipeline.rllib_env import RLlibDNTEnv
from dnt_rllib.pipeline.trainable import LearningCurve, evaluate_policy
from dnt_rllib.policies.threshold import ThresholdFit

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=6, history=3,
                      observation_mode="memory", frame_stack=2)  # fmt: skip
FIT = ThresholdFit(a=1.0, b=0.0, tuning_seeds=(900000, 900299), tuning_return=0.0,
                   greedy_return=0.0)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def params_for(algorithm: str) -> dict[str, Any]:
    params = trial_params(CONFIG, envs=2)
    params["algorithm"] = algorithm
    params["training"] = {algorithm: {"num_steps_sampled_before_learning_starts": 12,
                                      "train_batch_size_per_learner": 8}}  # fmt: skip
    params["model"] = {"fcnet_hiddens": [8]}
    params.update(evaluation_seed=10000, evaluation_episodes=2, evaluation_reference=None,
                  curve_seed=20000, curve_episodes=2, curve_interval=1)  # fmt: skip
    return params


@pytest.mark.parametrize("algorithm", ["SAC", "DQN"])
def test_sac_and_dqn_train_and_evaluate_on_stacked_memory_observations(
    algorithm: str, tmp_path: Path
) -> None:
    dim = 2 * frame_dim(CONFIG)
    assert dim == 2 * (2 * 6 + 1 + 2 + 1 + 2 + 1 + 3)
    params = params_for(algorithm)
    algo = build_algorithm_config(params, RLlibDNTEnv).build_algo()
    try:
        assert algo.env_runner.env.single_observation_space.shape == (dim,)
        result = algo.train()
        assert result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"] > 0
        ring = algo.local_replay_buffer
        assert isinstance(ring, TransitionRing) and ring.obs.shape[1:] == (dim,)
        module = algo.get_module()
        first = next(v for k, v in module.state_dict().items() if k.endswith("weight"))
        assert first.shape[1] == dim  # the encoder reads both frames

        env = DNTSyncEnv(CONFIG)  # what LearningCurve and evaluate_policy play in
        curve = LearningCurve(params, env, FIT)(module)
        assert np.isfinite(curve["curve/policy/diff_threshold"])
        metrics, _ = evaluate_policy(module, params, env, FIT)
        assert np.isfinite(metrics["eval/policy/mean_return"])

        # evaluate --checkpoint: the module rebuilt from dnt_trial.json acts as the trained one
        (tmp_path / TRIAL_FILE).write_text(json.dumps(params))
        save_weights(module, tmp_path)
        _, loaded, config = load_policy(tmp_path)
        assert config == CONFIG
        seen: list[tuple[int, int]] = []

        def both(e: DNTSyncEnv, obs: np.ndarray) -> int:
            seen.append((greedy_policy(module)(e, obs), loaded(e, obs)))
            return seen[-1][0]

        run_policy(env, both, "both", range(10000, 10002))
        assert len(seen) == 2 * CONFIG.episode_length
        assert all(a == b for a, b in seen)
        with pytest.raises(ConfigError, match=r"frame_stack = 1 does not match the checkpoint's"):
            load_policy(tmp_path, CONFIG.replace(frame_stack=1))
    finally:
        algo.stop()
