"""`ceiling`: the best sync schedule with perfect foresight, and the loose `free_sync` bound.

With an episode's tape (every move, interference and fading draw known in advance) the
return of any schedule follows from the twin alone (`policies.tape`), so the ceiling is a
dynamic programme over the slots, run forward with the DNT's exact history in every node:

    node = (slot k of the last sync, which of the slots k−M+1 … k were syncs),

the part of the past that decides what the twin's window holds: s_j where slot j synced,
its own prediction ŝ_j where not (eq. 4), and its predictions ever since k. Each slot every
node earns ε Σc free − (1−ε)/U ‖s_t − ŝ_t‖² by not syncing (key kept) or, where an RB meets
γ, ε Σc withheld by syncing (key (t, pattern shifted in)), eqs. 15–17; of the nodes that
reach one key only the best return goes on. The episode starts in sync (the history is
the true s_{−M} … s_{−1}: key (−1, all syncs)).

Exact for a twin whose prediction after a sync depends on the window's sync pattern only —
the hold-last twin, and any twin for which the M states before a sync are true — and then
equal to the best of all 2^T schedules (tested). For the GRU the one approximation is the
merge: two histories with the same key differ in the *values* of the twin's older
predictions, and only the better one so far is continued. The return of the chosen
schedule is exact — the DP plays it with the same twin calls as the env — and
:attr:`CeilingPolicy.planned` keeps it to check the replay against. The key holds the sync
pattern because a twin with memory reads more than the last state: the Gauss–Markov GRU
reads a velocity from the last two, so a sync right after another is worth more than one
after a run of predictions; keyed by k alone (this module's first version, which rolled the
twin from true states after every sync) the schedule replayed 100–130 per episode below its
plan on those networks, below `threshold`.
"""

from __future__ import annotations

import numpy as np

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.tape import Tapes, record_tapes
from dnt_rllib.policies.threshold import action_for
from dnt_rllib.twin import Twin


def best_schedule(
    twin: Twin, tapes: Tapes, episode: int, epsilon: float, users: int
) -> tuple[np.ndarray, float]:
    """(sync at each slot (T,), its return) of one episode of ``tapes``; module doc."""
    history, states = tapes.history[episode], tapes.states[episode]
    rate_free, rate_sync = tapes.rate_free[episode], tapes.rate_sync[episode]
    memory, length = history.shape[0], states.shape[0]
    mask = (1 << memory) - 1
    weight = (1.0 - epsilon) / users
    windows = np.array(history[None], dtype=np.float64)  # (B, M, 2U)
    value = np.zeros(1)
    last = np.array([-1])  # slot of the last sync
    pattern = np.array([mask])  # bit d: slot last − d synced
    schedule = np.zeros((1, length), dtype=bool)
    for t in range(length):
        state = states[t]
        prediction = twin.predict(windows)
        diff = state - prediction
        gap = np.einsum("bi,bi->b", diff, diff)
        windows = np.concatenate([windows[:, 1:], prediction[:, None]], axis=1)
        value_free = value + epsilon * rate_free[t] - weight * gap
        if np.isnan(rate_sync[t]):
            value = value_free
            continue
        synced_windows = windows.copy()
        synced_windows[:, -1] = state
        synced_pattern = ((pattern << np.minimum(t - last, memory)) | 1) & mask
        synced_schedule = schedule.copy()
        synced_schedule[:, t] = True
        windows = np.concatenate([windows, synced_windows])
        value = np.concatenate([value_free, value + epsilon * rate_sync[t]])
        last = np.concatenate([last, np.full(len(last), t)])
        pattern = np.concatenate([pattern, synced_pattern])
        schedule = np.concatenate([schedule, synced_schedule])
        key = (last + 1) * (mask + 1) + pattern
        order = np.lexsort((-value, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order[1:]] != key[order[:-1]]
        keep = order[first]
        windows, value, last = windows[keep], value[keep], last[keep]
        pattern, schedule = pattern[keep], schedule[keep]
    best = int(np.argmax(value))
    return schedule[best], float(value[best])


class CeilingPolicy:
    """Plays each episode's perfect-foresight schedule; a `Policy` that needs the seed.

    ``start_episode(seed)`` (called by the evaluation before each episode) records the
    episode's tape and plans it; :attr:`planned` keeps the planned return of every seed.
    """

    def __init__(self, env: DNTSyncEnv) -> None:
        self.env = env
        self.planned: dict[int, float] = {}
        self._plans: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._schedule = np.zeros(0, dtype=bool)
        self._rbs = np.zeros(0, dtype=np.int64)

    def plan(self, tapes: Tapes, seeds: list[int]) -> None:
        """Plan the episodes of these seeds from their tapes, recorded already (under the
        env's config) for other uses."""
        cfg = self.env.config
        for i, seed in enumerate(seeds):
            schedule, self.planned[seed] = best_schedule(
                self.env.twin, tapes, i, cfg.epsilon, cfg.num_users
            )
            self._plans[seed] = schedule, tapes.sync_rb[i]

    def start_episode(self, seed: int) -> None:
        if seed not in self._plans:
            self.plan(record_tapes(self.env.config, [seed]), [seed])
        self._schedule, self._rbs = self._plans.pop(seed)

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        t = env.slot
        return action_for(env, int(self._rbs[t])) if self._schedule[t] else 0


def free_sync_returns(tapes: Tapes, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """The loose bound: per episode Σ_t ε Σc with every RB and no gap, as if a sync cost
    nothing; returns (episode returns, mean Σc per slot of each episode)."""
    return epsilon * tapes.rate_free.sum(axis=1), tapes.rate_free.mean(axis=1)
