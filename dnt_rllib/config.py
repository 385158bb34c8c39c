"""`SystemConfig`: the network of the paper (Table I defaults), frozen and validated.

Every field carries a one-line doc (with its unit or paper symbol) and a check. A config is
built from keyword arguments, a dict (``SystemConfig.from_dict``) or a YAML file read with
a safe loader (``SystemConfig.from_yaml``). Any wrong type, out-of-range value or unknown key
raises :class:`~dnt_rllib.validation.ConfigError` with one line naming the field.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnt_rllib.validation import (
    ConfigError,
    Range,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_keys,
    check_pair,
    read_yaml_mapping,
    short,
)

POSITIVE = Range(0.0, None, lo_open=True)
NON_NEGATIVE = Range(0.0, None)
ANY = Range()
AT_LEAST_ONE = Range(1, None)

Check = Callable[[str, str, Any], Any]


#: Fields that change what a policy sees, not what happens in an episode: runs that differ
#: only in these share their episodes, and so their reference policies' scores.
NOT_EPISODE_FIELDS = ("observation_mode", "frame_stack", "twin_cache_dir")
#: Fields no cached result depends on (the twin, the threshold fit): cache keys leave them out.
UNKEYED_FIELDS = ("twin_cache_dir", "frame_stack")
#: The memory options (issue 17), added after results were cached: keys over "every field"
#: (the threshold fit's) leave them out while they hold their defaults, so a config from
#: before them keeps its key and cached results.
MEMORY_FIELDS = (
    "interference_model",
    "interference_loud_share",
    "interference_loud_ratio",
    "interference_memory",
    "mobility_model",
    "mobility_memory",
)


def _f(default: Any, doc: str, check: Check) -> Any:
    return field(default=default, metadata={"doc": doc, "check": check})


def _int(rng: Range) -> Check:
    return lambda owner, name, v: check_int(owner, name, v, rng)


def _float(rng: Range) -> Check:
    return lambda owner, name, v: check_float(owner, name, v, rng)


def _pair(rng: Range) -> Check:
    return lambda owner, name, v: check_pair(owner, name, v, rng)


def _choice(*choices: str) -> Check:
    return lambda owner, name, v: check_choice(owner, name, v, choices)


def _bool() -> Check:
    return lambda owner, name, v: check_bool(owner, name, v)


def _str() -> Check:
    def check(owner: str, name: str, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{owner}.{name} = {short(v)}: must be a non-empty string")
        return v

    return check


def physical_memory() -> int:
    """Bytes of RAM on this machine (large if unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


#: Peak RSS of a process that has imported torch, numpy, scipy and this package and run a
#: small twin pretraining or evaluation (U = 10): 0.37–0.41 GiB measured (docs/speed.md).
PROCESS_BYTES = 0.4 * 2**30
#: User-trajectories (network trajectories × U) the shared GRU twin trains on at most: the
#: paper's 2,000 trajectories of U = 10 users, so its data, memory and pretraining time stay
#: flat in U (see :attr:`SystemConfig.twin_training_trajectories`).
SHARED_USER_TRAJECTORIES = 20_000
#: Fewest trajectories the GRU twin trains on (``twin_trajectories``' lower bound).
MIN_TRAJECTORIES = 10
#: Episode rows of one batched replay of the threshold rule's candidates (its fit).
REPLAY_ROWS = 6_000


def memory_estimate(config: SystemConfig) -> dict[str, tuple[str, float]]:
    """Peak bytes of each phase a run of ``config`` goes through, by phase: (the fields that
    set it, bytes). Each is the process (:data:`PROCESS_BYTES`) plus the phase's float64
    arrays as the code builds them; 2–17 % above the measured peak RSS at U = 10 to 1,000
    (docs/speed.md, "Memory")."""
    u, t, m, h = config.num_users, config.episode_length, config.history, config.gru_hidden
    copies = 4 if config.twin == "gru_shared" else 3
    out = {
        # the threshold fit replays REPLAY_ROWS episode rows at once: their states s_t
        # (T × 2U), the DNT's history and its window copies (3 × M × 2U; the shared twin
        # copies the histories once more, user by user, and predicts them in chunks)
        "evaluation (the threshold rule's batched replay)": (
            "num_users, episode_length, history",
            PROCESS_BYTES + REPLAY_ROWS * 16.0 * u * (t + copies * m),
        ),
        # an episode's per-RB draws (interference, SINR scale, sort order), as a list and
        # then as arrays, when its tape is recorded
        "an episode's per-RB draws (the tapes)": (
            "num_rbs, episode_length",
            PROCESS_BYTES + 32.0 * t * config.num_rbs,
        ),
    }
    if config.twin != "hold":
        # per user and trajectory: its T states (16 T bytes), the (T − M) windows of M + 1
        # states (16 (T − M)(M + 1)), normalised (the same again) and as float32 (half); the
        # shared twin also copies them into user-windows (float32) with their user (int64),
        # on at most SHARED_USER_TRAJECTORIES / U trajectories, and its cell reads 2
        # coordinates, not 2U
        shared = config.twin == "gru_shared"
        per_window = 40.0 * (m + 1) + (8.0 * m + 16.0 if shared else 0.0)
        windows = per_window * max(t - m, 0)
        data = float(config.twin_training_trajectories) * u * (16.0 * t + windows)
        d = 2 if shared else 2 * u
        weights = 4.0 * 4 * 3 * h * (d + h + 2) + 8.0 * 3 * h * (d + h + 2) + 32.0 * u * shared
        total = PROCESS_BYTES + data + weights  # named by its larger part
        if data >= weights:
            out["twin pretraining (its trajectories and training windows)"] = (
                "twin_trajectories, num_users, episode_length, history",
                total,
            )
        else:
            out["twin pretraining (the GRU's weights, gradients and Adam state)"] = (
                "gru_hidden", total)  # fmt: skip
    return out


def check_fits(config: SystemConfig, limit: float | None = None) -> None:
    """Refuse a config whose largest phase cannot fit in this machine's memory (one line,
    naming the phase and the fields that set it)."""
    limit = physical_memory() if limit is None else limit
    what, (fields, size) = max(memory_estimate(config).items(), key=lambda kv: kv[1][1])
    if size > limit:
        names = [f.strip() for f in fields.split(",")]
        values = ", ".join(f"{n} = {getattr(config, n)}" for n in names)
        raise ConfigError(
            f"SystemConfig.{values}: {what} needs ~{size / 2**30:,.1f} GiB, more than this "
            f"machine's {limit / 2**30:,.1f} GiB of memory; lower {' or '.join(names)}"
        )


#: ``observation_mode``'s values (`dnt_rllib.env.observation`).
OBSERVATION_MODES = ("full", "paper", "timed", "decision", "memory", "compact", "compact_memory",
                     "set", "set_memory")  # fmt: skip


@dataclass(frozen=True)
class SystemConfig:
    """The DNT-enabled network of the paper (§II, Table I) and its simulation settings.

    Two options give the network memory (the paper's model is the default of both):

    ``interference_model='markov'`` (Gilbert–Elliott): each RB is quiet or loud, a two-state
    Markov chain per RB, independent across RBs, with π = ``interference_loud_share`` and
    λ = ``interference_memory``:

        p01 = P(quiet → loud) = π(1 − λ),   p10 = P(loud → quiet) = (1 − π)(1 − λ),

    so P(loud next | loud now) = π(1 − λ) + λ, the stationary share of loud slots is
    p01 / (p01 + p10) = π, and the lag-k correlation of the state is λ^k (a loud spell lasts
    1/p10 slots on average). An episode starts from the stationary law. I_n is the level of
    its state, no fading within a state (the BS's measured I_n reveals the state):

        I_quiet = I / (1 − π + π r),   I_loud = r · I_quiet,   r = ``interference_loud_ratio``,

    so the long-run mean (1 − π) I_quiet + π I_loud equals ``interference`` = I.

    ``mobility_model='gauss_markov'`` (Liang & Haas 1999): user u keeps a velocity v_t and
    moves s_{t+1} = s_t + v_{t+1} with, α = ``mobility_memory`` and w ~ N(0, I₂),

        v_{t+1} = α v_t + (1 − α) μ_u + sqrt(1 − α²) σ_u w,

    whose stationary law, N(μ_u, σ_u² I₂), is also how v starts. μ_u and σ_u match user u's
    random-walk step (eq. 1, its move probabilities p_u): μ_u = Δl Σ_k p_uk m_k and
    2σ_u² = Δl² (1 − p_u1) − ‖μ_u‖², so at α = 0 a slot's displacement has the random walk's
    mean and variance (RMS speed Δl sqrt(1 − p_u1)), and α sets how long a direction lasts.
    A coordinate that crosses the border is reflected back inside and that component of v
    changes sign.
    """

    # --- network (Table I) ---
    num_users: int = _f(10, "U: number of mobile users", _int(AT_LEAST_ONE))
    num_rbs: int = _f(6, "N: number of OFDMA resource blocks", _int(AT_LEAST_ONE))
    bandwidth: float = _f(1.0, "B: bandwidth of one RB [Hz, normalised]", _float(POSITIVE))
    tx_power: float = _f(1.0, "P: BS transmit power per RB [W, normalised]", _float(POSITIVE))
    noise_psd: float = _f(1e-5, "N0: noise power spectral density [W/Hz]", _float(POSITIVE))
    fading: float = _f(1.0, "o_u: fading gain (mean gain in Rayleigh mode)", _float(POSITIVE))
    rayleigh_fading: bool = _f(
        False, "draw o_u ~ Exp(mean `fading`) per user and slot instead of fixed", _bool()
    )
    pathloss_exponent: float = _f(
        2.0, "path-loss exponent: h = o_u * d^-exponent", _float(Range(0.0, 10.0, lo_open=True))
    )
    min_distance: float = _f(
        1.0, "distance floor d >= min_distance in the path loss [m]", _float(POSITIVE)
    )
    bs_position: tuple[float, float] = _f((0.0, 0.0), "l^N: BS coordinate [m]", _pair(ANY))
    cloud_position: tuple[float, float] = _f(
        (20.0, 20.0), "l^C: cloud-server coordinate [m]", _pair(ANY)
    )
    area_size: float = _f(100.0, "side of the square area centred on the BS [m]", _float(POSITIVE))
    interference: float = _f(
        1e-4,
        "mean out-of-cell interference power I_n [W] (long-run mean in either model)",
        _float(NON_NEGATIVE),
    )
    interference_model: str = _f(
        "iid",
        "'iid' (I_n ~ Exp(mean) per RB and slot) or 'markov' (per-RB quiet/loud chain)",
        _choice("iid", "markov"),
    )
    interference_loud_share: float = _f(
        0.2,
        "markov: π, the long-run share of slots an RB is loud",
        _float(Range(0.0, 1.0, lo_open=True, hi_open=True)),
    )
    interference_loud_ratio: float = _f(
        10.0, "markov: r = I_loud / I_quiet, loud over quiet level", _float(Range(1.0, None))
    )
    interference_memory: float = _f(
        0.9,
        "markov: λ = 1 − p01 − p10, the state's lag-one correlation (0: i.i.d. states)",
        _float(Range(0.0, 1.0, hi_open=True)),
    )
    # --- objective (eq. 5) ---
    epsilon: float = _f(
        0.987, "ε: weight of sum rate vs. sync gap in the reward", _float(Range(0, 1, True, True))
    )
    data_size: float = _f(
        0.1, "D: size of one physical-network report [bits, normalised]", _float(POSITIVE)
    )
    delay_bound: float = _f(2.5, "γ: bound on the sync delay D / c^C [s]", _float(POSITIVE))
    # --- mobility (eq. 1) ---
    step_size: float = _f(6.0, "Δl: distance a user moves in one slot [m]", _float(POSITIVE))
    stay_prob_range: tuple[float, float] = _f(
        (0.2, 0.8),
        "range of each user's stay probability p_u1, drawn once per network",
        _pair(Range(0.0, 1.0)),
    )
    mobility_model: str = _f(
        "random_walk",
        "'random_walk' (eq. 1) or 'gauss_markov' (velocity with memory, Liang & Haas)",
        _choice("random_walk", "gauss_markov"),
    )
    mobility_memory: float = _f(
        0.8,
        "gauss_markov: α, the velocity's memory v' = αv + (1−α)μ + sqrt(1−α²)σw",
        _float(Range(0.0, 1.0, hi_open=True)),
    )
    network_seed: int = _f(
        0, "seed of the network instance (move probabilities)", _int(Range(0, None))
    )
    # --- episode, RL interface ---
    episode_length: int = _f(30, "T: slots per episode", _int(AT_LEAST_ONE))
    action_mode: str = _f(
        "binary", "'binary' (sync or not) or 'rb' (choose the sync RB)", _choice("binary", "rb")
    )
    observation_mode: str = _f(
        "full",
        "'paper' (s_t only), 'full' (s_t, DNT state, slots since sync, I_n), 'timed' "
        "('full' and the slots left; the episode then terminates at T), 'decision' "
        "('timed' and the slot's gap penalty and sync rate cost), 'memory' ('decision' and "
        "the last slot's sync request and which of the twin's last M states are true), "
        "'compact' (the gap penalty, the sync cost, the slots since the sync and left, and "
        "statistics of the users' offsets and the RBs' interference: 9 numbers whatever U "
        "and N), 'compact_memory' ('compact' and 'memory''s flags), 'set' ('decision''s "
        "entries and each user's h_u and RB's y_n, laid out in sets for model.kind: set) or "
        "'set_memory' ('set' and 'memory''s flags)",
        _choice(*OBSERVATION_MODES),
    )
    frame_stack: int = _f(
        1,
        "k: the observation is the last k slots' observations, oldest first, padded at a reset "
        "with the reset observation (gymnasium's FrameStackObservation, flattened); 1 = none",
        lambda owner, name, v: v,  # checked in __post_init__: its range is [1, episode_length]
    )
    # --- digital twin (eqs. 6-12) ---
    twin: str = _f(
        "gru",
        "DNT predictor: 'gru' (the paper's joint GRU over s, pretrained, cached), "
        "'gru_shared' (one GRU cell shared by all users, for large U) or 'hold' (last state)",
        _choice("gru", "gru_shared", "hold"),
    )
    history: int = _f(5, "M: DNT states the twin reads", _int(AT_LEAST_ONE))
    gru_hidden: int = _f(128, "N^h: GRU hidden units", _int(AT_LEAST_ONE))
    twin_trajectories: int = _f(
        2000,
        "trajectories simulated to train the GRU twin (gru_shared: at most ⌈20,000 / U⌉)",
        _int(Range(MIN_TRAJECTORIES, None)),
    )
    twin_learning_rate: float = _f(
        1e-3,
        "Adam learning rate of the GRU twin (eq. 12's α)",
        _float(Range(0.0, 1.0, lo_open=True)),
    )
    twin_max_epochs: int = _f(
        60, "most training epochs of the GRU twin (early stopping)", _int(AT_LEAST_ONE)
    )
    twin_cache_dir: str = _f(
        ".dnt_cache/twins", "folder of the twin cache (relative: to the cwd)", _str()
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = f.metadata["check"]("SystemConfig", f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        lo, hi = self.stay_prob_range
        if lo > hi:
            raise ConfigError(
                f"SystemConfig.stay_prob_range = {[lo, hi]}: must be [low, high] with low <= high"
            )
        if self.twin != "hold" and self.episode_length <= self.history:
            raise ConfigError(
                f"SystemConfig.episode_length = {self.episode_length}: must exceed history = "
                f"{self.history} to give the GRU twin training windows"
            )
        k = self.frame_stack
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.episode_length:
            raise ConfigError(
                f"SystemConfig.frame_stack = {short(k)}: must be an integer in [1, "
                f"{self.episode_length}] (1: no stacking; at most episode_length)"
            )
        check_fits(self)
        big = max(self.num_users, self.num_rbs)
        if self.observation_mode in ("set", "set_memory") and big > 2**16:
            raise ConfigError(
                f"SystemConfig.observation_mode = {self.observation_mode} with num_users = "
                f"{self.num_users}, num_rbs = {self.num_rbs}: its headers hold U, N <= 65536"
            )
        if self.step_size >= self.area_size / 2:
            raise ConfigError(
                f"SystemConfig.step_size = {self.step_size:g}: must be < area_size / 2 "
                f"= {self.area_size / 2:g}"
            )

    # --- construction ---
    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None) -> SystemConfig:
        """Build from a mapping of field names; unknown keys are refused."""
        values = {} if values is None else values
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"SystemConfig: expected a mapping of fields, got {type(values).__name__}"
            )
        values = dict(values)
        check_keys("SystemConfig", values, cls.field_names())
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SystemConfig:
        """Build from a YAML mapping of fields (safe loader: no Python objects)."""
        return cls.from_dict(read_yaml_mapping(path, "--config", "SystemConfig fields"))

    @classmethod
    def coerce(cls, config: SystemConfig | Mapping[str, Any] | None) -> SystemConfig:
        """Accept a SystemConfig, a dict of its fields, or None (defaults)."""
        return config if isinstance(config, SystemConfig) else cls.from_dict(config)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}

    def replace(self, **changes: Any) -> SystemConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def key_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without :data:`UNKEYED_FIELDS` (the cache folder, the frame stack)
        and without the memory options that hold their defaults (:data:`MEMORY_FIELDS`): what
        a cache key over every field hashes."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in UNKEYED_FIELDS and not (k in MEMORY_FIELDS and v == defaults[k])
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields (tuples as lists), e.g. for YAML, JSON or MLflow params."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    # --- derived geometry ---
    @property
    def area_low(self) -> tuple[float, float]:
        half = self.area_size / 2
        return (self.bs_position[0] - half, self.bs_position[1] - half)

    @property
    def area_high(self) -> tuple[float, float]:
        half = self.area_size / 2
        return (self.bs_position[0] + half, self.bs_position[1] + half)

    @property
    def twin_training_trajectories(self) -> int:
        """Trajectories the GRU twin is trained on: ``twin_trajectories``; for
        ``gru_shared`` at most ⌈:data:`SHARED_USER_TRAJECTORIES` / U⌉ (and at least 10),
        since each trajectory gives its shared cell U user-trajectories."""
        if self.twin != "gru_shared":
            return self.twin_trajectories
        needed = max(-(-SHARED_USER_TRAJECTORIES // self.num_users), MIN_TRAJECTORIES)
        return min(self.twin_trajectories, needed)

    @property
    def state_dim(self) -> int:
        """Length of a flattened state s_t = [x_1, y_1, ..., x_U, y_U]."""
        return 2 * self.num_users
