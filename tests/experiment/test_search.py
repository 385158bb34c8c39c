"""Tune's search in the experiment YAML: ASHA, Optuna, starting points, the learner's reward
and model shape options, checked before Ray starts and carried into what Tune runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.optimize import linear_sum_assignment

from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.names import SEARCH_METRIC
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.trial.rllib_config import build_algorithm_config
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.tuning.space import param_space, search_settings
from dnt_rllib.validation import ConfigError
from tests.conftest import run_tune

SEARCH = {
    "algorithm": "SAC",
    "search_space": {
        "training.gamma": {"choice": [0.8, 0.95]},
        "model.width": {"choice": [32, 64]},
        "reward.baseline": {"choice": [False, True]},
        "env.observation_mode": {"choice": ["full", "timed"]},
    },
    "stop": {"time_total_s": 600},
    "scheduler": {"type": "asha", "grace_period": 120, "reduction_factor": 3},
    "search_alg": {"type": "optuna", "seed": 0, "n_startup_trials": 3},
}
POINT = {
    "training.gamma": 0.95,
    "model.width": 64,
    "reward.baseline": True,
    "env.observation_mode": "timed",
}


def _with(**changes: Any) -> dict[str, Any]:
    """SEARCH with ``section__key=value`` (or ``key=value``) changed."""
    raw = json.loads(json.dumps(SEARCH))
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key:
            raw[section][key] = value
        else:
            raw[section] = value
    return raw


def _searching(key: str, domain: dict[str, Any]) -> dict[str, Any]:
    """SEARCH with ``key`` searched over ``domain`` too."""
    raw = _with()
    raw["search_space"][key] = domain
    return raw


BAD = [
    (_with(stop={"training_iteration": 5}), "experiment.scheduler: ASHA needs stop.time_total_s"),
    (_with(scheduler__grace_period=600), "experiment.scheduler.grace_period = 600: must be <"),
    (_with(scheduler__type="pbt"), "experiment.scheduler.type = 'pbt': must be one of 'asha'"),
    (_with(search_alg__type="hyperopt"), "experiment.search_alg.type = 'hyperopt'"),
    (
        _searching("seed", {"grid": [0, 1]}),
        "experiment.search_space.seed: a search_alg samples its points; use choice",
    ),
    (
        _with(search_alg__points_to_evaluate=[{"training.gamma": 0.8}]),
        "experiment.search_alg.points_to_evaluate[0]: gives no value for model.width",
    ),
    (
        _with(search_alg__points_to_evaluate=[{**POINT, "model.width": 48}]),
        "experiment.search_alg.points_to_evaluate[0].model.width = 48: must be one of [32, 64]",
    ),
    (
        _with(evaluation={"curve_episodes": 0}),
        "experiment.evaluation.curve_episodes = 0: a scheduler or search_alg optimises",
    ),
    (
        _with(evaluation={"seed": 10_000, "episodes": 500, "curve_seed": 10_400}),
        "experiment.evaluation.curve_seed = 10400: the search's episodes 10400..10449 overlap",
    ),
    (_with(reward={"scale": 0}), "experiment.reward.scale = 0: must be a number in (0,"),
    (_with(reward={"baseline": "yes"}), "experiment.reward.baseline = 'yes': must be true or"),
    (
        _searching("reward.scale", {"choice": [1.0, -1.0]}),
        "experiment.reward.scale = -1.0",
    ),
    (
        _with(model={"width": 64, "fcnet_hiddens": [8]}),
        "experiment.model: give fcnet_hiddens or width/depth, not both",
    ),
    (_with(model={"depth": 0}), "experiment.model.depth = 0: must be an integer in [1, 16]"),
    (
        _searching("model.depth", {"uniform": [1, 3]}),
        "experiment.search_space.model.depth.uniform: model.depth takes integers",
    ),
    (_with(time_budget_s=0), "experiment.time_budget_s = 0: must be an integer >= 1"),
    (
        _with(env={"observation_mode": "clock"}),
        "experiment.env: SystemConfig.observation_mode = 'clock'",
    ),
]


@pytest.mark.parametrize(("raw", "says"), BAD, ids=[s[:50] for _, s in BAD])
def test_bad_search_settings_give_one_line(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment(raw)
    assert str(err.value).startswith(says), str(err.value)
    assert "\n" not in str(err.value)


def test_asha_and_optuna_are_built_from_the_yaml() -> None:
    exp = parse_experiment(_with(time_budget_s=3600))
    settings = search_settings(exp)
    assert (settings["metric"], settings["mode"]) == (SEARCH_METRIC, "max")
    asha = settings["scheduler"]
    assert (asha._time_attr, asha._max_t, asha._reduction_factor) == ("wall_time_s", 600, 3)
    # rungs: grace · rf^k below max_t, i.e. 120 and 360 s of training
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [120, 360]
    assert settings["time_budget_s"] == 3600
    assert type(settings["search_alg"]).__name__ == "OptunaSearch"


def test_the_first_trials_are_the_points_given() -> None:
    exp = parse_experiment(_with(search_alg__points_to_evaluate=[POINT]))
    settings = search_settings(exp)
    searcher = settings["search_alg"]
    assert searcher.set_search_properties(settings["metric"], "max", param_space(exp))
    first = searcher.suggest("t0")
    assert first["training"]["SAC"]["gamma"] == 0.95
    assert first["model"]["width"] == 64
    assert first["reward"]["baseline"] is True
    assert first["env"]["observation_mode"] == "timed"


def test_width_and_depth_make_the_hidden_layers() -> None:
    exp = parse_experiment({"algorithm": "DQN", "model": {"width": 48, "depth": 3}})
    config = build_algorithm_config(exp.trial_spec(), RLlibDNTEnv)
    assert config.model_config["fcnet_hiddens"] == [48, 48, 48]
    exp = parse_experiment({"algorithm": "DQN", "model": {"depth": 1}})  # paper width 256
    config = build_algorithm_config(exp.trial_spec(), RLlibDNTEnv)
    assert config.model_config["fcnet_hiddens"] == [256]


HOLD = {"twin": "hold", "num_users": 4, "num_rbs": 3, "episode_length": 6, "epsilon": 0.9}


def _all_rb_rate(rates: np.ndarray) -> float:
    """Σ_u c_u with every RB open, eq. (14), by scipy's Hungarian on the U×N matrix."""
    rows, cols = linear_sum_assignment(rates, maximize=True)
    return float(rates[rows, cols].sum())


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_baseline_reward_is_minus_the_rate_given_up_and_the_gap(scale: float) -> None:
    """With the baseline on, the learner's reward is scale · (−ε (Σc_all − Σc_played)
    − (1 − ε)/U · gap): 0 rate given up without a sync, the sync RB's share with one."""
    env = RLlibDNTEnv({**HOLD, "num_envs": 3, "reward_baseline": True, "reward_scale": scale})
    plain = RLlibDNTEnv({**HOLD, "num_envs": 3})
    env.reset(seed=5)
    plain.reset(seed=5)
    eps, users = HOLD["epsilon"], HOLD["num_users"]
    rng = np.random.default_rng(0)
    for _ in range(HOLD["episode_length"]):
        rates = env.slots.rate_matrices()
        actions = rng.integers(0, 2, size=3)
        _, shaped, *_ = env.step(actions)
        _, raw, *_ = plain.step(actions)
        played = env._played
        for b in range(3):
            full = _all_rb_rate(rates[b])
            expected = -eps * (full - played["sum_rate"][b])
            expected -= (1 - eps) / users * played["sync_error"][b]
            assert shaped[b] == pytest.approx(scale * expected, abs=1e-9)
            # the paper's reward of the same slot, less ε Σc_all
            assert shaped[b] == pytest.approx(scale * (raw[b] - eps * full), abs=1e-9)
            if not played["synced"][b]:
                assert played["sum_rate"][b] == pytest.approx(full)


def test_timed_observation_counts_down_and_the_episode_terminates() -> None:
    from dnt_rllib.env import DNTSyncEnv, DNTSyncVectorEnv

    t_len = HOLD["episode_length"]
    env = DNTSyncEnv({**HOLD, "observation_mode": "timed"})
    full = DNTSyncEnv(HOLD)
    obs, _ = env.reset(seed=1)
    obs_full, _ = full.reset(seed=1)
    assert obs.shape[0] == obs_full.shape[0] + 1
    for t in range(t_len):
        assert obs[-1] == pytest.approx(2 * (t_len - t) / t_len - 1)
        np.testing.assert_array_equal(obs[:-1], obs_full)  # the rest is 'full' unchanged
        obs, _, terminated, truncated, _ = env.step(1)
        obs_full, _, term_full, trunc_full, _ = full.step(1)
        last = t == t_len - 1
        assert (terminated, truncated) == (last, False)
        assert (term_full, trunc_full) == (False, last)
    vec = DNTSyncVectorEnv(2, {**HOLD, "observation_mode": "timed"})
    vec.reset(seed=1)
    for t in range(t_len):
        _, _, terminated, truncated, _ = vec.step(np.zeros(2, dtype=np.int64))
        assert terminated.tolist() == [t == t_len - 1] * 2
        assert not truncated.any()


@pytest.mark.e2e
def test_a_search_runs_asha_and_optuna_on_the_curve_metric(tmp_path: Path) -> None:
    """Three short trials: the first is the given point, every result after the first curve
    carries the search metric, and the scores Optuna saw are the curve's paired ones."""
    config = {
        "name": "tiny_search",
        "algorithm": "SAC",
        "env": {
            "num_users": 4,
            "num_rbs": 3,
            "episode_length": 10,
            "gru_hidden": 16,
            "twin_trajectories": 60,
            "twin_max_epochs": 3,
        },
        "training": {
            "SAC": {
                "num_steps_sampled_before_learning_starts": 50,
                "train_batch_size_per_learner": 32,
            }
        },
        "search_space": {
            "training.gamma": {"choice": [0.8, 0.95]},
            "model.width": {"choice": [16, 32]},
            "reward.baseline": {"choice": [False, True]},
        },
        "num_samples": 3,
        "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2},
        "search_alg": {
            "type": "optuna",
            "n_startup_trials": 2,
            "points_to_evaluate": [
                {"training.gamma": 0.95, "model.width": 16, "reward.baseline": True}
            ],
        },
        "stop": {"time_total_s": 5},
        "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
        "checkpoint": {"frequency": 1000, "num_to_keep": 1},
        "evaluation": {"episodes": 4, "curve_episodes": 4, "curve_interval": 3},
    }
    path = tmp_path / "tiny_search.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_tune(tmp_path, "--config", str(path), home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = sorted((tmp_path / "ray_results" / "tiny_search").glob("SAC_*/result.json"))
    assert len(trials) == 3
    params = [json.loads((t.parent / "params.json").read_text()) for t in trials]
    assert any(
        (p["training"]["SAC"]["gamma"], p["model"]["width"], p["reward"]["baseline"])
        == (0.95, 16, True)
        for p in params
    )
    for result_file in trials:
        results = [json.loads(line) for line in result_file.read_text().splitlines()]
        assert len(results) >= 2
        assert "curve/diff_threshold" in results[0]  # the curve plays at iteration 1
        latest = None
        for r in results:  # every result carries the latest curve value
            latest = r.get("curve/diff_threshold", latest)
            assert r[SEARCH_METRIC] == latest
        assert any("curve/diff_threshold" not in r for r in results[1:])


@pytest.mark.parametrize("action_mode", ["binary", "rb"])
def test_decision_observation_shows_what_the_threshold_rule_weighs(action_mode: str) -> None:
    """The last two entries are 1 − 2 exp(−x/2) of the gap penalty (1 − ε)/U ‖ŝ − s‖²
    (eq. 15) and of the sync's rate cost ε (Σc_all − Σc_withheld) (eqs. 14, 16)."""
    from dnt_rllib.env import DNTSyncEnv, DNTSyncVectorEnv
    from dnt_rllib.policies.threshold import sync_choice

    config = {**HOLD, "observation_mode": "decision", "action_mode": action_mode}
    env = DNTSyncEnv(config)
    timed = DNTSyncEnv({**config, "observation_mode": "timed"})
    vec = DNTSyncVectorEnv(1, config)
    obs, _ = env.reset(seed=3)
    obs_timed, _ = timed.reset(seed=3)
    obs_vec, _ = vec.reset(seed=3)
    eps, users = HOLD["epsilon"], HOLD["num_users"]
    seen_cost = False
    for _ in range(HOLD["episode_length"]):
        gap = env.twin_prediction - env.user_positions.ravel()
        penalty = (1 - eps) / users * float(gap @ gap)
        rb, free, withheld = sync_choice(env)
        cost = eps * (free - withheld) if rb >= 0 else np.inf
        seen_cost |= bool(np.isfinite(cost) and cost > 0)
        assert obs[-2] == pytest.approx(1 - 2 * np.exp(-penalty / 2), abs=1e-6)
        assert obs[-1] == pytest.approx(1 - 2 * np.exp(-cost / 2), abs=1e-6)
        np.testing.assert_array_equal(obs[:-2], obs_timed)
        np.testing.assert_array_equal(obs_vec[0], obs)  # a batch of one sees the same
        action = int(penalty > 0.5)
        obs, *_ = env.step(action)
        obs_timed, *_ = timed.step(action)
        obs_vec, *_ = vec.step(np.array([action]))
    assert seen_cost


def test_a_search_over_dqn_ppo_and_the_lstm_builds_every_trial() -> None:
    """Tune expands the space into trials that each build: the LSTM where the point says so
    (DQN on RLlib's replay, PPO), a searched training key in each algorithm's settings."""
    from ray.tune.search.variant_generator import generate_variants

    from dnt_rllib.trial.trained_policy import build_module

    exp = parse_experiment({
        "algorithm": "PPO", "replay": {"kind": "rllib"}, "env": HOLD,
        "model": {"fcnet_hiddens": [16], "lstm_cell_size": 8},
        "search_space": {"algorithm": {"grid": ["DQN", "PPO"]},
                         "model.use_lstm": {"grid": [False, True]},
                         "training.gamma": {"choice": [0.8, 0.95]}},
    })  # fmt: skip
    trials = [params for _, params in generate_variants(param_space(exp))]
    assert sorted((p["algorithm"], p["model"]["use_lstm"]) for p in trials) == [
        ("DQN", False), ("DQN", True), ("PPO", False), ("PPO", True)]  # fmt: skip
    for params in trials:
        spec = TrialSpec.from_params(params)
        assert spec.training["gamma"] in (0.8, 0.95)
        build_algorithm_config(spec, RLlibDNTEnv).validate()
        assert build_module(spec).is_stateful() is spec.model["use_lstm"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"algorithm": "PPO", "search_space": {"model.lstm_cell_size": {"uniform": [8, 64]}}},
         "experiment.search_space.model.lstm_cell_size.uniform: model.lstm_cell_size takes "
         "integers"),
        ({"algorithm": "DQN", "replay": {"kind": "rllib"}, "model": {"use_lstm": True},
          "search_space": {"model.max_seq_len": {"randint": [2, 9]},
                           "training.burn_in_len": {"grid": [0, 4]}}},
         "experiment.search_space: the point algorithm = 'DQN', model.max_seq_len = 2, "
         "training.burn_in_len = 4: training.DQN.burn_in_len = 4 with model.max_seq_len = 2"),
        ({"algorithm": "DQN", "model": {"use_lstm": True},
          "search_space": {"replay.kind": {"grid": ["rllib", "fast"]}}},
         "experiment.search_space: the point algorithm = 'DQN', replay.kind = 'fast': "
         "replay.kind = 'fast' with DQN"),
        ({"algorithm": "PPO", "model": {"fcnet_hiddens": [4096]},
          "search_space": {"model.use_lstm": {"grid": [False, True]},
                           "model.lstm_cell_size": {"choice": [8, 2048]}}},
         "experiment.model: layers 20 inputs (num_users = 4, num_rbs = 3), hidden "
         "[4096, LSTM 2048] hold 50 M weights"),
    ],
)  # fmt: skip
def test_searched_lstm_settings_are_checked_at_every_point(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment({**raw, "env": HOLD})
    assert str(err.value).startswith(says), str(err.value)


def test_a_training_grid_with_the_algorithm_searched_is_refused() -> None:
    # Each algorithm's settings held a copy of the grid and Tune crossed the copies: 2
    # algorithms × a 2-point γ grid ran 8 trials, each point twice, not 4.
    raw = {"name": "x", "algorithm": "SAC",
           "search_space": {"algorithm": {"grid": ["SAC", "DQN"]},
                            "training.gamma": {"grid": [0.9, 0.95]}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"search_space\.training\.gamma: a grid over a "):
        parse_experiment(raw)
    raw["search_space"]["training.gamma"] = {"choice": [0.9, 0.95]}
    parse_experiment(raw)  # one draw per trial
    raw["search_space"] = {"training.gamma": {"grid": [0.9, 0.95]}}
    parse_experiment(raw)  # one algorithm: one copy


def test_settings_read_at_some_point_of_the_search_are_taken() -> None:
    """The LSTM's sizes and PPO's KL settings are refused only where no point reads them."""
    lstm = {"model.use_lstm": {"grid": [False, True]}}
    kl = {"training.use_kl_loss": {"grid": [False, True]}}
    parse_experiment({"algorithm": "PPO", "env": HOLD, "model": {"lstm_cell_size": 8},
                      "search_space": lstm})  # fmt: skip
    parse_experiment({"algorithm": "PPO", "env": HOLD, "training": {"PPO": {"kl_coeff": 0.3}},
                      "search_space": kl})  # fmt: skip
    parse_experiment({"algorithm": "PPO", "env": HOLD, "training": {"SAC": {"tau": 0.01}},
                      "replay": {"kind": "rllib"},
                      "search_space": {"algorithm": {"grid": ["PPO", "SAC"]}}})  # fmt: skip
