"""Evaluation of a twin against the Bayes-optimal predictor, and the paper's Fig. 2.

All errors are eq. (11)'s: the mean over a user's two coordinates of the squared error, in
m², measured on fresh trajectories (stream ``EVAL_DATA_STREAM``, never used in training).

- One step. Away from the border the Bayes-optimal prediction of user u is s_t + E[m_u] and
  its error is Var(m_u)/2 (``move_moments`` gives the variance summed over x and y). A
  window counts for user u as "away" when u's last position is at least 2·Δl from every wall
  (a reflection needs < Δl; the second Δl leaves slack for a twin that smooths the border).
  All-window figures are printed too, next to the exact Bayes predictor with reflection (the
  "oracle", :func:`oracle_predict`).
- k steps, k = 1…K, from every K-th state of each trajectory. The twin rolls forward
  open-loop on its own predictions. Away from the walls the k moves are independent and the
  Bayes-optimal error is k·Var(m_u)/2; but users drift into the walls and, for large k·Δl,
  no start is k·Δl from every wall, so the table compares the twin with the exact Bayes
  error on the same starts (reflection included, Monte Carlo: :func:`bayes_rollout_mse`)
  and prints k·Var(m_u)/2 beside it.

Gauss–Markov mobility (``mobility_model='gauss_markov'``): the twin sees the last M states,
so it knows the velocity v_t = s_t − s_{t−1} (exact unless the last slot reflected), and the
Bayes one-step prediction away from the walls is s_t + α v_t + (1 − α) μ_u
(:func:`~dnt_rllib.physics.mobility.bayes_one_step`) with error (1 − α²) σ_u² per axis; the
k-step free-space error is (1 − α²) σ_u² Σ_{m=1..k} ((1 − α^m)/(1 − α))². With the walls, the
one-step oracle reflects that Gaussian in closed form and the k-step Monte Carlo starts
from (s_t, v_t). The table's p_stay column is the random-walk row μ_u, σ_u are matched to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.mobility import MOVES, bayes_one_step, move_moments, reflect
from dnt_rllib.physics.network import Network
from dnt_rllib.twin.base import HoldLastTwin, Twin
from dnt_rllib.twin.data import EVAL_DATA_STREAM, make_windows, simulate

#: Longest open-loop rollout evaluated.
MAX_ROLLOUT = 10
#: One-step "away from the border" margin, in units of Δl.
ONE_STEP_MARGIN = 2.0
#: Monte Carlo continuations per start for the exact k-step Bayes error.
ROLLOUT_SAMPLES = 64
#: Sub-stream of those continuations.
ROLLOUT_STREAM = 1


def user_mse(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Eq. (11) per window and user: (n, 2U) × (n, 2U) → (n, U), mean over x and y."""
    err = (prediction - target) ** 2
    return err.reshape(len(err), -1, 2).mean(axis=2)


def away_mask(states: np.ndarray, config: SystemConfig, margin: float) -> np.ndarray:
    """(n, 2U) states → (n, U): each user at least ``margin`` from every wall."""
    pos = states.reshape(len(states), -1, 2)
    low, high = np.asarray(config.area_low), np.asarray(config.area_high)
    return ((pos - low >= margin) & (high - pos >= margin)).all(axis=2)


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-user mean of (n, U) ``values`` over the windows where ``mask`` holds (NaN if none)."""
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean(values: np.ndarray) -> float:
    """Mean of the finite entries (NaN, without a warning, if there are none)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def free_bayes_mse(network: Network, steps: int) -> np.ndarray:
    """(steps, U): the Bayes k-step error per axis of a user no wall reaches, k = 1…steps:
    k·Var(m_u)/2 for the random walk, (1 − α²) σ_u² Σ_{m≤k} ((1 − α^m)/(1 − α))² for
    Gauss–Markov."""
    cfg = network.config
    k = np.arange(1, steps + 1)
    if not network.gauss_markov:
        return k[:, None] * (move_moments(network.move_probs, cfg.step_size)[1] / 2.0)[None]
    alpha = cfg.mobility_memory
    gain = np.cumsum(((1.0 - alpha**k) / (1.0 - alpha)) ** 2)
    return (1.0 - alpha**2) * gain[:, None] * (network.velocity_std**2)[None]


def free_predict(history: np.ndarray, network: Network) -> np.ndarray:
    """Bayes one-step prediction away from the walls, (n, 2U): s_t + E[m_u] for the random
    walk, s_t + α v_t + (1 − α) μ_u for Gauss–Markov."""
    cfg = network.config
    if network.gauss_markov:
        return bayes_one_step(history, network.velocity_mean, cfg.mobility_memory)
    mean, _ = move_moments(network.move_probs, cfg.step_size)
    return history[:, -1, :] + mean.reshape(-1)


def oracle_predict(history: np.ndarray, network: Network) -> np.ndarray:
    """Exact Bayes one-step prediction E[s_{t+1} | history] with the border reflection,
    (n, 2U): the five reflected moves weighted by p_u (random walk), or the reflected
    Gaussian N(m, s²) per axis, E = m − 2E[(x − high)⁺] + 2E[(low − x)⁺] (Gauss–Markov)."""
    cfg = network.config
    n = len(history)
    if network.gauss_markov:
        mean = free_predict(history, network).reshape(n, cfg.num_users, 2)
        spread = np.sqrt(1.0 - cfg.mobility_memory**2) * network.velocity_std[:, None]
        spread = np.maximum(spread, 1e-12)

        def excess(gap: np.ndarray) -> np.ndarray:  # E[(y)⁺], y ~ N(gap, spread²)
            return gap * norm.cdf(gap / spread) + spread * norm.pdf(gap / spread)

        folded = mean - 2.0 * excess(mean - network.high) + 2.0 * excess(network.low - mean)
        return folded.reshape(n, -1)
    last = history[:, -1, :].reshape(n, cfg.num_users, 1, 2)
    moved = reflect(last + cfg.step_size * MOVES, network.low, network.high)  # (n, U, 5, 2)
    return np.einsum("nukd,uk->nud", moved, network.move_probs).reshape(n, -1)


def bayes_rollout_mse(
    network: Network, history: np.ndarray, steps: int, samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact Bayes k-step error E[Var(s_{t+k} | history)]/2 per start and user, (steps, n, U).

    Estimated by Monte Carlo: ``samples`` continuations of each start (the last state of
    each ``history`` (n, M, 2U); Gauss–Markov also its velocity s_t − s_{t−1}) under the
    simulator's mobility with reflection, unbiased sample variance, mean over x and y.
    """
    n, users = len(history), network.config.num_users
    shape = (n, samples, users, 2)
    pos = np.broadcast_to(history[:, None, -1, :].reshape(n, 1, users, 2), shape).copy()
    velocity = np.zeros(shape)
    if network.gauss_markov:
        last_move = (history[:, -1, :] - history[:, -2, :]).reshape(n, 1, users, 2)
        velocity = np.broadcast_to(last_move, shape).copy()
    out = np.empty((steps, n, users))
    for k in range(steps):
        pos, velocity = network.move(rng, pos, velocity)
        out[k] = pos.var(axis=1, ddof=1).mean(axis=2)
    return out


def rollout(twin: Twin, history: np.ndarray, steps: int) -> np.ndarray:
    """Open-loop predictions (n, steps, 2U): each step appends the twin's own prediction."""
    window = np.array(history, dtype=np.float64)
    out = np.empty((len(window), steps, window.shape[2]))
    for k in range(steps):
        out[:, k] = twin.predict(window)
        window = np.concatenate([window[:, 1:], out[:, k : k + 1]], axis=1)
    return out


@dataclass
class TwinEvaluation:
    """Per-user one-step and k-step errors of a twin, the hold-last twin and the Bayes bound."""

    move_probs: np.ndarray  # (U, 5)
    bayes: np.ndarray  # (U,) one-step Bayes error per axis, no wall: Var(m_u)/2 or (1−α²)σ_u²
    gru_away: np.ndarray  # (U,)
    oracle_away: np.ndarray  # (U,) empirical error of :func:`free_predict` on the same windows
    hold_away: np.ndarray  # (U,)
    gru_all: np.ndarray  # (U,)
    oracle_all: np.ndarray  # (U,) exact Bayes with reflection, all windows
    hold_all: np.ndarray  # (U,)
    away_count: np.ndarray  # (U,)
    window_count: int
    k_gru: np.ndarray  # (K, U) k-step open-loop error, all starts
    k_hold: np.ndarray  # (K, U)
    k_bayes_exact: np.ndarray  # (K, U) exact Bayes error with reflection (Monte Carlo)
    k_bayes: np.ndarray  # (K, U) free-space Bayes error, :func:`free_bayes_mse`
    k_starts: int
    mobility: str = "random_walk"
    twin: str = "gru"  # 'gru' (joint) or 'gru_shared'
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> np.ndarray:
        """GRU one-step error over the Bayes-optimal error, per user (away windows)."""
        return self.gru_away / self.bayes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in self.__dict__.items()
            if k != "extras"
        }
        out.update(ratio=self.ratio.tolist(), mean_ratio=float(_mean(self.ratio)))
        out.update(self.extras)
        return out


def evaluate_twin(
    twin: Twin, config: SystemConfig, episodes: int = 1000, seed: int = 0
) -> tuple[TwinEvaluation, np.ndarray]:
    """Evaluate ``twin`` on ``episodes`` fresh trajectories; also returns them (n, T, 2U)."""
    network = Network.from_config(config)
    length = max(config.episode_length, config.history + MAX_ROLLOUT)
    trajectories = simulate(config.replace(episode_length=length), episodes, EVAL_DATA_STREAM, seed)
    step = config.step_size
    k_free = free_bayes_mse(network, MAX_ROLLOUT)

    windows = make_windows(trajectories, config.history)
    last = windows.inputs[:, -1, :]
    away = away_mask(last, config, ONE_STEP_MARGIN * step)
    gru = user_mse(twin.predict(windows.inputs), windows.targets)
    hold = user_mse(HoldLastTwin().predict(windows.inputs), windows.targets)
    oracle_free = user_mse(free_predict(windows.inputs, network), windows.targets)
    oracle = user_mse(oracle_predict(windows.inputs, network), windows.targets)

    # k-step open-loop rollouts from every K-th state, against the exact Bayes error
    m = config.history
    starts = range(m - 1, length - MAX_ROLLOUT, MAX_ROLLOUT)
    history = np.concatenate([trajectories[:, t - m + 1 : t + 1] for t in starts])
    future = np.concatenate([trajectories[:, t + 1 : t + 1 + MAX_ROLLOUT] for t in starts])
    predicted = rollout(twin, history, MAX_ROLLOUT)
    start_state = history[:, -1, :]
    rng = np.random.default_rng([config.network_seed, EVAL_DATA_STREAM, seed, ROLLOUT_STREAM])
    k_bayes_exact = bayes_rollout_mse(network, history, MAX_ROLLOUT, ROLLOUT_SAMPLES, rng)
    k_gru = np.stack([user_mse(predicted[:, k], future[:, k]).mean(0) for k in range(MAX_ROLLOUT)])
    k_hold = np.stack([user_mse(start_state, future[:, k]).mean(0) for k in range(MAX_ROLLOUT)])

    evaluation = TwinEvaluation(
        move_probs=network.move_probs,
        bayes=k_free[0],
        gru_away=masked_mean(gru, away),
        oracle_away=masked_mean(oracle_free, away),
        hold_away=masked_mean(hold, away),
        gru_all=gru.mean(axis=0),
        oracle_all=oracle.mean(axis=0),
        hold_all=hold.mean(axis=0),
        away_count=away.sum(axis=0),
        window_count=len(windows),
        k_gru=k_gru,
        k_hold=k_hold,
        k_bayes_exact=k_bayes_exact.mean(axis=1),
        k_bayes=k_free,
        k_starts=len(start_state),
        mobility=config.mobility_model,
        twin="gru_shared" if config.twin == "gru_shared" else "gru",
        extras={"episodes": episodes, "seed": seed, "trajectory_length": length},
    )
    return evaluation, trajectories


def format_report(ev: TwinEvaluation) -> str:
    """The per-user one-step table and the k-step table as text."""
    model = "random walk (eq. 1)"
    if ev.mobility == "gauss_markov":
        model = "Gauss–Markov: Bayes = s_t + α v_t + (1 − α) μ_u, v_t = s_t − s_{t−1}"
    kind = {
        "gru": "the joint GRU over the whole state s (gru)",
        "gru_shared": "one GRU cell shared by all users, with per-user offsets (gru_shared)",
    }
    lines = [
        f"Twin: {kind.get(ev.twin, ev.twin)}",
        f"Mobility: {model}",
        f"One-step MSE per user [m², mean over x and y], {ev.window_count} windows; "
        f"'away' = last position >= {ONE_STEP_MARGIN:g}·Δl from every wall",
        f"{'user':>4} {'p_stay':>6} {'Bayes':>8} {'oracle':>8} {'GRU':>8} {'ratio':>6} "
        f"{'hold':>8} {'n_away':>7} | {'GRU all':>8} {'Bayes all':>9} {'hold all':>8}",
    ]
    for u in range(len(ev.bayes)):
        lines.append(
            f"{u + 1:>4} {ev.move_probs[u, 0]:>6.3f} {ev.bayes[u]:>8.4f} {ev.oracle_away[u]:>8.4f} "
            f"{ev.gru_away[u]:>8.4f} {ev.ratio[u]:>6.3f} {ev.hold_away[u]:>8.4f} "
            f"{ev.away_count[u]:>7d} | {ev.gru_all[u]:>8.4f} {ev.oracle_all[u]:>9.4f} "
            f"{ev.hold_all[u]:>8.4f}"
        )
    lines.append(
        f"{'mean':>4} {'':>6} {ev.bayes.mean():>8.4f} {_mean(ev.oracle_away):>8.4f} "
        f"{_mean(ev.gru_away):>8.4f} {_mean(ev.ratio):>6.3f} "
        f"{_mean(ev.hold_away):>8.4f} {'':>7} | {ev.gru_all.mean():>8.4f} "
        f"{ev.oracle_all.mean():>9.4f} {ev.hold_all.mean():>8.4f}"
    )
    gap = _mean(ev.hold_away) - ev.bayes.mean()
    closed = (_mean(ev.hold_away) - _mean(ev.gru_away)) / gap if gap > 0 else np.nan
    lines.append(
        f"mean ratio GRU/Bayes = {_mean(ev.ratio):.4f} (hold-last: "
        f"{_mean(ev.hold_away / ev.bayes):.4f}); the GRU closes {100 * closed:.1f} % of the "
        "hold-last → Bayes gap"
    )
    lines += [
        "",
        f"k-step open-loop MSE, mean over users [m²], {ev.k_starts} starts: exact Bayes "
        "(with walls) and the free-space Bayes error (no wall)",
        f"{'k':>3} {'free':>9} {'Bayes':>9} {'GRU':>9} {'ratio':>6} {'hold':>9}",
    ]
    k_bayes = ev.k_bayes
    for k in range(len(ev.k_gru)):
        exact = ev.k_bayes_exact[k]
        lines.append(
            f"{k + 1:>3} {k_bayes[k].mean():>9.3f} {exact.mean():>9.3f} "
            f"{ev.k_gru[k].mean():>9.3f} {_mean(ev.k_gru[k] / exact):>6.3f} "
            f"{ev.k_hold[k].mean():>9.3f}"
        )
    return "\n".join(lines)


def plot_fig2(
    twin: Twin, config: SystemConfig, ev: TwinEvaluation, trajectory: np.ndarray, path: str | Path
) -> Path:
    """Fig. 2: true vs one-step predicted trajectories of three users (PNG).

    The users are the least dynamic, the median and the most dynamic (by Var(m_u)); the
    trajectory (T, 2U) is one evaluation episode; titles give each user's one-step MSE.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(ev.bayes)
    users = [int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    m = config.history
    windows = make_windows(trajectory[None], m)
    predicted = twin.predict(windows.inputs)  # states m … T−1
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    for ax, u in zip(axes, users, strict=True):
        true_xy = trajectory[:, 2 * u : 2 * u + 2]
        pred_xy = predicted[:, 2 * u : 2 * u + 2]
        ax.plot(true_xy[:, 0], true_xy[:, 1], "o-", color="k", ms=3, lw=1.2, label="true")
        ax.plot(
            pred_xy[:, 0],
            pred_xy[:, 1],
            "x--",
            color="tab:red",
            ms=5,
            lw=1,
            label="GRU, one step ahead",
        )
        ax.plot(*true_xy[0], "s", color="tab:blue", ms=6, label="start")
        ax.set_title(
            f"user {u + 1}: p_stay = {ev.move_probs[u, 0]:.2f}, MSE = {ev.gru_all[u]:.3f} m²\n"
            f"(Bayes {ev.bayes[u]:.3f}, hold-last {ev.hold_all[u]:.3f})",
            fontsize=9,
        )
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(
        "Fig. 2: user trajectories predicted one step ahead by the GRU twin "
        f"(M = {m}, N^h = {config.gru_hidden})",
        fontsize=10,
    )
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
