"""`ceiling`: the best sync schedule with perfect foresight, and the loose `free_sync` bound.

With an episode's tape (every move, interference and fading draw known in advance), the
value of a schedule splits at its syncs: after a sync at slot k the DNT rolls forward on
its own predictions until the next sync j, so the slots k+1 … j−1 cost ε Σc free − (1−ε)/U
· gap(k, t) and slot j earns ε Σc withheld. Dynamic programming over "slot of the last
sync" then finds the best schedule in O(T²) segments:

    V(k) = max( Σ_{t>k} no-sync(k, t),  max_{j>k, RB feasible} Σ_{k<t<j} no-sync(k, t)
                + ε Σc withheld(j) + V(j) ),     the episode's value V(−1).

The one approximation: gap(k, t) rolls the twin forward from the true states
s_{k−M+1} … s_k, whereas the real DNT history before a sync at k holds its own earlier
predictions wherever it did not sync. With the hold-last twin (ŝ = last state) that makes
no difference and the DP is exact; with the GRU the schedule is replayed in the env, so the
``ceiling`` return is exact and achievable in hindsight, and the DP value is kept to report
how far the model was off (:attr:`CeilingPolicy.planned`). The approximation holds when the
twin's prediction depends mostly on the last state (the random walk: DP − replay +0.006 per
episode on the defaults); it fails for a twin that reads a velocity from its last two states
(``gauss_markov``), where the evaluation warns that the schedule is no ceiling
(:func:`dnt_rllib.evaluation.ceiling_warnings`). Before slot 0 the history is the
true s_{−M} … s_{−1} (the env starts in sync), so V(−1)'s first segment is exact.
"""

from __future__ import annotations

import numpy as np

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.rollout import rollout
from dnt_rllib.policies.tape import Tapes, record_tapes
from dnt_rllib.policies.threshold import action_for
from dnt_rllib.twin import Twin


def drift_gaps(twin: Twin, tapes: Tapes, episode: int) -> np.ndarray:
    """gap(k, t) of one episode: (T + 1, T) with row k + 1 the DNT's gaps at slots t
    (columns) when it was last exact at slot k (row 0: at the episode's start), NaN for t ≤ k.
    """
    history, states = tapes.history[episode], tapes.states[episode]
    memory, length = history.shape[0], states.shape[0]
    full = np.concatenate([history, states])  # s_{−M} … s_{T−1}
    starts = np.arange(-1, length)  # k
    windows = np.stack([full[k + 1 : k + 1 + memory] for k in starts])
    future = np.stack([np.concatenate([full[memory + k + 1 :], np.repeat(full[-1:], k + 1, 0)])
                       for k in starts])  # fmt: skip
    zeros = np.zeros((len(starts), length))
    played = rollout(twin, windows, future, zeros, np.full_like(zeros, np.nan), 0.5, 1,
                     lambda t, p, q: np.zeros(len(p), dtype=bool))  # fmt: skip
    gaps = np.full((len(starts), length), np.nan)
    for i, k in enumerate(starts):
        gaps[i, k + 1 :] = played.gaps[i, : length - k - 1]
    return gaps


def best_schedule(
    gaps: np.ndarray, rate_free: np.ndarray, rate_sync: np.ndarray, epsilon: float, users: int
) -> tuple[np.ndarray, float]:
    """(sync at each slot (T,), the DP's value V(−1)) from :func:`drift_gaps` and one
    episode's rates (T,); module doc."""
    length = len(rate_free)
    no_sync = epsilon * rate_free[None, :] - (1.0 - epsilon) / users * gaps  # (T+1, T)
    value = np.zeros(length + 1)  # V(k) at index k + 1
    choice = np.full(length + 1, length)  # next sync after k (T: none)
    for k in range(length - 1, -2, -1):
        row = no_sync[k + 1]
        run = np.concatenate([[0.0], np.cumsum(row[k + 1 :])])  # Σ_{k<t<j} for j = k+1 … T
        best, best_j = run[-1], length
        for j in range(k + 1, length):
            if not np.isnan(rate_sync[j]):
                candidate = run[j - k - 1] + epsilon * rate_sync[j] + value[j + 1]
                if candidate > best:
                    best, best_j = candidate, j
        value[k + 1], choice[k + 1] = best, best_j
    schedule = np.zeros(length, dtype=bool)
    j = choice[0]
    while j < length:
        schedule[j] = True
        j = choice[j + 1]
    return schedule, float(value[0])


class CeilingPolicy:
    """Plays each episode's perfect-foresight schedule; a `Policy` that needs the seed.

    ``start_episode(seed)`` (called by the evaluation before each episode) records the
    episode's tape and plans it; :attr:`planned` keeps the DP value of every seed.
    """

    def __init__(self, env: DNTSyncEnv) -> None:
        self.env = env
        self.planned: dict[int, float] = {}
        self._schedule = np.zeros(0, dtype=bool)
        self._rbs = np.zeros(0, dtype=np.int64)

    def start_episode(self, seed: int) -> None:
        cfg = self.env.config
        tapes = record_tapes(cfg, [seed])
        gaps = drift_gaps(self.env.twin, tapes, 0)
        self._schedule, self.planned[seed] = best_schedule(
            gaps, tapes.rate_free[0], tapes.rate_sync[0], cfg.epsilon, cfg.num_users
        )
        self._rbs = tapes.sync_rb[0]

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        t = env.slot
        return action_for(env, int(self._rbs[t])) if self._schedule[t] else 0


def free_sync_returns(env: DNTSyncEnv, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The loose bound: per episode Σ_t ε Σc with every RB and no gap, as if a sync cost
    nothing; returns (episode returns, mean Σc per slot of each episode)."""
    tapes = record_tapes(env.config, seeds)
    return env.config.epsilon * tapes.rate_free.sum(axis=1), tapes.rate_free.mean(axis=1)
