"""The fast path's ring buffer against a hand n-step fold and RLlib's ``EpisodeReplayBuffer``.

The expected item of a start (episode, t) is computed here from the raw episode lists: the
window t … t+m−1 with m = min(n, steps stored after t), return Σ_k γ^k r_{t+k}, next obs
o_{t+m}, terminated/truncated iff the window reaches a terminated/truncated end, n_step m.
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

from dnt_rllib.rllib_ext.replay_ring import TransitionRing

OBS = gym.spaces.Box(-10, 10, (3,), np.float32)
ACT = gym.spaces.Discrete(2)
GAMMA = 0.9


class Raw:
    """One episode as plain lists, cut into RLlib chunks as an env runner returns them."""

    def __init__(self, name: str, length: int, end: str | None, rng: np.random.Generator):
        self.name, self.end = name, end
        self.obs = rng.normal(size=(length + 1, 3)).astype(np.float32)
        self.actions = rng.integers(0, 2, length)
        self.rewards = rng.normal(size=length)

    def chunks(self, cuts: list[int]) -> list[SingleAgentEpisode]:
        bounds = [0, *cuts, len(self.actions)]
        out = []
        for a, b in itertools.pairwise(bounds):
            last = b == len(self.actions)
            out.append(
                SingleAgentEpisode(
                    id_=self.name,
                    observations=list(self.obs[a : b + 1]),
                    actions=list(self.actions[a:b]),
                    rewards=list(self.rewards[a:b]),
                    terminated=last and self.end == "terminated",
                    truncated=last and self.end == "truncated",
                    observation_space=OBS,
                    action_space=ACT,
                    t_started=a,
                    len_lookback_buffer=0,
                )
            )
        return out

    def expected(self, t: int, n: int) -> dict[str, object]:
        m = min(n, len(self.actions) - t)
        reaches_end = t + m == len(self.actions)
        return {
            "obs": self.obs[t],
            "actions": self.actions[t],
            "rewards": sum(GAMMA**k * self.rewards[t + k] for k in range(m)),
            "new_obs": self.obs[t + m],
            "terminateds": reaches_end and self.end == "terminated",
            "truncateds": reaches_end and self.end == "truncated",
            "n_step": m,
        }


def check_item(batch: dict[str, np.ndarray], row: int, want: dict[str, object]) -> None:
    np.testing.assert_array_equal(batch["obs"][row], want["obs"])
    np.testing.assert_array_equal(batch["new_obs"][row], want["new_obs"])
    assert batch["actions"][row] == want["actions"]
    assert batch["rewards"][row] == pytest.approx(want["rewards"], rel=1e-6, abs=1e-6)
    assert bool(batch["terminateds"][row]) == want["terminateds"]
    assert bool(batch["truncateds"][row]) == want["truncateds"]
    assert batch["n_step"][row] == want["n_step"]


@pytest.fixture
def episodes() -> dict[str, Raw]:
    rng = np.random.default_rng(7)
    return {
        "term": Raw("term", 7, "terminated", rng),  # stored in chunks 3 + 4
        "trunc": Raw("trunc", 5, "truncated", rng),
        "running": Raw("running", 4, None, rng),  # chunks 2 + 2, no end yet
    }


def stored(episodes: dict[str, Raw]) -> list[SingleAgentEpisode]:
    chunks = {"term": [3], "trunc": [], "running": [2]}
    parts = {name: raw.chunks(chunks[name]) for name, raw in episodes.items()}
    # interleaved as vector-env runners deliver them: every episode's first chunk, then the rest
    return [p[0] for p in parts.values()] + [c for p in parts.values() for c in p[1:]]


@pytest.mark.parametrize("n", [1, 3])
def test_every_item_equals_the_hand_fold(episodes: dict[str, Raw], n: int) -> None:
    ring = TransitionRing(100)
    ring.add(stored(episodes))
    assert len(ring) == 7 + 5 + 4
    starts = [(raw, t) for raw in episodes.values() for t in range(len(raw.actions))]
    # one batch of every start: windows of different lengths fold side by side
    batch = ring.batch(np.array([ring.slot_of(raw.name, t) for raw, t in starts]), n, GAMMA)
    for row, (raw, t) in enumerate(starts):
        check_item(batch, row, raw.expected(t, n))


@pytest.mark.parametrize("n", [1, 3])
def test_rllib_buffer_agrees_but_at_a_cut_window(episodes: dict[str, Raw], n: int) -> None:
    """RLlib's sampled items, looked up in the ring: obs, action, n-step return and next obs
    are equal. Where the window is cut by the episode's end or its newest stored step,
    RLlib 2.60 differs and the ring keeps the hand fold: ``SingleAgentEpisode.slice`` keeps
    terminated/truncated only when the slice ends exactly at the episode's end (so a window
    running past a terminal step bootstraps from it), and ``n_step`` stays the configured n."""
    buffer = EpisodeReplayBuffer(capacity=1000)
    buffer.rng = np.random.default_rng(0)
    ring = TransitionRing(1000)
    buffer.add(stored(episodes))
    ring.add(stored(episodes))
    items = buffer.sample(num_items=300, n_step=n, gamma=GAMMA, batch_length_T=0, lookback=0,
                          sample_episodes=True)  # fmt: skip
    cut = 0
    for item in items:
        raw = episodes[item.id_]
        want = raw.expected(item.t_started, n)
        batch = ring.batch(np.array([ring.slot_of(item.id_, item.t_started)]), n, GAMMA)
        check_item(batch, 0, want)
        assert batch["rewards"][0] == pytest.approx(item.get_rewards()[0], rel=1e-6)
        np.testing.assert_array_equal(batch["new_obs"][0], item.get_observations(-1))
        np.testing.assert_array_equal(batch["obs"][0], item.get_observations(0))
        assert batch["actions"][0] == item.get_actions(0)
        if item.t_started + n <= len(raw.actions):  # the window fits: all equal
            assert item.is_terminated == want["terminateds"]
            assert item.is_truncated == want["truncateds"]
            assert item.extra_model_outputs["n_step"][0] == want["n_step"]
        else:
            cut += 1
            assert item.extra_model_outputs["n_step"][0] == n
            assert not item.is_terminated and not item.is_truncated
    if n == 1:
        assert cut == 0
    else:
        assert cut > 0  # the sample did reach the cut windows


def test_wrap_keeps_items_exact_and_forgets_overwritten_links() -> None:
    """Capacity 10: a 6-step chunk, then 8 steps of another episode straddle the wrap; the
    first episode's slots 0..3 are overwritten, and its next chunk must not link into them."""
    rng = np.random.default_rng(3)
    first = Raw("first", 9, "terminated", rng)
    second = Raw("second", 8, "truncated", rng)
    ring = TransitionRing(10)
    a, rest = first.chunks([6])
    ring.add([a])
    ring.add(second.chunks([]))  # slots 6..9, then 0..3
    assert len(ring) == 10
    with pytest.raises(KeyError):
        ring.slot_of("first", 0)  # overwritten
    for t in range(8):
        slot = ring.slot_of("second", t)
        assert slot == (6 + t) % 10
        check_item(ring.batch(np.array([slot]), 3, GAMMA), 0, second.expected(t, 3))
    # first's last chunk (3 steps) lands in slots 4..6, over its own steps 4, 5 (so it
    # cannot link to step 5) and second's step 0
    ring.add([rest])
    for t in (6, 7, 8):
        check_item(ring.batch(np.array([ring.slot_of("first", t)]), 3, GAMMA), 0,
                   first.expected(t, 3))  # fmt: skip
    # slot 7 still holds second's step 1, whose window must stay inside 'second'
    check_item(ring.batch(np.array([7]), 3, GAMMA), 0, second.expected(1, 3))


def test_a_lost_predecessor_is_not_linked() -> None:
    """An episode's chunk whose predecessor's last slot was reused starts a fresh chain."""
    rng = np.random.default_rng(4)
    slow = Raw("slow", 6, "terminated", rng)
    filler = Raw("filler", 5, "truncated", rng)
    ring = TransitionRing(5)
    head, tail = slow.chunks([2])
    ring.add([head])  # slots 0, 1
    ring.add(filler.chunks([]))  # slots 2..4, 0, 1: head is gone
    ring.add([tail])  # slots 2..5 → 2, 3, 4, 0
    for t in range(2, 6):
        check_item(ring.batch(np.array([ring.slot_of("slow", t)]), 3, GAMMA), 0,
                   slow.expected(t, 3))  # fmt: skip
    assert ring.next_slot[ring.slot_of("slow", 5)] == -1


def test_sampling_is_uniform_over_stored_slots() -> None:
    rng = np.random.default_rng(5)
    ring = TransitionRing(40, seed=0)
    ring.add(Raw("a", 30, "terminated", rng).chunks([10, 20]))
    batch = ring.sample(30_000, 1, GAMMA)
    firsts, hits = np.unique(batch["obs"][:, 0], return_counts=True)
    assert set(firsts) == set(ring.obs[:30, 0])  # every stored one, nothing beyond
    # each of the 30 stored transitions is drawn ≈ 1,000 times (binomial sd ≈ 31)
    assert hits.min() > 850 and hits.max() < 1150


def test_bad_chunks_are_refused() -> None:
    ring = TransitionRing(4)
    with pytest.raises(ValueError, match="observations"):
        ring.add_chunk("x", np.zeros((2, 3)), np.zeros(2, int), np.zeros(2), False, False)
    with pytest.raises(ValueError, match="does not fit"):
        ring.add_chunk("x", np.zeros((6, 3)), np.zeros(5, int), np.zeros(5), False, False)
    with pytest.raises(ValueError, match="empty"):
        ring.sample(4, 1, GAMMA)


@pytest.mark.parametrize("added", [57, 64, 99])  # the write position at 17, 24 and 19 of 40
def test_a_wrapped_ring_draws_every_slot_equally_often(added: int) -> None:
    """After the ring has wrapped, every one of its ``capacity`` slots holds a transition
    and each must be drawn with probability 1 / capacity, the slots at and above the write
    position as much as those below it (sampling below it alone would train on a moving,
    biased slice of the replay). Counts per stored transition against the uniform law:
    Pearson's χ² with capacity − 1 degrees of freedom stays below its 1e-9 upper quantile
    but for a one-in-a-billion draw (fixed seed here)."""
    from scipy.stats import chi2

    capacity, draws = 40, 40_000
    ring = TransitionRing(capacity, seed=11)
    rng = np.random.default_rng(6)
    done = 0
    while done < added:  # chunks of 1..9 steps, the last one cut to fit
        steps = min(int(rng.integers(1, 10)), added - done)
        obs = np.zeros((steps + 1, 3), np.float32)
        obs[:-1, 0] = np.arange(done, done + steps)  # o_t's first entry: the serial t
        ring.add_chunk(f"e{done}", obs, np.zeros(steps, np.int64), np.zeros(steps), True, False)
        done += steps
    assert len(ring) == capacity  # wrapped: the write position is mid-ring
    drawn = ring.sample(draws, 1, GAMMA)["obs"][:, 0].astype(np.int64)
    stored = np.arange(added - capacity, added)  # the newest `capacity` transitions
    counts = np.array([(drawn == serial).sum() for serial in stored])
    assert counts.sum() == draws  # nothing drawn that the ring no longer holds
    expected = draws / capacity
    statistic = ((counts - expected) ** 2 / expected).sum()
    assert counts.min() > 0, f"never drawn: serials {stored[counts == 0].tolist()}"
    assert statistic < chi2.isf(1e-9, capacity - 1), (statistic, counts.tolist())
