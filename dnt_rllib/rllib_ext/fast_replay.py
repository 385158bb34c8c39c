"""SAC and DQN whose replay hands the learner ready batches (``replay: {kind: fast}``).

The subclasses change two of RLlib's extension points and nothing of the mathematics:

- ``_create_local_replay_buffer_if_necessary`` builds a :class:`TransitionRing` of
  ``replay_buffer_config.capacity`` transitions instead of RLlib's ``EpisodeReplayBuffer``
  (whose type name stays in the config, so RLlib's validation is unchanged);
- ``_training_step_new_api_stack`` is DQN's (which SAC inherits) step for step: the same
  sample/train round-robin weights from ``training_intensity``, the same
  ``num_steps_sampled_before_learning_starts`` on the lifetime env steps, the same
  ``timesteps`` handed to the learner (its target-network updates and schedules read them),
  the same weight sync to the env runners and metrics; only the batch is sampled from the
  ring and given to ``learner_group.update(batch=MultiAgentBatch)``, which skips the learner
  connectors (the columns are already those the losses read, see
  :data:`dnt_rllib.rllib_ext.replay_ring.COLUMNS`).

Sampling is uniform; prioritised replay is not offered on this path.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.dqn.dqn import DQN, calculate_rr_weights
from ray.rllib.algorithms.sac.sac import SAC
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_RESULTS,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TD_ERROR_KEY,
    TIMERS,
)

from dnt_rllib.rllib_ext.replay_ring import TransitionRing

#: ``replay.kind`` values: our ring, or RLlib's ``EpisodeReplayBuffer`` (for comparison).
REPLAY_KINDS = ("fast", "rllib")


class BatchReplayMixin:
    """The ring buffer and the batch-native training step (module docstring)."""

    def _create_local_replay_buffer_if_necessary(self, config: Any) -> TransitionRing:
        replay = config["replay_buffer_config"]
        if "Prioritized" in str(replay.get("type", "")):
            raise ValueError(
                "replay.kind = fast samples uniformly; use replay.kind = rllib for a "
                "prioritised replay buffer"
            )
        return TransitionRing(int(replay.get("capacity", 100_000)), seed=config.get("seed"))

    def replay_batch(self) -> MultiAgentBatch:
        """One train batch of ``total_train_batch_size`` n-step items from the ring."""
        size = self.config.total_train_batch_size
        columns = self.local_replay_buffer.sample(size, self.config.n_step, self.config.gamma)
        return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, size)

    def _training_step_new_api_stack(self) -> None:
        store_weight, sample_and_train_weight = calculate_rr_weights(self.config)
        for _ in range(store_weight):
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                episodes, env_runner_results = synchronous_parallel_sample(
                    worker_set=self.env_runner_group,
                    concat=True,
                    sample_timeout_s=self.config.sample_timeout_s,
                    _uses_new_env_runners=True,
                    _return_metrics=True,
                )
            self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
                self.local_replay_buffer.add(episodes)

        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if sampled < self.config.num_steps_sampled_before_learning_starts:
            return
        timesteps = {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
            ),
        }
        for _ in range(sample_and_train_weight):
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
                batch = self.replay_batch()
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self.learner_group.update(batch=batch, timesteps=timesteps)
                for res in results:  # per-sample TD errors: for priorities only, not logged
                    for module_results in res.values():
                        module_results.pop(TD_ERROR_KEY, None)
                self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self.metrics.log_value(
            (REPLAY_BUFFER_RESULTS, "num_env_steps_stored"),
            len(self.local_replay_buffer),
            window=1,
        )
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies={DEFAULT_MODULE_ID},
                global_vars=None,
                inference_only=True,
            )


class BatchReplaySAC(BatchReplayMixin, SAC):
    """RLlib's SAC with :class:`BatchReplayMixin`'s replay."""


class BatchReplayDQN(BatchReplayMixin, DQN):
    """RLlib's DQN with :class:`BatchReplayMixin`'s replay."""


FAST_CLASSES: dict[str, type] = {"SAC": BatchReplaySAC, "DQN": BatchReplayDQN}
