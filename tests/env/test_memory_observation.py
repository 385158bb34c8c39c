"""The ``'memory'`` observation against a schedule played by hand: a sync, no sync, a sync
asked for where none is feasible. Its last 1 + M entries are the last slot's request and
which of the twin's last M states are true, each ±1; the rest is ``'decision'``'s."""

from __future__ import annotations

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.env import DNTSyncVectorEnv
from dnt_rllib.env.observation import frame_dim, observation_dim

#: γ = 0.03 on 2 RBs: episode 16 has no RB meeting γ in slot 2, and one in slots 0, 4, 5, 7.
CONFIG = {"twin": "hold", "observation_mode": "memory", "num_users": 3, "num_rbs": 2,
          "history": 3, "episode_length": 8, "delay_bound": 0.03}  # fmt: skip
SEED = 16
#: (action: 'sync' asks on a feasible RB, 'infeasible' on one that misses γ, None no sync;
#:  then the observation after the slot, written out: request, flags of s'_{t−3} … s'_{t−1})
SCHEDULE = [
    # reset: the history was walked in sync
    (None, [+1, +1, +1, +1]),
    ("sync", [+1, +1, +1, +1]),
    (None, [-1, +1, +1, -1]),
    ("infeasible", [+1, +1, -1, -1]),  # asked, did not sync: the newest state is predicted
    (None, [-1, -1, -1, -1]),
    ("sync", [+1, -1, -1, +1]),
    ("sync", [+1, -1, +1, +1]),  # two true states in a row
    (None, [-1, +1, +1, -1]),
    ("sync", [+1, +1, -1, +1]),
]


def action(env: DNTSyncEnv, kind: str | None) -> int:
    """The action of ``kind`` in this slot; asserts the slot allows it (binary mode: the
    paper's RB exists or not; rb mode: the first RB that meets γ, or the first that misses)."""
    if kind is None:
        return 0
    feasible = env.interference <= env.network.max_sync_interference
    if env.config.action_mode == "binary":
        assert feasible.any() == (kind == "sync")
        return 1
    rbs = np.flatnonzero(feasible if kind == "sync" else ~feasible)
    assert rbs.size
    return int(rbs[0]) + 1


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
def test_a_hand_played_schedule_gives_the_memory_entries_slot_by_slot(action_mode: str) -> None:
    cfg = SystemConfig.from_dict({**CONFIG, "action_mode": action_mode})
    assert frame_dim(cfg) == observation_dim(cfg) == 2 * 6 + 1 + 2 + 1 + 2 + 1 + 3
    env = DNTSyncEnv(cfg)
    decision = DNTSyncEnv(cfg.replace(observation_mode="decision"))
    obs, _ = env.reset(seed=SEED)
    plain, _ = decision.reset(seed=SEED)
    for t, (kind, expected) in enumerate(SCHEDULE):
        if t:
            a = action(env, kind)
            obs, _, _, _, info = env.step(a)
            plain = decision.step(a)[0]
            assert info["synced"] == (kind == "sync")
            assert info["infeasible_sync"] == (kind == "infeasible")
        assert obs[-4:].tolist() == expected, t
        np.testing.assert_array_equal(obs[:-4], plain)  # 'decision' comes first, unchanged
    assert env.dnt_history_true.tolist() == [True, False, True] and env.sync_requested


def test_the_batch_observer_gives_each_row_as_a_batch_of_one() -> None:
    """Four envs' memory observations, bit for bit the Observer's rows computed one env at a
    time, after random actions (rb mode: infeasible requests among them)."""
    cfg = SystemConfig.from_dict({**CONFIG, "action_mode": "rb"})
    envs = DNTSyncVectorEnv(4, cfg)
    envs.reset(seed=3)
    rng = np.random.default_rng(0)
    slots = envs.slots
    for _ in range(6):
        obs = envs.step(rng.integers(0, 3, 4))[0]
        gain, scale = slots.channel_terms()
        for i in range(4):
            row = slots.observer(
                slots.positions[i : i + 1].reshape(1, -1), slots.prediction[i : i + 1],
                slots.since_sync[i : i + 1], slots.interference[i : i + 1], slots.slot,
                (slots.positions - slots.previous)[i : i + 1].reshape(1, -1),
                (gain[i : i + 1], scale[i : i + 1]),
                (slots.requested[i : i + 1], slots.true_states[i : i + 1]),
            )  # fmt: skip
            np.testing.assert_array_equal(row[0], obs[i])
    assert len({tuple(r[-4:]) for r in obs}) > 1  # the envs' memories differ


@pytest.mark.parametrize("mode", ["full", "decision", "memory"])
def test_the_memory_entries_leave_the_other_modes_alone(mode: str) -> None:
    """Existing checkpoints rebuild their modules from ``observation_mode``: 'decision' and
    'full' keep their sizes; 'memory' adds 1 + M."""
    cfg = SystemConfig(twin="hold", observation_mode=mode)
    sizes = {"full": 20 + 20 + 1 + 6, "decision": 47 + 1 + 2, "memory": 50 + 1 + 5}
    assert observation_dim(cfg) == sizes[mode]
    assert DNTSyncEnv(cfg).reset(seed=0)[0].shape == (sizes[mode],)
