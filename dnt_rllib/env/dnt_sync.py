"""`DNTSyncEnv`: the BS's slot-by-slot sync decision as a gymnasium environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.env.observation import (
    DECISION_MODES,
    TIMED_MODES,
    FrameStack,
    Observer,
    observation_dim,
)
from dnt_rllib.physics import channel
from dnt_rllib.physics.allocation import assign
from dnt_rllib.physics.network import Network
from dnt_rllib.physics.reward import reward
from dnt_rllib.physics.sync import NO_RB, select_sync_rb
from dnt_rllib.twin import Twin, make_twin


def check_action(action: Any, n: int) -> int:
    """``action`` as an int if it is one of the n discrete actions, else a one-line ValueError
    (a float, a bool or an integer outside 0..n−1 would otherwise sync on the wrong RB)."""
    value = action.item() if isinstance(action, np.ndarray) and action.shape == () else action
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise ValueError(f"action {action!r}: must be an integer in 0..{n - 1}")
    return value


class DNTSyncEnv(gym.Env[np.ndarray, np.int64]):
    """A base station decides each slot whether to spend an RB to sync its digital twin.

    ## Description
    U users random-walk (eq. 1; or move Gauss–Markov, ``mobility_model``) around a BS that
    serves them over N OFDMA RBs (eq. 2; interference i.i.d. or Markov, ``interference_model``). A
    cloud server hosts the digital network twin (DNT). Each slot the BS may send the
    physical state s_t to the cloud on one RB (eq. 3, delay D/c^C ≤ γ), which makes the DNT
    exact (eq. 4) but withholds that RB from the users (eq. 16); otherwise the DNT rolls
    forward on its twin's prediction ŝ_t from its last M states. Users get RBs by the optimal
    assignment of eqs. (14, 16): the best users on the quietest RBs, in order
    (`~dnt_rllib.physics.allocation`).

    ## Action Space
    ``action_mode='binary'``: Discrete(2); 0 = no sync, 1 = sync on the paper's RB
    R = argmax_n {T^C_n ≤ γ}. ``action_mode='rb'``: Discrete(N+1); 0 = no sync, n = sync on
    RB n−1. A sync on an RB that misses the delay bound does not happen (counted in
    ``info['infeasible_sync']``) and the slot is scored as no sync.

    ## Observation Space
    Box in [−1, 1]. ``'paper'``: s_t scaled by the area. ``'full'`` (default): s_t scaled by
    the area; the twin's state ŝ_t as its offset from s_t in units of
    5·step_size (clipped); slots since the last sync, 2k/T − 1 (clipped); and the per-RB
    interference through its exponential CDF, 2(1 − exp(−I_n / mean)) − 1; with
    ``mobility_model='gauss_markov'`` also each user's last displacement s_t − s_{t−1}
    in units of 3·step_size (clipped): the velocity estimate a BS that sees its users move
    has, and the one thing Gauss–Markov motion is predictable from. ``'timed'``: all of
    ``'full'``, then the slots left, 2(T − t)/T − 1. ``'decision'``: all of ``'timed'``,
    then what the threshold rule weighs — the gap penalty (1 − ε)/U ‖ŝ_t − s_t‖² a sync
    avoids and the rate ε(Σc_all − Σc_withheld) it costs (∞ where no RB meets γ) — each
    as 1 − 2 exp(−x / 2). ``'memory'``: all of ``'decision'``, then what the BS remembers
    of its own decisions, each +1 (yes) or −1 (no): whether it asked for a sync last slot
    (in ``rb`` mode whichever RB it asked for), then for each of the twin's last M states
    s'_{t−M} … s'_{t−1}, oldest first, whether it is a true state (a sync) rather than the
    twin's prediction; the newest flag is whether the last slot synced, so a request
    beside a −1 there was infeasible. At a reset the history was walked in sync (Starting
    State), so every flag and the request are +1.

    ``frame_stack`` = k > 1: the last k observations above side by side, oldest first
    (k·dim entries), as gymnasium's ``FrameStackObservation(env, k)`` then
    ``FlattenObservation`` give them: at a reset all k are the reset observation.

    ## Rewards
    r_t = ε Σ_u c_ut − (1 − ε)/U ‖s_t − s'_t‖² (eqs. 15, 17); the gap is 0 on a sync.

    ## Starting State
    Users start uniformly in the area and walk M slots with the DNT in sync, so the twin's
    history is s_{−M} … s_{−1} and ŝ_0 predicts s_0 like every later ŝ_t predicts s_t;
    users then take one more step to s_0.

    ## Episode End
    Truncated after ``episode_length`` slots; with ``observation_mode`` 'timed',
    'decision' or 'memory' the state shows the slots left, so the episode *terminates*
    there instead (nothing to bootstrap).

    ## Arguments
    ``config``: a :class:`~dnt_rllib.config.SystemConfig` or a dict of its fields.
    ``twin``: optional predictor overriding ``config.twin``.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        config: SystemConfig | Mapping[str, Any] | None = None,
        twin: Twin | None = None,
    ) -> None:
        self.config = SystemConfig.coerce(config)
        cfg = self.config
        self.network = Network.from_config(cfg)
        self.move_probs = self.network.move_probs
        self.twin = twin if twin is not None else make_twin(cfg)

        self.observation_space, self.action_space = self.spaces(cfg)
        self.observer = Observer(cfg, self.network.max_sync_interference)

        self._centre = np.asarray(cfg.bs_position, dtype=np.float64)
        self._positions = np.zeros((cfg.num_users, 2))
        self._history = np.zeros((1, cfg.history, cfg.state_dim))
        self._prediction = np.zeros(cfg.state_dim)
        self._interference = np.zeros(cfg.num_rbs)
        self._fading: np.ndarray | float = cfg.fading
        self._previous = np.zeros((cfg.num_users, 2))  # s_{t−1}
        self._velocity = np.zeros((cfg.num_users, 2))  # v_t (Gauss–Markov)
        self._loud: np.ndarray | None = None  # Markov interference state
        self._slot = 0
        self._since_sync = 0
        self._requested = True  # a sync asked for in the last slot
        self._true = np.ones(cfg.history, dtype=np.bool_)  # which history states are true
        self._stack = FrameStack(1, cfg.frame_stack, self.observer.dim)

    @staticmethod
    def spaces(config: SystemConfig) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
        """(observation space, action space) of one env under ``config``."""
        observations = gym.spaces.Box(-1.0, 1.0, shape=(observation_dim(config),), dtype=np.float32)
        actions = gym.spaces.Discrete(2 if config.action_mode == "binary" else config.num_rbs + 1)
        return observations, actions

    # --- gymnasium API ---
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # Users start uniformly and walk M slots with the DNT in sync (s_{−M} … s_{−1}), then
        # step to s_0, so slot 0's ŝ_0 is a one-step prediction like every other slot's.
        rng, net, history = self.np_random, self.network, self._history
        positions = net.initial_positions(rng)
        velocity = net.initial_velocity(rng)
        for m in range(self.config.history):
            if m:
                positions, velocity = net.move(rng, positions, velocity)
            history[0, m] = positions.ravel()
        self._previous = positions
        self._positions, self._velocity = net.move(rng, positions, velocity)
        self._slot = 0
        self._since_sync = 0
        self._requested = True
        self._true[:] = True
        self._loud = None
        self._draw_slot()
        return self._stack.reset(self._observe()[None])[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        cfg = self.config
        requested, sync_rb = self._sync_rb(check_action(action, self.action_space.n))
        gain, scale = self.channel_terms()
        allocation, total = assign(gain, scale, cfg.bandwidth, sync_rb)  # (14), (16)
        sum_rate = float(total)
        state = self._positions.ravel()
        synced = sync_rb != NO_RB
        dnt_state = state if synced else self._prediction
        diff = state - dnt_state
        sync_error = float(np.einsum("i,i->", diff, diff))  # `SlotBatch`'s sum, bit for bit
        r = reward(sum_rate, sync_error, cfg.epsilon, cfg.num_users)
        info = {
            "user_positions": self._positions.copy(),
            "twin_positions": dnt_state.reshape(cfg.num_users, 2).copy(),
            "interference": self._interference.copy(),
            "synced": synced,
            "sync_rb": sync_rb,
            "infeasible_sync": requested and not synced,
            "allocation": allocation,
            "sum_rate": sum_rate,
            "sync_error": sync_error,
        }
        if cfg.rayleigh_fading:  # this slot's o_u: with the rest, the rates follow from info
            info["fading"] = self._fading.copy()
        # Advance: the DNT keeps s'_t (eq. 4), users move (eq. 1), a new slot is drawn.
        history = self._history[0]
        history[:-1] = history[1:]
        history[-1] = dnt_state
        self._true[:-1] = self._true[1:]
        self._true[-1] = synced
        self._requested = requested
        self._since_sync = 0 if synced else self._since_sync + 1
        self._previous = self._positions
        self._positions, self._velocity = self.network.move(
            self.np_random, self._positions, self._velocity
        )
        self._slot += 1
        self._draw_slot()
        ended = self._slot >= cfg.episode_length
        timed = cfg.observation_mode in TIMED_MODES
        obs = self._stack.push(self._observe()[None])[0]
        return obs, r, ended and timed, ended and not timed, info

    # --- what a BS (and the greedy baseline) can compute before deciding ---
    def rate_matrix(self) -> np.ndarray:
        """c_un for this slot's positions, fading and interference (U×N), eq. (2)."""
        cfg = self.config
        gain = channel.channel_gain(
            self._positions, self._centre, self._fading, cfg.pathloss_exponent, cfg.min_distance
        )
        return channel.rates(gain, self._interference, cfg.tx_power, cfg.bandwidth, cfg.noise_psd)

    def channel_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """(h_u (U,), y_n = P / (I_n + B N0) (N,)) of this slot: c_un = B log2(1 + h_u y_n),
        eq. (2), all the allocation needs (`~dnt_rllib.physics.allocation`)."""
        cfg = self.config
        gain = channel.channel_gain(
            self._positions, self._centre, self._fading, cfg.pathloss_exponent, cfg.min_distance
        )
        link = (cfg.tx_power, cfg.bandwidth, cfg.noise_psd)
        return gain, channel.sinr_per_gain(self._interference, *link)

    def paper_sync_rb(self) -> int:
        """The RB the paper's rule would use for a sync this slot, or −1 if none is feasible."""
        return int(select_sync_rb(self._interference, self.network.max_sync_interference))

    @property
    def twin_prediction(self) -> np.ndarray:
        """ŝ_t: the DNT state this slot if the BS does not sync (2U,)."""
        return self._prediction

    @property
    def user_positions(self) -> np.ndarray:
        """s_t as U×2."""
        return self._positions

    @property
    def interference(self) -> np.ndarray:
        """I_n of this slot (N,)."""
        return self._interference

    @property
    def velocity(self) -> np.ndarray:
        """v_t as U×2 (Gauss–Markov; zeros under the random walk)."""
        return self._velocity

    @property
    def loud(self) -> np.ndarray | None:
        """The Markov interference state of this slot (N,) bool, True = loud; None if iid."""
        return self._loud

    @property
    def slots_since_sync(self) -> int:
        return self._since_sync

    @property
    def dnt_history(self) -> np.ndarray:
        """The DNT's last M states s'_{t−M} … s'_{t−1} that ŝ_t was predicted from (M, 2U)."""
        return self._history[0]

    @property
    def dnt_history_true(self) -> np.ndarray:
        """Which of `dnt_history`'s states are true states s (a sync), oldest first (M,)."""
        return self._true

    @property
    def sync_requested(self) -> bool:
        """Whether the last slot's action asked for a sync (True after a reset: the history
        was walked in sync)."""
        return self._requested

    @property
    def slot(self) -> int:
        """t: slots played in this episode."""
        return self._slot

    # --- internals (`SlotBatch` does the same for B episodes; tests hold them equal) ---
    def _sync_rb(self, action: int) -> tuple[bool, int]:
        """(sync requested, RB actually used or −1)."""
        if action == 0:
            return False, NO_RB
        if self.config.action_mode == "binary":
            return True, self.paper_sync_rb()
        rb = action - 1
        return True, rb if self._interference[rb] <= self.network.max_sync_interference else NO_RB

    def _draw_slot(self) -> None:
        """This slot's interference (and fading)."""
        cfg, rng = self.config, self.np_random
        self._interference, self._loud = self.network.draw_interference(rng, self._loud)
        if cfg.rayleigh_fading:
            self._fading = channel.draw_fading(rng, cfg.fading, cfg.num_users)

    def _observe(self) -> np.ndarray:
        """The twin's ŝ_t for this slot, then this slot's observation (one frame)."""
        self._prediction = self.twin.predict(self._history)[0]
        return self.observer(
            self._positions.reshape(1, -1),
            self._prediction[None],
            np.array([self._since_sync]),
            self._interference[None],
            self._slot,
            (self._positions - self._previous).reshape(1, -1),
            self._channel_batch() if self.config.observation_mode in DECISION_MODES else None,
            (np.array([self._requested]), self._true[None]),
        )[0]

    def _channel_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """`channel_terms` as a batch of one."""
        gain, scale = self.channel_terms()
        return gain[None], scale[None]
