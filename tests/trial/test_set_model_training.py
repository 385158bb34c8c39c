"""``model: {kind: set}`` through a real trial: SAC and DQN build on the ``'set'``
observation (two stacked frames), train one iteration on the ring buffer and the lean
learner, and the checkpoint they write evaluates at the (U, N) it was trained on and at
another, with the same weights; PPO (RLlib's learner, on-policy) does the same.

``train_trial`` runs as in Tune, with Tune's calls and the threshold fit stood in for
(:mod:`tests.trial.test_frame_stack_training`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import torch

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.names import WEIGHTS_FILE
from dnt_rllib.rllib_ext.replay_ring import TransitionRing
from dnt_rllib.rllib_ext.set_model import SetEncoder
from dnt_rllib.scoring import run_policy
from dnt_rllib.trial.spec import EvaluationSpec, Resources, TrialSpec
from dnt_rllib.trial.trained_policy import load_policy
from tests.trial.test_frame_stack_training import run_trial

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=6, history=3,
                      observation_mode="set", frame_stack=2)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def tiny_trial(algorithm: str, **changes: Any) -> dict[str, Any]:
    """A trial of one iteration on the lean learner and the ring buffer, checkpointed,
    evaluated on 3 episodes and its curve on 2."""
    return TrialSpec.make(
        CONFIG, algorithm, learner="lean", replay="fast",
        resources=Resources(num_envs_per_env_runner=2), stop={"training_iteration": 1},
        checkpoint_frequency=1,
        evaluation=EvaluationSpec(episodes=3, seed=10000, curve_episodes=2, curve_seed=20000,
                                  curve_interval=1),
        **changes,
    ).to_params()  # fmt: skip


@pytest.mark.parametrize("algorithm", ["SAC", "DQN"])
def test_sac_and_dqn_train_a_set_model_and_evaluate_it_at_another_size(
    algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a frame: 2 headers + 4 globals + 3 users × 5 + 2 RBs × 2 = 25 entries; two frames
    dim = 2 * (2 + 4 + 3 * 5 + 2 * 2)
    training = {"num_steps_sampled_before_learning_starts": 12, "train_batch_size_per_learner": 8}
    model = {"kind": "set", "set_hiddens": [8], "fcnet_hiddens": [8]}
    params = tiny_trial(algorithm, training=training, model=model)
    algo, report = run_trial(params, tmp_path / "checkpoint", monkeypatch)
    assert algo.env_runner.env.single_observation_space.shape == (dim,)
    module = algo.get_module()
    assert isinstance(module.encoder if algorithm == "DQN" else module.pi_encoder, SetEncoder)
    assert type(algo.learner_group._learner).__name__.startswith("Lean")
    ring = algo.local_replay_buffer
    assert isinstance(ring, TransitionRing) and ring.obs.shape[1:] == (dim,) and len(ring) > 12
    assert report["iteration"] == 1 and np.isfinite(report["learner/qf_loss"])

    # no weight is sized by U or N: the per-user layer reads 2 frames × 5 features
    weights = torch.load(tmp_path / "checkpoint" / WEIGHTS_FILE, weights_only=True)
    users = next(v for k, v in weights.items() if "users.last.weight" in k)
    assert users.shape == (8, 2 * 5)
    _, policy, config = load_policy(tmp_path / "checkpoint")
    replayed = run_policy(DNTSyncEnv(config), policy, "policy", range(10000, 10003))
    assert replayed.mean_return == pytest.approx(report["eval/return"], rel=1e-12)
    big = CONFIG.replace(num_users=9, num_rbs=5)
    _, policy, config = load_policy(tmp_path / "checkpoint", big)
    assert config == big
    played = run_policy(DNTSyncEnv(big), policy, "policy", range(10000, 10003))
    assert np.isfinite(played.mean_return)


def test_ppo_trains_a_set_model_and_evaluates_it_at_another_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PPO's ``train()`` on the set model: its encoder (actor and critic share it:
    RLlib's default ``vf_share_layers``) is the set encoder, the iteration's losses are finite, and
    the checkpoint plays at (9, 5) as at (3, 2)."""
    training = {"train_batch_size_per_learner": 24, "minibatch_size": 8, "num_epochs": 2}
    model = {"kind": "set", "set_hiddens": [8], "fcnet_hiddens": [8]}
    params = tiny_trial("PPO", training=training, model=model)
    algo, report = run_trial(params, tmp_path / "checkpoint", monkeypatch)
    module = algo.get_module()
    assert isinstance(module.encoder.actor_encoder, SetEncoder)
    assert module.encoder.critic_encoder is None  # shared with the actor
    assert report["iteration"] == 1
    assert np.isfinite(report["learner/policy_loss"]) and np.isfinite(report["learner/vf_loss"])
    _, policy, config = load_policy(tmp_path / "checkpoint")
    replayed = run_policy(DNTSyncEnv(config), policy, "policy", range(10000, 10003))
    assert replayed.mean_return == pytest.approx(report["eval/return"], rel=1e-12)
    big = CONFIG.replace(num_users=9, num_rbs=5)
    _, policy, _ = load_policy(tmp_path / "checkpoint", big)
    assert np.isfinite(
        run_policy(DNTSyncEnv(big), policy, "policy", range(10000, 10003)).mean_return
    )
