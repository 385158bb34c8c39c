"""Refused before Ray starts: search domains that sample what their key cannot take, bad
model values, names that leave storage_path, sizes that cannot fit in memory."""

from __future__ import annotations

from typing import Any

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.evaluate import parse_periods
from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.validation import ConfigError

BAD: list[tuple[dict[str, Any], str]] = [
    ({"search_space": {"env.num_users": {"uniform": [2, 8]}}}, "takes integers"),
    ({"search_space": {"seed": {"loguniform": [1, 8]}}}, "takes integers"),
    ({"search_space": {"env.num_users": {"randint": [1, 1]}}}, "high must be >= low + 2"),
    ({"search_space": {"env.num_users": {"randint": [1.5, 4]}}}, "must be integers"),
    ({"search_space": {"env.num_users": {"randint": [0, 3]}}}, "num_users = 0"),
    ({"search_space": {"env.epsilon": {"loguniform": [0, 0.9]}}}, "low must be > 0"),
    ({"search_space": {"env.epsilon": {"uniform": [0.9, 0.5]}}}, "low < high"),
    ({"search_space": {"algorithm": {"uniform": [0, 1]}}}, "grid or choice"),
    ({"search_space": {"algorithm": {"randint": [0, 2]}}}, "grid or choice"),
    ({"model": {"fcnet_hiddens": "abc"}}, "fcnet_hiddens = 'abc'"),
    ({"model": {"fcnet_hiddens": [256, 1e9]}}, "fcnet_hiddens"),
    ({"model": {"fcnet_activation": "abc"}}, "fcnet_activation = 'abc'"),
    ({"name": "../escaped"}, "one folder name"),
    ({"name": "a/b"}, "one folder name"),
    ({"env": {"num_users": 100_000}}, "num_users = 100000"),
    ({"env": {"num_users": 100_000, "twin": "hold"}}, "num_users = 100000"),
    ({"env": {"gru_hidden": 100_000_000}}, "gru_hidden = 100000000"),
    ({"env": {"twin_trajectories": 1_000_000_000}}, "twin_trajectories = 1000000000"),
    # issue 25: sizes the memory estimate skipped, and nonsense that was accepted
    ({"model": {"width": 8192, "depth": 16}}, "M weights per network, more than 20.0 M"),
    ({"search_space": {"model.width": {"choice": [64, 4096]},
                       "model.depth": {"choice": [1, 3]}}},
     "search_space: layers [4096, 4096, 4096] hold 34 M"),
    ({"model": {"use_lstm": "yes"}}, "experiment.model.use_lstm = 'yes': must be true or false"),
    ({"model": {"lstm_use_prev_reward": True}}, "model.lstm_use_prev_reward: not a model"),
    ({"search_space": {"env.area_size": {"uniform": [30.0, 500.0]},
                       "env.step_size": {"uniform": [1.0, 20.0]}}},
     "the point area_size = 30.0, step_size = 20.0 is not a valid network"),
    ({"search_space": {"env.episode_length": {"grid": [30, 10]},
                       "env.history": {"grid": [3, 12]}}},
     "the point episode_length = 10, history = 12 is not a valid network"),
    ({"search_space": {"seed": {"randint": [0, 5]}},
      "search_alg": {"type": "optuna", "points_to_evaluate": [{"seed": 3.5}]}},
     "seed = 3.5: must be an integer in the randint range [0, 4]"),
    ({"search_space": {"seed": {"choice": [1, 4]}},
      "search_alg": {"type": "optuna", "points_to_evaluate": [{"seed": True}]}},
     "seed = True: must be one of [1, 4]"),
    ({"search_space": {"env.epsilon": {"uniform": [0.5, 0.9]}},
      "search_alg": {"type": "optuna", "points_to_evaluate": [{"env.epsilon": "x"}]}},
     "env.epsilon = 'x': must be in the uniform range"),
    ({"search_space": {"seed": {"choice": [1, 4]}},
      "search_alg": {"type": "optuna", "points_to_evaluate": 0}},
     "points_to_evaluate: must be a list of mappings"),
    ({"evaluation": {"reference": ["never"]}}, "reference = ['never']: must be null"),
    ({"name": "a\0b"}, "name = 'a\\x00b': must be one folder name (printable"),
    ({"storage_path": "foo://bar"}, "storage_path = 'foo://bar': unknown scheme foo://"),
    ({"mlflow": {"tracking_uri": "foo://bar"}}, "unknown scheme foo://"),
    ({"seed": 4294967296}, "seed = 4294967296: must be an integer in [0, 2147483647]"),
    ({"env": {"num_rbs": 2_000_000, "twin": "hold"}},
     "2,000,041 inputs (num_users = 10, num_rbs = 2000000), hidden [256, 256] hold 512 M"),
    ({"search_space": {"env.num_rbs": {"grid": [6, 100_000]}}}, "100,041 inputs"),
    ({"env": {"num_rbs": 10_000_000, "twin": "hold"}}, "10,000,041 inputs"),
    # issue 27: frame_stack's range, and the stacked input counted at the largest search point
    ({"env": {"frame_stack": 0}},
     "experiment.env: SystemConfig.frame_stack = 0: must be an integer in [1, 30]"),
    ({"search_space": {"env.frame_stack": {"grid": [1, 40]}}},
     "search_space.env.frame_stack: SystemConfig.frame_stack = 40: must be an integer in [1, 30]"),
    ({"search_space": {"env.frame_stack": {"randint": [1, 9]},
                       "env.episode_length": {"grid": [6, 30]}}},
     "the point frame_stack = 8, episode_length = 6 is not a valid network"),
    # U = 100, 'memory': 200 + 200 + 1 + 6 + 1 + 2 + 1 + 5 = 416 entries a frame, × 30 frames;
    # 12,480 × 8,192 + 8,192 × 2 weights
    ({"env": {"num_users": 100, "twin": "hold", "observation_mode": "memory"},
      "model": {"fcnet_hiddens": [8192]}, "search_space": {"env.frame_stack": {"grid": [1, 30]}}},
     "12,480 inputs (num_users = 100, num_rbs = 6, frame_stack = 30), hidden [8192] hold 102 M"),
    # the longest searched observation_mode: 'memory' × 10 frames, not 'paper''s 200 × 10
    ({"env": {"num_users": 100, "twin": "hold", "frame_stack": 10},
      "model": {"fcnet_hiddens": [8192]},
      "search_space": {"env.observation_mode": {"choice": ["paper", "memory"]}}},
     "4,160 inputs (num_users = 100, num_rbs = 6, frame_stack = 10), hidden [8192] hold 34 M"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "says"), BAD, ids=[str(r) for r, _ in BAD])
def test_refused_with_one_line(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment({"algorithm": "SAC", **raw})
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"search_space": {"env.num_users": {"randint": [2, 5]}}},
        {"search_space": {"env.epsilon": {"loguniform": [0.5, 0.9]}}},
        {"search_space": {"training.gamma": {"uniform": [0.5, 0.9]}}},
        {"search_space": {"algorithm": {"choice": ["SAC", "DQN"]}}},
        {"model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}},
        {"name": "sac-2"},
        {
            "env": {"observation_mode": "memory"},
            "search_space": {"env.frame_stack": {"grid": [1, 30]}},
        },
        {
            "env": {"num_users": 100, "twin": "hold", "observation_mode": "memory"},
            "model": {"fcnet_hiddens": [8192]},
        },  # 416 × 8,192 + 8,192 × 2 weights: 3.4 M
    ],
)
def test_accepted(raw: dict[str, Any]) -> None:
    parse_experiment({"algorithm": "SAC", **raw})


def test_memory_limit_names_the_phase_and_its_fields() -> None:
    """U = 50, T = 30, M = 5, hold twin: the evaluation's batched replay is the largest
    phase: 0.4 GiB + 6,000 rows × 16 B × 50 users × (30 + 3 × 5) = 645,496,729.6 B."""
    from dnt_rllib.config import check_fits

    config = SystemConfig(num_users=50, twin="hold")
    check_fits(config, limit=645_496_730)
    with pytest.raises(
        ConfigError,
        match=r"num_users = 50, episode_length = 30, history = 5: "
        r"evaluation \(the threshold rule's batched replay\) needs ~0.6 GiB",
    ):
        check_fits(config, limit=645_496_729)
    # 10⁸ RBs: an episode's per-RB draws, 0.4 GiB + 32 B × 30 slots × 10⁸ = 89.8 GiB
    with pytest.raises(
        ConfigError,
        match=r"num_rbs = 100000000, episode_length = 30: an "
        r"episode's per-RB draws \(the tapes\) needs ~89.8 GiB",
    ):
        check_fits(SystemConfig(num_rbs=10**8, twin="hold"), limit=64 * 2**30)


def test_the_replay_ring_counts_the_stacked_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    """10⁷ transitions of 'memory' observations at U = 10 (20 + 20 + 1 + 6 + 1 + 2 + 1 + 5 =
    56 entries a frame): o_t and o_{t+1} as float32 and 50 bytes of the rest per slot, beside
    0.4 GiB of process. 30 frames: 10⁷ × (8 × 1,680 + 50) B = 125.6 GiB + 0.4, refused on a
    16 GiB machine; one frame: 10⁷ × (8 × 56 + 50) B = 4.6 GiB + 0.4, accepted. RLlib's
    buffer (``replay.kind: rllib``) is not our ring and is not counted."""
    from dnt_rllib import config

    monkeypatch.setattr(config, "physical_memory", lambda: 16 * 2**30)
    raw = {"algorithm": "SAC", "env": {"twin": "hold", "observation_mode": "memory"},
           "training": {"SAC": {"replay_buffer_config": {"capacity": 10_000_000}}}}  # fmt: skip
    parse_experiment(raw)
    stacked = {**raw, "env": {**raw["env"], "frame_stack": 30}}
    with pytest.raises(ConfigError) as err:
        parse_experiment(stacked)
    assert str(err.value) == (
        "experiment.training: a replay ring of 10,000,000 transitions with observations of "
        "1,680 entries (num_users = 10, num_rbs = 6, frame_stack = 30) needs ~126.0 GiB, more "
        "than this machine's 16.0 GiB of memory; lower replay_buffer_config.capacity, "
        "num_users, num_rbs or frame_stack"
    )
    with pytest.raises(ConfigError, match="frame_stack = 30"):  # searched: its largest value
        parse_experiment({**raw, "search_space": {"env.frame_stack": {"grid": [1, 30]}}})
    parse_experiment({**stacked, "replay": {"kind": "rllib"}})


def test_pretraining_is_counted_with_the_gru_twin_only() -> None:
    """U = 10, 2,000 trajectories, T = 30, M = 5, 128 hidden: 0.4 GiB + 2,000 × 10 ×
    (16 × 30 + 40 × 25 × 6) + the GRU's 4·4·3·128·150 + 8·3·128·150 = 560,479,129.6 B."""
    from dnt_rllib.config import memory_estimate

    phases = memory_estimate(SystemConfig())
    fields, size = phases["twin pretraining (its trajectories and training windows)"]
    assert fields == "twin_trajectories, num_users, episode_length, history"
    assert size == pytest.approx(560_479_129.6)
    assert not any("pretraining" in k for k in memory_estimate(SystemConfig(twin="hold")))


def test_periods_are_bounded() -> None:
    assert parse_periods("2-10") == list(range(2, 11))
    with pytest.raises(ConfigError, match="at most 100 periods"):
        parse_periods("2-100000000")


def test_model_values_rllib_cannot_build_are_refused_before_ray() -> None:
    """A model RLlib cannot build (here one the parser would refuse) is one line, too."""
    import dataclasses

    from dnt_rllib.tuning.checks import check_rllib

    exp = parse_experiment({"algorithm": "SAC", "env": {"twin": "hold"}})
    exp = dataclasses.replace(exp, model={"fcnet_kernel_initializer": "abc"})
    with pytest.raises(ConfigError, match=r"^experiment\.model: RLlib cannot build the SAC module"):
        check_rllib(exp)
