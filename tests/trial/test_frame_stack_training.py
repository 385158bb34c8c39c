"""``frame_stack`` and the ``'memory'`` observation through a real trial: SAC and DQN build
on the stacked observation and train one iteration on the fast replay path, the learning
curve and the final evaluation play the greedy policy on stacked frames, and the checkpoint
the trial writes evaluates to the same returns, on the layout it was trained on only.

``train_trial`` runs as in Tune, with Tune's calls (checkpoint, report) and the threshold
fit (minutes) stood in for."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import ray
import torch

from dnt_rllib import ConfigError, DNTSyncEnv, SystemConfig
from dnt_rllib.env.observation import frame_dim
from dnt_rllib.names import WEIGHTS_FILE
from dnt_rllib.policies.threshold import ThresholdFit
from dnt_rllib.rllib_ext.replay_ring import TransitionRing
from dnt_rllib.scoring import run_policy
from dnt_rllib.trial import trainable
from dnt_rllib.trial.spec import EvaluationSpec, Resources, TrialSpec
from dnt_rllib.trial.trained_policy import load_policy

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=6, history=3,
                      observation_mode="memory", frame_stack=2)  # fmt: skip
FIT = ThresholdFit(a=1.0, b=0.0, tuning_seeds=(900000, 900299), tuning_return=0.0,
                   greedy_return=0.0)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def tiny_trial(config: SystemConfig, algorithm: str, **changes: Any) -> dict[str, Any]:
    """A trial of one iteration, checkpointed, evaluated on 3 episodes and its curve on 2,
    on RLlib's learner, as Tune hands its ``config`` to the trainable."""
    return TrialSpec.make(
        config, algorithm, learner="rllib", resources=Resources(num_envs_per_env_runner=2),
        stop={"training_iteration": 1}, checkpoint_frequency=1,
        evaluation=EvaluationSpec(episodes=3, seed=10000, curve_episodes=2, curve_seed=20000,
                                  curve_interval=1),
        **changes,
    ).to_params()  # fmt: skip


def params_for(algorithm: str) -> dict[str, Any]:
    training = {"num_steps_sampled_before_learning_starts": 12, "train_batch_size_per_learner": 8}
    return tiny_trial(CONFIG, algorithm, training=training, model={"fcnet_hiddens": [8]})


def run_trial(params: dict[str, Any], into: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``train_trial(params)``: its checkpoint copied to ``into``; (the algorithm, the
    last report)."""
    built, reports = [], []

    def build(config: Any) -> Any:
        built.append(config.build_algo())
        return built[-1]

    def keep(folder: str) -> Path:
        shutil.copytree(folder, into)
        return into

    tune = SimpleNamespace(get_checkpoint=lambda: None,
                           report=lambda metrics, checkpoint=None: reports.append(metrics),
                           Checkpoint=SimpleNamespace(from_directory=keep))  # fmt: skip
    monkeypatch.setattr(trainable, "build_in_trial_dir", build)
    monkeypatch.setattr(trainable, "load_or_fit", lambda config, twin: FIT)
    monkeypatch.setattr(trainable, "tune", tune)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    trainable.train_trial(params)
    return built[0], reports[-1]


@pytest.mark.parametrize("algorithm", ["SAC", "DQN"])
def test_sac_and_dqn_train_and_evaluate_on_stacked_memory_observations(
    algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dim = 2 * frame_dim(CONFIG)
    assert dim == 2 * (2 * 6 + 1 + 2 + 1 + 2 + 1 + 3)
    params = params_for(algorithm)
    algo, report = run_trial(params, tmp_path / "checkpoint", monkeypatch)
    assert algo.env_runner.env.single_observation_space.shape == (dim,)
    ring = algo.local_replay_buffer
    assert isinstance(ring, TransitionRing) and ring.obs.shape[1:] == (dim,) and len(ring) > 12
    assert report["iteration"] == 1 and np.isfinite(report["curve/diff_threshold"])
    assert np.isfinite(report["learner/qf_loss"])  # the learner did update, on ring batches

    # the checkpoint: the module reads both frames, and its greedy policy, rebuilt from
    # dnt_trial.json (as evaluate --checkpoint does), scores what the trial's final
    # evaluation scored on the same episodes
    weights = torch.load(tmp_path / "checkpoint" / WEIGHTS_FILE, weights_only=True)
    first = next(v for k, v in weights.items() if k.endswith("weight"))
    assert first.shape[1] == dim
    _, policy, config = load_policy(tmp_path / "checkpoint")
    assert config == CONFIG
    replayed = run_policy(DNTSyncEnv(config), policy, "policy", range(10000, 10003))
    assert replayed.mean_return == pytest.approx(report["eval/return"], rel=1e-12)
    with pytest.raises(ConfigError, match=r"frame_stack = 1 does not match the checkpoint's"):
        load_policy(tmp_path / "checkpoint", CONFIG.replace(frame_stack=1))
