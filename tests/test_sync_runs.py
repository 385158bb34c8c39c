"""``python -m dnt_rllib.sync_runs``: runs of synced slots counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.baselines import always, never
from dnt_rllib.sync_runs import main, play_synced, run_lengths, sync_runs


@pytest.mark.parametrize(
    ("flags", "lengths"),
    [
        ([1, 1, 0, 1, 0, 0, 1, 1, 1], [2, 1, 3]),
        ([0, 0, 0], []),
        ([1], [1]),
        ([0, 1, 1, 1, 1, 0], [4]),
    ],
)
def test_run_lengths(flags: list[int], lengths: list[int]) -> None:
    assert run_lengths(np.asarray(flags, dtype=bool)).tolist() == lengths


def test_sync_runs_counted_by_hand() -> None:
    # runs 2 and 1 in the first episode, none in the second: 3 syncs in 8 slots, 2 of them
    # in a run of two or more, a mean run of (2 + 1) / 2
    out = sync_runs("p", [np.array([1, 1, 0, 1], bool), np.array([0, 0, 0, 0], bool)])
    assert out.sync_fraction == pytest.approx(3 / 8)
    assert out.in_runs_of_two == pytest.approx(2 / 3)
    assert out.mean_run == pytest.approx(1.5)
    assert math.isnan(sync_runs("none", [np.zeros(4, bool)]).in_runs_of_two)


def test_always_is_one_run_per_episode_and_never_none() -> None:
    config = SystemConfig(twin="hold", episode_length=6)
    env = DNTSyncEnv(config)
    played = play_synced(env, always, range(3))
    assert [p.tolist() for p in played] == [[True] * 6] * 3
    summary = sync_runs("always", played)
    assert (summary.sync_fraction, summary.in_runs_of_two, summary.mean_run) == (1.0, 1.0, 6.0)
    assert not any(p.any() for p in play_synced(env, never, range(3)))


def test_bad_episodes_refused_in_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["--episodes", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --episodes") and "\n" not in err
