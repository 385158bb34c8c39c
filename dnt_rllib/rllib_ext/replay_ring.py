"""A replay buffer of transitions in preallocated numpy rings, sampled as ready batches.

RLlib's ``EpisodeReplayBuffer`` stores episodes and, per sampled transition, slices one,
filters its rewards, hashes it twice and builds a one-step ``SingleAgentEpisode`` that the
learner connectors then turn back into tensors (docs/speed.md, "The learner's cost"). Here each
transition (o_t, a_t, r_t, o_{t+1}) sits in one slot of flat arrays, linked to the slot of
the same episode's next transition, and a batch of B transitions is B uniform slot indices
and n − 1 vectorised hops along the links.

What a sampled item means is RLlib's: for a start t drawn uniformly over every stored
transition, the window is t … t+m−1 with m = min(n, steps stored after t in its episode),
and the item is ``(o_t, a_t, Σ_{k<m} γ^k r_{t+k}, o_{t+m}, terminated_{t+m})``. An episode
that ended (terminated or truncated) ends every window inside it; an episode still running
ends the window at its newest stored step, as RLlib's slice does. Terminated items do not
bootstrap (the losses multiply by 1 − terminated); truncated ones do.

One difference, on purpose: ``n_step`` (the exponent of the bootstrap discount γ^n_step in
RLlib's SAC and DQN losses) is the window's true length m. RLlib's buffer writes the
configured n there even when the window was cut short by a truncation or by the newest
stored step, so it discounts o_{t+m}'s value by γ^n after m < n rewards. For a terminated
window the two agree (nothing is bootstrapped).

Eviction is slot by slot, oldest first (RLlib evicts whole episodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The batch columns SAC's and DQN's losses read (RLlib's ``Columns`` names), with dtypes
#: as RLlib's learner connectors produce them.
COLUMNS = ("obs", "new_obs", "actions", "rewards", "terminateds", "truncateds", "n_step",
           "weights")  # fmt: skip


class TransitionRing:
    """``capacity`` transitions of one module; storage is allocated on the first add."""

    def __init__(self, capacity: int, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity = {capacity}: must be >= 1")
        self.capacity = int(capacity)
        self.rng = np.random.default_rng(seed)
        self._pos = 0  # next slot to write
        self._size = 0  # slots holding a transition
        self._serial = 0  # transitions ever added (a slot's content id)
        self._open: dict[str, tuple[int, int]] = {}  # running episode → (last slot, serial)
        self._keys: dict[str, int] = {}  # episode id → int key (for look-ups in tests)
        self._next_key = 0
        self.obs: np.ndarray | None = None

    def __len__(self) -> int:
        return self._size

    @staticmethod
    def slot_bytes(obs_dim: int) -> int:
        """Bytes one slot of the ring holds with observations of ``obs_dim`` float32 entries:
        o_t and o_{t+1}, then the int64 action, float64 reward, two flags and four int64
        links and counters (`_allocate`)."""
        return 2 * 4 * obs_dim + 8 + 8 + 2 + 4 * 8

    def _allocate(self, obs_dim: tuple[int, ...], action_dtype: np.dtype) -> None:
        cap = self.capacity
        self.obs = np.zeros((cap, *obs_dim), np.float32)
        self.next_obs = np.zeros((cap, *obs_dim), np.float32)
        self.actions = np.zeros(cap, action_dtype)
        self.rewards = np.zeros(cap, np.float64)
        self.terminated = np.zeros(cap, bool)
        self.truncated = np.zeros(cap, bool)
        self.next_slot = np.full(cap, -1, np.int64)  # same episode's next transition
        self.serials = np.full(cap, -1, np.int64)
        self.episode_key = np.full(cap, -1, np.int64)
        self.t = np.zeros(cap, np.int64)  # step index inside its episode

    # --- adding ---
    def add(self, episodes: list[Any]) -> int:
        """Store RLlib ``SingleAgentEpisode`` chunks (as env runners return them); a chunk
        that continues an episode already stored is linked to it. Returns steps added."""
        added = 0
        for ep in episodes:
            if len(ep) == 0:
                continue
            self.add_chunk(
                ep.id_,
                ep.get_observations(),
                ep.get_actions(),
                ep.get_rewards(),
                terminated=bool(ep.is_terminated),
                truncated=bool(ep.is_truncated),
                t_started=int(ep.t_started),
            )
            added += len(ep)
        return added

    def add_chunk(
        self,
        episode_id: str,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: bool,
        truncated: bool,
        t_started: int = 0,
    ) -> None:
        """One chunk of L steps: L + 1 observations, L actions and rewards; ``terminated``
        and ``truncated`` say how its last step ended (both false: the episode goes on)."""
        observations = np.asarray(observations)
        steps = len(actions)
        if len(observations) != steps + 1 or len(rewards) != steps:
            raise ValueError(
                f"chunk of {steps} actions needs {steps + 1} observations and {steps} "
                f"rewards, got {len(observations)} and {len(rewards)}"
            )
        if steps > self.capacity:
            raise ValueError(f"a chunk of {steps} steps does not fit in capacity {self.capacity}")
        if self.obs is None:
            self._allocate(observations.shape[1:], np.asarray(actions).dtype)
        slots = (self._pos + np.arange(steps)) % self.capacity
        serials = self._serial + np.arange(steps)
        self.obs[slots] = observations[:-1]
        self.next_obs[slots] = observations[1:]
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = False
        self.truncated[slots] = False
        self.terminated[slots[-1]] = terminated
        self.truncated[slots[-1]] = truncated
        self.next_slot[slots[:-1]] = slots[1:]
        self.next_slot[slots[-1]] = -1
        self.serials[slots] = serials
        key = self._keys.get(episode_id)
        if key is None:
            key = self._keys[episode_id] = self._next_key
            self._next_key += 1
        self.episode_key[slots] = key
        self.t[slots] = t_started + np.arange(steps)
        # link the episode's previous chunk to this one, if its last slot still holds it
        previous = self._open.pop(episode_id, None)
        if previous is not None and self.serials[previous[0]] == previous[1]:
            self.next_slot[previous[0]] = slots[0]
        if not (terminated or truncated):
            self._open[episode_id] = (int(slots[-1]), int(serials[-1]))
        wrapped = self._pos + steps >= self.capacity
        self._pos = int((self._pos + steps) % self.capacity)
        self._size = min(self._size + steps, self.capacity)
        self._serial += steps
        if wrapped:  # once per pass over the ring: forget episodes no slot holds any more
            live = set(np.unique(self.episode_key).tolist())
            self._keys = {e: k for e, k in self._keys.items() if k in live}
            self._open = {e: v for e, v in self._open.items() if self.serials[v[0]] == v[1]}

    # --- sampling ---
    def sample(self, batch_size: int, n_step: int, gamma: float) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly (with replacement), n-step folded."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        slots = self.rng.integers(self._size, size=batch_size)
        return self.batch(slots, n_step, gamma)

    def batch(self, slots: np.ndarray, n_step: int, gamma: float) -> dict[str, np.ndarray]:
        """The n-step items starting at ``slots`` (module docstring), as batch columns."""
        assert self.obs is not None
        slots = np.asarray(slots, np.int64)
        returns = self.rewards[slots].copy()
        steps = np.ones(len(slots), np.int64)
        last = slots
        for k in range(1, n_step):
            nxt = self.next_slot[last]
            going = nxt >= 0
            if not going.any():
                break
            last = np.where(going, nxt, last)
            returns += np.where(going, gamma**k * self.rewards[last], 0.0)
            steps += going
        return {
            "obs": self.obs[slots],
            "new_obs": self.next_obs[last],
            "actions": self.actions[slots],
            "rewards": returns.astype(np.float32),
            "terminateds": self.terminated[last].copy(),
            "truncateds": self.truncated[last].copy(),
            "n_step": steps,
            "weights": np.ones(len(slots), np.float32),
        }

    def slot_of(self, episode_id: str, t: int) -> int:
        """The slot holding step ``t`` of a still-linkable episode (tests and debugging)."""
        key = self._keys.get(episode_id)
        hits = np.flatnonzero((self.episode_key == key) & (self.t == t) & (self.serials >= 0))
        if key is None or len(hits) != 1:
            raise KeyError(f"step {t} of episode {episode_id!r} is not in the buffer")
        return int(hits[0])
