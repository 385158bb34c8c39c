"""What the agent sees of a slot, computed for a batch of envs at once.

Under the memory options the observation carries what a BS knows of the state that decides
the future. ``markov`` interference: nothing is added, since the per-RB I_n already observed
is its state's level and so reveals the state, which with the known transition law is all
there is to know about the next slots' interference. ``gauss_markov`` mobility: each user's
last displacement s_t − s_{t−1} is appended (2U entries, in units of
``VELOCITY_SCALE_STEPS``·step_size, clipped). The BS sees its users move, so it knows the
displacement, which equals the velocity v_t away from the walls; s_t alone does not carry
it, and neither does the DNT's history after a stretch without syncs (the twin's states are
then its own predictions). With it, the next state's conditional mean
s_t + α(s_t − s_{t−1}) + (1 − α)μ_u is a function of the observation. The default layout
(random walk) is unchanged.

``'compact'`` and ``'compact_memory'`` keep only what does not grow with the cell: the
rule's two numbers, the slots since the sync and left, and five statistics of the users'
offsets and the RBs' interference (:meth:`Observer.compact`); ``'compact_memory'`` adds the
memory flags below. Their size is the same for every U and N, so one policy runs on any
cell.

``'set'`` and ``'set_memory'`` keep every user and every RB, laid out so that a set model
(:mod:`dnt_rllib.rllib_ext.set_model`) can cut the vector into its sets; each frame is

    [U·2^−16, N·2^−16 | G globals | U users × F_u | N RBs × 2]

The two layout headers are exact in float32 (U, N ≤ 2^16). The globals (G = 4, or 5 + M
with ``'set_memory'``): the slots since the sync and the slots left (as ``'timed'``), the
gap penalty and the sync's rate cost (as ``'decision'``), then the memory flags below. User
u, user-major (F_u = 5, or 7 under Gauss–Markov mobility): its position (2) and the twin's
offset (2) as ``'full'`` scales them, its displacement (2, as below) where observed, and its
channel term h_u of eq. (2) on a log scale, 2 ln(h_u / h_lo) / ln(h_hi / h_lo) − 1 with
h_hi = o·d_min^−a and h_lo = o·(area / √2)^−a (a user at the floor distance and at a
corner, clipped). RB n, RB-major: its interference as ``'full'`` shows it and its scale
y_n = P / (I_n + B N0) on a log scale, 2 ln(y_n / y_lo) / ln(y_hi / y_lo) − 1 with
y_hi = P / (B N0) and y_lo = P / (B N0 + 10 Ī) (clipped), so that ln(h_u y_n), the SINR
in c_un = B log2(1 + h_u y_n), is a sum of a user's and an RB's entry (:func:`set_layout`).

What a BS remembers of its own decisions (``'memory'``): whether it asked for a sync last
slot, and which of the twin's last M states s'_{t−M} … s'_{t−1} are true states (a sync)
rather than the twin's own predictions, each ±1. Two true states in a row hand the GRU a
true velocity; the newest flag is whether the last slot synced (a request with a −1 there
was infeasible). ``frame_stack`` k > 1 shows the last k such observations (`FrameStack`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.allocation import slot_rates

#: The DNT-minus-physical offset is observed in units of this many step sizes, clipped.
OFFSET_SCALE_STEPS = 5.0
#: The Gauss–Markov displacement s_t − s_{t−1} is observed in units of this many step sizes
#: (|μ_u| + 3σ_u < 2.7 Δl, so clipping is rare), clipped.
VELOCITY_SCALE_STEPS = 3.0
#: ``'decision'``: the slot's gap penalty and the sync's rate cost (reward units) are
#: observed as 2(1 − exp(−x / DECISION_SCALE)) − 1; their medians on the default network
#: (≈ 0.8 and 1.8) land near the middle of [−1, 1].
DECISION_SCALE = 2.0
#: Observation modes of a fixed size whatever U and N (:meth:`Observer.compact`).
COMPACT_MODES = ("compact", "compact_memory")
#: Observation modes laid out as sets of users and RBs (:meth:`Observer.set_frame`).
SET_MODES = ("set", "set_memory")
#: Observation modes that show the slots left (the episode then terminates at T).
TIMED_MODES = ("timed", "decision", "memory", *COMPACT_MODES, *SET_MODES)
#: Observation modes that show what the threshold rule weighs (the gap penalty, the sync cost).
DECISION_MODES = ("decision", "memory", *COMPACT_MODES, *SET_MODES)
#: Observation modes that show the last sync request and the twin's true-state flags.
MEMORY_MODES = ("memory", "compact_memory", "set_memory")
#: A set observation's headers hold U and N in units of this (exact in float32).
SET_HEADER_UNIT = 2.0**-16
#: Largest U and N a set observation's headers hold.
SET_MAX_SIZE = 2**16
#: y_lo of a set observation's RB scale: the interference at this many times its mean.
SET_LOUD_INTERFERENCE = 10.0
#: The per-cell statistics of a compact observation, in order (:meth:`Observer.compact`).
COMPACT_STATISTICS = ("offset_mean", "offset_max", "interference_mean", "interference_min",
                      "interference_max")  # fmt: skip


@dataclass(frozen=True)
class SetLayout:
    """How a set observation cuts into sets (module docstring): ``frames`` frames of
    ``HEADERS + globals + users·user_features + rbs·RB_FEATURES`` entries each."""

    HEADERS: ClassVar[int] = 2
    RB_FEATURES: ClassVar[int] = 2
    globals: int
    user_features: int
    users: int
    rbs: int
    frames: int = 1

    @property
    def frame(self) -> int:
        """Entries of one frame."""
        return (self.HEADERS + self.globals + self.users * self.user_features
                + self.rbs * self.RB_FEATURES)  # fmt: skip


def set_layout(config: SystemConfig) -> SetLayout:
    """The layout of ``config``'s set observation (``'set'`` or ``'set_memory'``)."""
    if config.observation_mode not in SET_MODES:
        raise ValueError(f"observation_mode {config.observation_mode!r} is not a set mode")
    memory = (1 + config.history) * (config.observation_mode in MEMORY_MODES)
    return SetLayout(
        globals=4 + memory,
        user_features=5 + 2 * observes_displacement(config),
        users=config.num_users,
        rbs=config.num_rbs,
        frames=config.frame_stack,
    )


def frame_dim(config: SystemConfig) -> int:
    """One slot's observation: 2U for ``'paper'``; 2U + 2U + 1 + N for ``'full'``, plus 2U
    (the displacement) with Gauss–Markov mobility; ``'timed'`` adds one (the slots left) to
    ``'full'``, ``'decision'`` two more (the gap penalty and the sync's rate cost) and
    ``'memory'`` 1 + M more (the last sync request, the twin's M true-state flags).
    ``'compact'``: 9 whatever U and N; ``'compact_memory'``: 10 + M. ``'set'``:
    2 + 4 + 5U + 2N (7U under Gauss–Markov); ``'set_memory'``: 1 + M more (`SetLayout`)."""
    d = config.state_dim
    mode = config.observation_mode
    memory = (1 + config.history) * (mode in MEMORY_MODES)
    if mode == "paper":
        return d
    if mode in SET_MODES:
        return set_layout(config).frame
    if mode in COMPACT_MODES:
        return 4 + len(COMPACT_STATISTICS) + memory
    extra = (mode in TIMED_MODES) + 2 * (mode in DECISION_MODES) + memory
    return 2 * d + 1 + config.num_rbs + (d if observes_displacement(config) else 0) + extra


def observation_dim(config: SystemConfig) -> int:
    """What the env returns: ``frame_stack`` frames of :func:`frame_dim` entries."""
    return config.frame_stack * frame_dim(config)


def observes_displacement(config: SystemConfig) -> bool:
    """Whether the observation carries the users' displacement s_t − s_{t−1}."""
    return config.observation_mode != "paper" and config.mobility_model == "gauss_markov"


class Observer:
    """Maps slots to observations in [−1, 1] (the layout is `DNTSyncEnv`'s docstring).

    Every entry is elementwise in its inputs, so a batch of B envs gives bit for bit the
    rows that B calls with one env each would give.
    """

    def __init__(self, config: SystemConfig, max_sync_interference: float = np.inf) -> None:
        self.config = config
        self._max_sync_interference = max_sync_interference
        self.dim = frame_dim(config)
        self._centre = np.tile(np.asarray(config.bs_position, dtype=np.float64), config.num_users)
        self._half = config.area_size / 2
        self._offset_scale = OFFSET_SCALE_STEPS * config.step_size
        self._since_scale = 2.0 / config.episode_length
        self._interference_scale = -1.0 / config.interference if config.interference > 0 else 0.0
        self._displacement = observes_displacement(config)
        self._velocity_scale = VELOCITY_SCALE_STEPS * config.step_size
        if config.observation_mode in SET_MODES:
            self._set_scales()

    def __call__(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        since_sync: np.ndarray,
        interference: np.ndarray,
        slot: int,
        displacement: np.ndarray | None = None,
        channel: tuple[np.ndarray, np.ndarray] | None = None,
        memory: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Observations (B, dim) float32 from s_t and ŝ_t (B, 2U), slots since the last sync
        (B,), the per-RB interference (B, N), the slot t (the same in every env) and
        s_t − s_{t−1} (B, 2U; read only under Gauss–Markov mobility), the channel terms
        (h_u (B, U), y_n (B, N)) of c_un = B log2(1 + h_u y_n) (read only by ``'decision'``
        and ``'memory'``) and (read only by ``'memory'``) whether each env asked for a sync
        last slot (B,) and which of its twin's last M states are true, oldest first (B, M)."""
        cfg = self.config
        if cfg.observation_mode in COMPACT_MODES:
            return self.compact(states, predictions, since_sync, interference, slot, channel,
                                memory)  # fmt: skip
        if cfg.observation_mode in SET_MODES:
            return self.set_frame(states, predictions, since_sync, interference, slot,
                                  displacement, channel, memory)  # fmt: skip
        d = cfg.state_dim
        obs = np.empty((states.shape[0], self.dim), dtype=np.float32)
        position = obs[:, :d]
        np.subtract(states, self._centre, out=position, casting="same_kind")
        position /= self._half
        if cfg.observation_mode != "paper":
            offset = obs[:, d : 2 * d]
            np.subtract(predictions, states, out=offset, casting="same_kind")
            offset /= self._offset_scale  # clipped below with the rest
            obs[:, 2 * d] = since_sync * self._since_scale - 1.0
            noise = obs[:, 2 * d + 1 : 2 * d + 1 + cfg.num_rbs]
            if cfg.interference > 0:
                np.exp(interference * self._interference_scale, out=noise, casting="same_kind")
                noise *= -2.0
                noise += 1.0
            else:
                noise[:] = -1.0
            if self._displacement:
                if displacement is None:
                    raise ValueError("Gauss–Markov observations need the displacement")
                moved = obs[:, 2 * d + 1 + cfg.num_rbs : 3 * d + 1 + cfg.num_rbs]
                np.divide(displacement, self._velocity_scale, out=moved, casting="same_kind")
            at = 3 * d + 1 + cfg.num_rbs if self._displacement else 2 * d + 1 + cfg.num_rbs
            if cfg.observation_mode in TIMED_MODES:  # slots left (T − t), 2(T − t)/T − 1
                obs[:, at] = (cfg.episode_length - slot) * self._since_scale - 1.0
                at += 1
            if cfg.observation_mode in DECISION_MODES:
                if channel is None:
                    raise ValueError(
                        f"{cfg.observation_mode!r} observations need the channel terms"
                    )
                obs[:, at : at + 2] = self.decision(states, predictions, channel, interference)
                at += 2
            if cfg.observation_mode in MEMORY_MODES:
                self._memory_flags(obs, at, memory)
        return np.minimum(np.maximum(obs, -1.0, out=obs), 1.0, out=obs)

    def _memory_flags(
        self, obs: np.ndarray, at: int, memory: tuple[np.ndarray, np.ndarray] | None
    ) -> None:
        """From column ``at``: the last sync request, then the twin's M true-state flags (±1)."""
        if memory is None:
            raise ValueError(f"{self.config.observation_mode!r} observations need the memory flags")
        requested, true = memory
        obs[:, at] = np.where(requested, 1.0, -1.0)
        obs[:, at + 1 : at + 1 + self.config.history] = np.where(true, 1.0, -1.0)

    def compact(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        since_sync: np.ndarray,
        interference: np.ndarray,
        slot: int,
        channel: tuple[np.ndarray, np.ndarray] | None,
        memory: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        """(B, 9) or (B, 10 + M): the gap penalty and the sync's rate cost (as
        :meth:`decision`), the slots since the sync and the slots left (as ``'timed'``),
        then the users' offsets d_u = ‖ŝ_u − s_u‖ / (5 Δl), clipped to [0, 1], as 2·mean − 1
        and 2·max − 1, and the RBs' interference as the full observation shows each RB
        (1 − 2 exp(−I_n / I)) by its mean, min and max; with ``'compact_memory'``, the last
        sync request and the twin's M true-state flags (±1)."""
        cfg = self.config
        if channel is None:
            raise ValueError(f"{cfg.observation_mode!r} observations need the channel terms")
        b = states.shape[0]
        obs = np.empty((b, self.dim), dtype=np.float32)
        obs[:, 0:2] = self.decision(states, predictions, channel, interference)
        obs[:, 2] = since_sync * self._since_scale - 1.0
        obs[:, 3] = (cfg.episode_length - slot) * self._since_scale - 1.0
        gap = (predictions - states).reshape(b, cfg.num_users, -1)
        offset = np.minimum(np.linalg.norm(gap, axis=2) / self._offset_scale, 1.0)
        obs[:, 4] = 2.0 * offset.mean(axis=1) - 1.0
        obs[:, 5] = 2.0 * offset.max(axis=1) - 1.0
        if cfg.interference > 0:
            noise = 1.0 - 2.0 * np.exp(interference * self._interference_scale)
        else:
            noise = np.full(interference.shape, -1.0)
        obs[:, 6] = noise.mean(axis=1)
        obs[:, 7] = noise.min(axis=1)
        obs[:, 8] = noise.max(axis=1)
        if cfg.observation_mode in MEMORY_MODES:
            self._memory_flags(obs, 4 + len(COMPACT_STATISTICS), memory)
        return np.minimum(np.maximum(obs, -1.0, out=obs), 1.0, out=obs)

    def _set_scales(self) -> None:
        """ln h_lo, ln(h_hi / h_lo), ln y_lo and ln(y_hi / y_lo) of a set observation
        (module docstring); a span of zero (no interference) shows every RB at +1."""
        cfg = self.config
        far = max(cfg.area_size / np.sqrt(2.0), cfg.min_distance)
        self._log_h_lo = np.log(cfg.fading) - cfg.pathloss_exponent * np.log(far)
        self._log_h_span = max(cfg.pathloss_exponent * np.log(far / cfg.min_distance), 1e-12)
        quiet = cfg.bandwidth * cfg.noise_psd
        loud = quiet + SET_LOUD_INTERFERENCE * cfg.interference
        self._log_y_lo = np.log(cfg.tx_power / loud)
        self._log_y_span = np.log(loud / quiet)

    def set_frame(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        since_sync: np.ndarray,
        interference: np.ndarray,
        slot: int,
        displacement: np.ndarray | None,
        channel: tuple[np.ndarray, np.ndarray] | None,
        memory: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        """(B, 6 + 5U + 2N) (more with displacement or memory): ``'set'`` and
        ``'set_memory'``'s frame, laid out as the module docstring says (`SetLayout`)."""
        cfg = self.config
        if channel is None:
            raise ValueError(f"{cfg.observation_mode!r} observations need the channel terms")
        layout = set_layout(cfg)
        b, u, n = states.shape[0], cfg.num_users, cfg.num_rbs
        obs = np.empty((b, self.dim), dtype=np.float32)
        obs[:, 0] = u * SET_HEADER_UNIT
        obs[:, 1] = n * SET_HEADER_UNIT
        obs[:, 2] = since_sync * self._since_scale - 1.0
        obs[:, 3] = (cfg.episode_length - slot) * self._since_scale - 1.0
        obs[:, 4:6] = self.decision(states, predictions, channel, interference)
        if cfg.observation_mode in MEMORY_MODES:
            self._memory_flags(obs, 6, memory)
        gain, scale = channel
        parts = [(states.reshape(b, u, 2) - self._centre[:2]) / self._half,
                 (predictions - states).reshape(b, u, 2) / self._offset_scale]  # fmt: skip
        if self._displacement:
            if displacement is None:
                raise ValueError("Gauss–Markov observations need the displacement")
            parts.append(displacement.reshape(b, u, 2) / self._velocity_scale)
        log_h = (np.log(gain) - self._log_h_lo) / self._log_h_span
        parts.append(2.0 * log_h[..., None] - 1.0)
        at = SetLayout.HEADERS + layout.globals
        obs[:, at : at + u * layout.user_features] = np.concatenate(parts, axis=2).reshape(b, -1)
        at += u * layout.user_features
        rbs = obs[:, at:].reshape(b, n, SetLayout.RB_FEATURES)  # a copy: filled, then stored
        if cfg.interference > 0:
            rbs[..., 0] = 1.0 - 2.0 * np.exp(interference * self._interference_scale)
            rbs[..., 1] = 2.0 * (np.log(scale) - self._log_y_lo) / self._log_y_span - 1.0
        else:
            rbs[..., 0] = -1.0
            rbs[..., 1] = 1.0
        obs[:, at:] = rbs.reshape(b, -1)
        return np.minimum(np.maximum(obs, -1.0, out=obs), 1.0, out=obs)

    def decision(
        self,
        states: np.ndarray,
        predictions: np.ndarray,
        channel: tuple[np.ndarray, np.ndarray],
        noise: np.ndarray,
    ) -> np.ndarray:
        """(B, 2): what the threshold rule weighs, squashed — the gap penalty a sync avoids
        this slot, (1 − ε)/U ‖ŝ_t − s_t‖² (eq. 15), and the rate it costs the users,
        ε (Σc with every RB − Σc with the sync RB withheld) (eqs. 14, 16); the cost is
        the top of the range where no RB meets γ. Both sums come from one sorted pairing
        of the channel terms (h_u, y_n) (`~dnt_rllib.physics.allocation.slot_rates`)."""
        cfg = self.config
        gap = predictions - states
        penalty = (1.0 - cfg.epsilon) / cfg.num_users * np.einsum("bi,bi->b", gap, gap)
        gain, scale = channel
        free, withheld, _ = slot_rates(
            gain, scale, cfg.bandwidth, noise, self._max_sync_interference, cfg.action_mode
        )
        cost = cfg.epsilon * (free - withheld)
        out = np.stack([penalty, np.where(np.isnan(cost), np.inf, cost)], axis=1)
        return 1.0 - 2.0 * np.exp(-out / DECISION_SCALE)


class FrameStack:
    """The last k observations of B envs side by side, oldest first: (B, k·dim).

    What gymnasium's ``FrameStackObservation(env, k)`` (its default ``padding_type='reset'``)
    followed by ``FlattenObservation`` returns for each env: at a reset all k frames are the
    reset observation; each step drops the oldest frame and appends the new one. Every entry
    is a copy of one frame's entry, so B envs give bit for bit the rows that B stacks of one
    give. With k = 1 the observations pass through unchanged.
    """

    def __init__(self, size: int, k: int, dim: int) -> None:
        self.k = k
        self.dim = dim
        self._frames = np.zeros((size, k * dim), dtype=np.float32)

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """The stacks after a reset whose observations are ``obs`` (B, dim): k copies each."""
        if self.k == 1:
            return obs
        self._frames[:] = np.tile(obs, self.k)
        return self._frames.copy()

    def push(self, obs: np.ndarray) -> np.ndarray:
        """The stacks after a step whose observations are ``obs`` (B, dim)."""
        if self.k == 1:
            return obs
        frames, dim = self._frames, self.dim
        frames[:, :-dim] = frames[:, dim:]
        frames[:, -dim:] = obs
        return frames.copy()
