"""One SAC and one DQN update from the same transitions: RLlib's path (episodes through the
learner connectors) and the fast path (a ring batch) give the same losses and weights.

Both algorithms start from the same learner state (weights and optimisers). The items are
RLlib's own sample, kept where the n-step window fits inside its episode (where it does not,
RLlib's buffer differs on purpose: tests/rllib_ext/test_replay_ring.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import ray
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

from dnt_rllib.config import SystemConfig
from dnt_rllib.rllib_ext.fast_replay import BatchReplayDQN, BatchReplaySAC
from dnt_rllib.rllib_ext.replay_ring import TransitionRing
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import Resources, TrialSpec

N_STEP, GAMMA = 3, 0.95
TIMESTEPS = {"num_env_steps_sampled_lifetime": 5_000, "num_agent_steps_sampled_lifetime": {}}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def build(algorithm: str, kind: str, **training: Any) -> Any:
    config = SystemConfig().replace(
        twin="hold", num_users=3, num_rbs=2, episode_length=10, observation_mode="decision"
    )
    spec = TrialSpec.make(
        config, algorithm, replay=kind, learner="rllib",
        training={"n_step": N_STEP, "gamma": GAMMA, **training}, model={"fcnet_hiddens": [16, 16]},
        resources=Resources(num_envs_per_env_runner=2),
    )  # fmt: skip
    return build_algorithm_config(spec, RLlibDNTEnv).build_algo()


def weights(algo: Any) -> dict[str, torch.Tensor]:
    module = algo.learner_group._learner.module[DEFAULT_MODULE_ID]
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(("algorithm", "fast_class"), [("SAC", BatchReplaySAC),
                                                        ("DQN", BatchReplayDQN)])  # fmt: skip
def test_one_update_is_the_same_on_both_paths(algorithm: str, fast_class: type) -> None:
    slow, fast = build(algorithm, "rllib"), build(algorithm, "fast")
    try:
        assert type(fast) is fast_class and type(slow) is not fast_class
        assert isinstance(fast.local_replay_buffer, TransitionRing)
        fast.learner_group.set_state(slow.learner_group.get_state())
        before = weights(slow)
        for key, value in weights(fast).items():
            torch.testing.assert_close(value, before[key])

        episodes = slow.env_runner.sample(num_timesteps=120, random_actions=True)
        buffer = EpisodeReplayBuffer(capacity=10_000)
        buffer.rng = np.random.default_rng(1)
        ring = TransitionRing(10_000)
        buffer.add(episodes)
        ring.add(episodes)
        items = buffer.sample(num_items=96, n_step=N_STEP, gamma=GAMMA, batch_length_T=0,
                              lookback=0, sample_episodes=True)  # fmt: skip
        stored = {ep.id_: ep for ep in buffer.episodes}
        items = [it for it in items if it.t_started + N_STEP <= len(stored[it.id_])]
        assert len(items) > 40
        slots = np.array([ring.slot_of(it.id_, it.t_started) for it in items])
        columns = ring.batch(slots, N_STEP, GAMMA)
        assert columns["n_step"].tolist() == [N_STEP] * len(items)

        slow_out = slow.learner_group.update(episodes=items, timesteps=TIMESTEPS)[0]
        batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, len(items))
        fast_out = fast.learner_group.update(batch=batch, timesteps=TIMESTEPS)[0]

        losses = [k for k in slow_out[DEFAULT_MODULE_ID] if k.endswith("loss")]
        assert "qf_loss" in losses
        for key in losses:
            a = float(np.asarray(slow_out[DEFAULT_MODULE_ID][key].peek()))
            b = float(np.asarray(fast_out[DEFAULT_MODULE_ID][key].peek()))
            assert b == pytest.approx(a, rel=1e-5, abs=1e-6), key
        after_slow, after_fast = weights(slow), weights(fast)
        moved = [k for k in after_slow if not torch.equal(after_slow[k], before[k])]
        assert moved  # the update did change the weights
        for key, value in after_fast.items():
            torch.testing.assert_close(value, after_slow[key], rtol=1e-5, atol=1e-6)
    finally:
        slow.stop()
        fast.stop()


def counters(algo: Any) -> tuple[int, int]:
    """(env steps sampled, env steps trained) over the algorithm's lifetime."""
    from ray.rllib.utils.metrics import (
        ALL_MODULES,
        ENV_RUNNER_RESULTS,
        LEARNER_RESULTS,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        NUM_ENV_STEPS_TRAINED_LIFETIME,
    )

    sampled = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
    trained = algo.metrics.peek(
        (LEARNER_RESULTS, ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), default=0
    )
    return int(sampled), int(trained)


def test_training_step_keeps_rllib_schedule() -> None:
    """The same number of training steps on both paths: the same env steps sampled, no update
    before ``num_steps_sampled_before_learning_starts``, then ``training_intensity``'s
    updates per sample, and the env runner acting with the learner's weights afterwards.

    2 envs × a 3-step fragment = 6 env steps per training step; batch 32 is 32/6 of them,
    so intensity 8 asks 8 / (32/6) = 1.5 → RLlib rounds to 2 updates of 32 per step."""
    runs = {}
    for kind in ("rllib", "fast"):
        algo = build("DQN", kind, num_steps_sampled_before_learning_starts=60,
                     train_batch_size_per_learner=32, training_intensity=8)  # fmt: skip
        try:
            history = []
            assert algo.config.get_rollout_fragment_length() == 3
            for _ in range(16):
                algo.training_step()
                history.append(counters(algo))
            learner = algo.learner_group._learner.module[DEFAULT_MODULE_ID].state_dict()
            runner = algo.env_runner.module.state_dict()
            for key, value in runner.items():
                torch.testing.assert_close(value, learner[key])
            runs[kind] = history
        finally:
            algo.stop()
    assert runs["fast"] == runs["rllib"]
    for step, (sampled, trained) in enumerate(runs["fast"], start=1):
        assert sampled == 6 * step
        assert trained == (2 * 32 * (step - 9) if sampled >= 60 else 0)


def test_fast_path_trains_on_a_learner_actor() -> None:
    """``num_learners: 1``: the ring's batch goes to a remote learner, and the env runner
    then acts with that learner's weights."""
    config = SystemConfig().replace(twin="hold", num_users=3, num_rbs=2, episode_length=10)
    spec = TrialSpec.make(
        config, "SAC", learner="rllib", model={"fcnet_hiddens": [8]},
        resources=Resources(num_envs_per_env_runner=2, num_learners=1),
        training={"num_steps_sampled_before_learning_starts": 20,
                  "train_batch_size_per_learner": 16},
    )  # fmt: skip
    algo = build_algorithm_config(spec, RLlibDNTEnv).build_algo()
    try:
        assert type(algo) is BatchReplaySAC and not algo.learner_group.is_local
        for _ in range(2):
            result = algo.train()
        assert result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"] > 0
        learner = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        for key, value in algo.env_runner.module.state_dict().items():
            np.testing.assert_allclose(np.asarray(learner[key]), value.numpy())
    finally:
        algo.stop()
