"""`lookahead`: a model-based planner on top of the threshold rule (SPEC "References").

Each slot it values "sync now" and "not now" by playing the rest of the episode with the
threshold rule on K futures sampled from the env's own model — the users' known mobility
(eq. 1, or Gauss–Markov from their current velocity), fresh interference (Markov: from each
RB's current state) and fading draws, the same twin — and picks the
branch with the higher mean. Both branches see the same K futures (common random
numbers), so their difference is not sampling noise of the futures' luck. Its own
generator is seeded from the episode's seed, so it replays the same decisions.
"""

from __future__ import annotations

import numpy as np

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.physics import channel
from dnt_rllib.physics.sync import NO_RB
from dnt_rllib.policies.rollout import rollout
from dnt_rllib.policies.tape import slot_rates
from dnt_rllib.policies.threshold import ThresholdRule, action_for, sync_choice

#: Mixed into each episode's seed for the planner's own generator.
STREAM = 0x100C


def sample_futures(
    env: DNTSyncEnv, rng: np.random.Generator, samples: int, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K futures of the next ``length`` slots from the env's current s_t: s (K, L, 2U) and
    the sum rates without and with a sync (K, L), as :func:`slot_rates` computes them."""
    cfg, net = env.config, env.network
    users, rbs = cfg.num_users, cfg.num_rbs
    positions = np.broadcast_to(env.user_positions, (samples, users, 2))
    velocity = np.broadcast_to(env.velocity, (samples, users, 2))
    loud = None if env.loud is None else np.broadcast_to(env.loud, (samples, rbs))
    states = np.empty((samples, length, users, 2))
    noise = np.empty((samples, length, rbs))
    fading = np.full((samples, length, users), cfg.fading)
    for t in range(length):  # the env's order: move, then the new slot's draws
        positions, velocity = net.move(rng, positions, velocity)
        states[:, t] = positions
        noise[:, t], loud = net.draw_interference(rng, loud, (samples,))
        if cfg.rayleigh_fading:
            fading[:, t] = channel.draw_fading(rng, cfg.fading, (samples, users))
    gain = channel.channel_gain(
        states, net.bs_position, fading, cfg.pathloss_exponent, cfg.min_distance
    )
    scale = channel.sinr_per_gain(noise, cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
    free, withheld, _ = slot_rates(
        gain.reshape(-1, users), scale.reshape(-1, rbs), cfg.bandwidth, noise.reshape(-1, rbs),
        net.max_sync_interference, cfg.action_mode,
    )  # fmt: skip
    shape = (samples, length)
    return states.reshape(samples, length, -1), free.reshape(shape), withheld.reshape(shape)


class LookaheadPolicy:
    """The planner as a `Policy`; ``samples`` is K."""

    def __init__(self, rule: ThresholdRule, samples: int) -> None:
        self.rule = rule
        self.samples = samples
        self.rng = np.random.default_rng(STREAM)

    def start_episode(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, STREAM])

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        cfg = env.config
        rb, free, withheld = sync_choice(env)
        if rb == NO_RB:
            return 0
        state, prediction = env.user_positions.ravel(), env.twin_prediction
        gap = state - prediction
        now_sync = cfg.epsilon * withheld
        now_wait = cfg.epsilon * free - (1.0 - cfg.epsilon) / cfg.num_users * float(gap @ gap)
        left = cfg.episode_length - env.slot - 1
        if left > 0:
            k = self.samples
            states, rate_free, rate_sync = sample_futures(env, self.rng, k, left)
            history = np.repeat(env.dnt_history[None], 2 * k, axis=0)
            history[:, :-1] = history[:, 1:]
            history[:k, -1], history[k:, -1] = state, prediction  # eq. (4) in each branch
            a, b = self.rule.a, self.rule.b
            returns = rollout(
                env.twin,
                history,
                np.concatenate([states, states]),
                np.concatenate([rate_free, rate_free]),
                np.concatenate([rate_sync, rate_sync]),
                cfg.epsilon,
                cfg.num_users,
                lambda t, penalty, loss: a * penalty >= loss + b,
            ).returns
            now_sync += returns[:k].mean()
            now_wait += returns[k:].mean()
        return action_for(env, rb) if now_sync > now_wait else 0
