"""`SlotBatch`: `DNTSyncEnv`'s slot dynamics for B independent episodes at once.

`DNTSyncVectorEnv` steps its envs through this. Episodes never terminate and are truncated
after the same T slots, so the B episodes of a batch start, step and end together. Every
array holds all of them (leading axis B) and one generator draws for all of them, so the
physics of a slot (eqs. 1–5, 14–17), the assignments included (two sorts per slot, no loop
over episodes), costs a few numpy calls whatever B is, and the twin predicts all B next DNT
states in one call. A batch of one draws in `DNTSyncEnv`'s order, so it plays what that env
plays with the same seed. At B = 1 this is slower than `DNTSyncEnv`'s scalar code (a numpy call
costs ~1 µs whatever its size), so the single env keeps its own; tests/env/test_vector.py
holds the two equal, bit for bit with the hold-last twin, and checks every env of a batch
against the single-episode physics.
"""

from __future__ import annotations

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.env.observation import DECISION_MODES, Observer
from dnt_rllib.physics import channel
from dnt_rllib.physics.allocation import assign
from dnt_rllib.physics.network import Network
from dnt_rllib.physics.reward import reward
from dnt_rllib.physics.sync import NO_RB, select_sync_rb
from dnt_rllib.twin import Twin


class SlotBatch:
    """The state of B episodes: s_t (and s_{t−1}, v_t), the DNT's history (and which of its
    states are true) and ŝ_t, interference (and its Markov state), the last sync requests,
    counters.

    ``rng`` draws for all episodes at once; its owner (the env) sets it on a seeded reset.
    """

    def __init__(self, config: SystemConfig, twin: Twin, size: int) -> None:
        cfg = config
        self.config = cfg
        self.size = size
        self.twin = twin
        self.network = Network.from_config(cfg)
        self.observer = Observer(cfg, self.network.max_sync_interference)
        self.rng = np.random.default_rng()
        users, rbs, d = cfg.num_users, cfg.num_rbs, cfg.state_dim
        self.positions = np.zeros((size, users, 2))  # s_t
        self.previous = np.zeros((size, users, 2))  # s_{t−1}
        self.velocity = np.zeros((size, users, 2))  # v_t (Gauss–Markov)
        self.loud: np.ndarray | None = None  # Markov interference state (B, N)
        self.history = np.zeros((size, cfg.history, d))  # the DNT's last M states
        self.prediction = np.zeros((size, d))  # ŝ_t
        self.interference = np.zeros((size, rbs))  # I_n this slot
        self.fading: np.ndarray | float = (
            np.full((size, users), cfg.fading) if cfg.rayleigh_fading else cfg.fading
        )
        self.slot = 0  # of every episode: they run in step
        self.since_sync = np.zeros(size, dtype=np.int64)
        self.requested = np.ones(size, dtype=np.bool_)  # a sync asked for in the last slot
        self.true_states = np.ones((size, cfg.history), dtype=np.bool_)  # history: true states
        self._all = np.arange(size)

    # --- what a BS can compute before deciding ---
    def paper_sync_rbs(self) -> np.ndarray:
        """The paper's sync RB R of every episode, or −1 where none meets γ (B,), eq. (5e)."""
        return select_sync_rb(self.interference, self.network.max_sync_interference)

    def rate_matrices(self) -> np.ndarray:
        """c_un of every episode (B, U, N), eq. (2)."""
        cfg = self.config
        gain = channel.channel_gain(
            self.positions, self.network.bs_position, self.fading,
            cfg.pathloss_exponent, cfg.min_distance,
        )  # fmt: skip
        return channel.rates(gain, self.interference, cfg.tx_power, cfg.bandwidth, cfg.noise_psd)

    def channel_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """(h_u (B, U), y_n = P / (I_n + B N0) (B, N)) of every episode: c_un =
        B log2(1 + h_u y_n), eq. (2), all the allocation needs."""
        cfg = self.config
        gain = channel.channel_gain(
            self.positions, self.network.bs_position, self.fading,
            cfg.pathloss_exponent, cfg.min_distance,
        )  # fmt: skip
        link = (cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
        return gain, channel.sinr_per_gain(self.interference, *link)

    # --- episodes and slots ---
    def begin(self) -> None:
        """All episodes start: users uniform, M slots walked with the DNT in sync (the
        history s_{−M} … s_{−1}), one more step to s_0, slot 0 drawn."""
        cfg, net, rng = self.config, self.network, self.rng
        b, steps = self.size, cfg.history
        positions = net.initial_positions(rng, (b,))
        velocity = net.initial_velocity(rng, (b,))
        draws = net.move_draws(rng, (b, steps))
        for m in range(steps + 1):
            if m:
                self.previous = positions
                positions, velocity = net.apply_moves(positions, velocity, draws[:, m - 1])
            if m < steps:
                self.history[:, m] = positions.reshape(b, -1)
        self.positions, self.velocity = positions, velocity
        self.slot = 0
        self.since_sync[:] = 0
        self.requested[:] = True
        self.true_states[:] = True
        self.loud = None
        self._draw_slot()

    def advance(self, actions: np.ndarray) -> tuple[np.ndarray, bool, dict[str, np.ndarray]]:
        """Play each episode's action and draw its next slot: rewards (B,), whether the
        episodes are truncated, and the info arrays (leading axis B)."""
        cfg = self.config
        b, d = self.size, cfg.state_dim
        requested, sync_rb = self._sync_rbs(actions)
        gain, scale = self.channel_terms()
        allocation, sum_rate = assign(gain, scale, cfg.bandwidth, sync_rb)  # (14), (16)
        interference, fading = self.interference, self.fading
        draws = self.network.move_draws(self.rng, (b,))
        self._draw_slot()
        states = self.positions.reshape(b, d)
        synced = sync_rb != NO_RB
        dnt_states = np.where(synced[:, None], states, self.prediction)  # eq. (4)
        diff = states - dnt_states
        sync_error = np.einsum("bi,bi->b", diff, diff)
        rewards = reward(sum_rate, sync_error, cfg.epsilon, cfg.num_users)
        info = {  # arrays that the next slot replaces rather than changes
            "user_positions": self.positions,
            "twin_positions": dnt_states.reshape(b, cfg.num_users, 2),
            "interference": interference,
            "synced": synced,
            "sync_rb": sync_rb,
            "infeasible_sync": requested & ~synced,
            "allocation": allocation,
            "sum_rate": sum_rate,
            "sync_error": sync_error,
        }
        if cfg.rayleigh_fading:  # this slot's o_u: with the rest, the rates follow from info
            info["fading"] = fading
        # Advance: the DNT keeps s'_t (eq. 4), users move (eq. 1), the slot counts.
        self.history[:, :-1] = self.history[:, 1:]
        self.history[:, -1] = dnt_states
        self.true_states[:, :-1] = self.true_states[:, 1:]
        self.true_states[:, -1] = synced
        self.requested = requested
        self.since_sync += 1
        self.since_sync[synced] = 0
        self.previous = self.positions
        self.positions, self.velocity = self.network.apply_moves(
            self.positions, self.velocity, draws
        )
        self.slot += 1
        return rewards, self.slot >= cfg.episode_length, info

    def observe(self) -> np.ndarray:
        """One twin call for all episodes' ŝ_t, then all observations (B, dim)."""
        b = self.size
        self.prediction = self.twin.predict(self.history)
        return self.observer(
            self.positions.reshape(b, -1), self.prediction, self.since_sync, self.interference,
            self.slot, (self.positions - self.previous).reshape(b, -1),
            self.channel_terms() if self.config.observation_mode in DECISION_MODES else None,
            (self.requested, self.true_states),
        )  # fmt: skip

    # --- internals ---
    def _sync_rbs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sync requested, RB actually used or −1) of every episode."""
        requested = actions != 0
        if self.config.action_mode == "binary":
            rb = self.paper_sync_rbs()
        else:
            rb = np.where(requested, actions - 1, 0)
            rb = np.where(
                self.interference[self._all, rb] <= self.network.max_sync_interference, rb, NO_RB
            )
        return requested, np.where(requested, rb, NO_RB)

    def _draw_slot(self) -> None:
        """Every episode's interference (and fading) for its new slot, as new arrays."""
        cfg, rng, b = self.config, self.rng, self.size
        self.interference, self.loud = self.network.draw_interference(rng, self.loud, (b,))
        if cfg.rayleigh_fading:
            self.fading = channel.draw_fading(rng, cfg.fading, (b, cfg.num_users))
