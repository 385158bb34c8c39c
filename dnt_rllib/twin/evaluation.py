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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnt_rllib.config import SystemConfig
from dnt_rllib.physics.mobility import MOVES, move_moments, reflect, step_positions
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


def oracle_predict(history: np.ndarray, network: Network) -> np.ndarray:
    """Exact Bayes one-step prediction E[s_{t+1} | s_t] with the border reflection, (n, 2U)."""
    cfg = network.config
    last = history[:, -1, :].reshape(len(history), cfg.num_users, 1, 2)
    moved = reflect(last + cfg.step_size * MOVES, network.low, network.high)  # (n, U, 5, 2)
    return np.einsum("nukd,uk->nud", moved, network.move_probs).reshape(len(history), -1)


def bayes_rollout_mse(
    network: Network, starts: np.ndarray, steps: int, samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact Bayes k-step error E[Var(s_{t+k} | s_t)]/2 per start and user, (steps, n, U).

    Estimated by Monte Carlo: ``samples`` continuations of each start under the simulator's
    mobility (eq. 1, with reflection), unbiased sample variance, mean over x and y.
    """
    cfg = network.config
    n, users = len(starts), cfg.num_users
    pos = np.repeat(starts.reshape(n, 1, users, 2), samples, axis=1).reshape(-1, 2)
    cdf = np.tile(network.move_cdf, (n * samples, 1))
    out = np.empty((steps, n, users))
    for k in range(steps):
        pos = step_positions(rng, pos, cdf, cfg.step_size, network.low, network.high)
        out[k] = pos.reshape(n, samples, users, 2).var(axis=1, ddof=1).mean(axis=2)
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
    bayes: np.ndarray  # (U,) Var(m_u)/2
    gru_away: np.ndarray  # (U,)
    oracle_away: np.ndarray  # (U,) empirical error of s_t + E[m_u] on the same windows
    hold_away: np.ndarray  # (U,)
    gru_all: np.ndarray  # (U,)
    oracle_all: np.ndarray  # (U,) exact Bayes with reflection, all windows
    hold_all: np.ndarray  # (U,)
    away_count: np.ndarray  # (U,)
    window_count: int
    k_gru: np.ndarray  # (K, U) k-step open-loop error, all starts
    k_hold: np.ndarray  # (K, U)
    k_bayes_exact: np.ndarray  # (K, U) exact Bayes error with reflection (Monte Carlo)
    k_starts: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> np.ndarray:
        """GRU one-step error over the Bayes-optimal error, per user (away windows)."""
        return self.gru_away / self.bayes

    @property
    def k_bayes(self) -> np.ndarray:
        """(K, U): k·Var(m_u)/2, the Bayes error of a free walk (no wall within k steps)."""
        return np.arange(1, len(self.k_gru) + 1)[:, None] * self.bayes[None, :]

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
    mean, variance = move_moments(network.move_probs, step)
    bayes = variance / 2.0

    windows = make_windows(trajectories, config.history)
    last = windows.inputs[:, -1, :]
    away = away_mask(last, config, ONE_STEP_MARGIN * step)
    gru = user_mse(twin.predict(windows.inputs), windows.targets)
    hold = user_mse(HoldLastTwin().predict(windows.inputs), windows.targets)
    mean_move = last + mean.reshape(-1)
    oracle_free = user_mse(mean_move, windows.targets)
    oracle = user_mse(oracle_predict(windows.inputs, network), windows.targets)

    # k-step open-loop rollouts from every K-th state, against the exact Bayes error
    m = config.history
    starts = range(m - 1, length - MAX_ROLLOUT, MAX_ROLLOUT)
    history = np.concatenate([trajectories[:, t - m + 1 : t + 1] for t in starts])
    future = np.concatenate([trajectories[:, t + 1 : t + 1 + MAX_ROLLOUT] for t in starts])
    predicted = rollout(twin, history, MAX_ROLLOUT)
    start_state = history[:, -1, :]
    rng = np.random.default_rng([config.network_seed, EVAL_DATA_STREAM, seed, ROLLOUT_STREAM])
    k_bayes_exact = bayes_rollout_mse(network, start_state, MAX_ROLLOUT, ROLLOUT_SAMPLES, rng)
    k_gru = np.stack([user_mse(predicted[:, k], future[:, k]).mean(0) for k in range(MAX_ROLLOUT)])
    k_hold = np.stack([user_mse(start_state, future[:, k]).mean(0) for k in range(MAX_ROLLOUT)])

    evaluation = TwinEvaluation(
        move_probs=network.move_probs,
        bayes=bayes,
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
        k_starts=len(start_state),
        extras={"episodes": episodes, "seed": seed, "trajectory_length": length},
    )
    return evaluation, trajectories


def format_report(ev: TwinEvaluation) -> str:
    """The per-user one-step table and the k-step table as text."""
    lines = [
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
        "(with walls) and the free-walk k·var/2",
        f"{'k':>3} {'k·var/2':>9} {'Bayes':>9} {'GRU':>9} {'ratio':>6} {'hold':>9}",
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
