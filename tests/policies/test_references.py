"""threshold, ceiling and lookahead: each checked against an independent computation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from dnt_rllib import DNTSyncEnv, SystemConfig
from dnt_rllib.physics.allocation import allocate
from dnt_rllib.policies import CeilingPolicy, LookaheadPolicy, ThresholdRule, baseline_policies
from dnt_rllib.policies import threshold as threshold_module
from dnt_rllib.policies.ceiling_check import main as ceiling_check_main
from dnt_rllib.policies.ceiling_check import shortfalls
from dnt_rllib.policies.lookahead import STREAM, sample_futures
from dnt_rllib.policies.tape import record_tapes
from dnt_rllib.policies.threshold import TUNING_SEEDS, load_or_fit, rule_returns
from dnt_rllib.scoring import evaluate_policies, run_policy
from dnt_rllib.twin import HoldLastTwin

SMALL_GRU = {"num_users": 4, "num_rbs": 3, "gru_hidden": 16, "twin_trajectories": 60,
             "twin_max_epochs": 2}  # fmt: skip


def play(env: DNTSyncEnv, schedule: tuple[int, ...], seed: int) -> float:
    """The return of a fixed 0/1 schedule, stepped in the env."""
    env.reset(seed=seed)
    return sum(env.step(a)[1] for a in schedule)


#: The memory options replay too: their state is in the env, so the tapes record it.
MEMORY = {"markov": {"interference_model": "markov", "delay_bound": 0.03},
          "gauss-markov": {"mobility_model": "gauss_markov"}}  # fmt: skip


@pytest.mark.parametrize(
    "a, b, network",
    [(1.0, 0.0, None), (2.5, 0.3, None), (0.5, -1.0, None), (1.0, 0.0, "markov"),
     (2.5, 0.3, "gauss-markov")],
)  # fmt: skip
def test_batched_replay_of_a_rule_equals_playing_it_in_the_env(
    a: float, b: float, network: str | None
) -> None:
    cfg = SystemConfig(twin="hold", **MEMORY.get(network, {}))
    env = DNTSyncEnv(cfg)
    seeds = range(40, 60)
    played = run_policy(env, ThresholdRule(a, b), "rule", seeds).returns
    replayed = rule_returns(env.twin, record_tapes(cfg, seeds), cfg, np.array([a]), np.array([b]))
    np.testing.assert_allclose(replayed[0], played, rtol=0, atol=1e-9)


def test_greedy_is_the_rule_with_a_1_b_0() -> None:
    env = DNTSyncEnv(SystemConfig(twin="hold"))
    greedy = run_policy(env, baseline_policies([])["greedy"], "greedy", range(5)).returns
    rule = run_policy(env, ThresholdRule(1.0, 0.0), "rule", range(5)).returns
    assert greedy == rule


@pytest.mark.parametrize("network", [None, *MEMORY])
def test_ceiling_is_the_best_of_every_schedule_with_the_hold_twin(network: str | None) -> None:
    # T = 8: all 256 schedules, played in the env one by one, against the DP's choice.
    cfg = SystemConfig(twin="hold", episode_length=8, num_users=3, num_rbs=3,
                       **MEMORY.get(network, {}))  # fmt: skip
    env = DNTSyncEnv(cfg)
    ceiling = CeilingPolicy(env)
    for seed in (3, 4):
        best = max(play(env, s, seed) for s in itertools.product((0, 1), repeat=8))
        got = run_policy(env, ceiling, "ceiling", [seed]).returns[0]
        assert got == pytest.approx(best, abs=1e-9)
        assert ceiling.planned[seed] == pytest.approx(best, abs=1e-9)


def test_ceiling_is_never_beaten_by_a_rule_and_skips_infeasible_slots() -> None:
    # γ = 0.02 leaves ~17 % of slots without a feasible RB: the DP must not plan a sync there.
    cfg = SystemConfig(twin="hold", delay_bound=0.02)
    env = DNTSyncEnv(cfg)
    seeds = range(10)
    assert not record_tapes(cfg, seeds).feasible.all()
    ceiling = run_policy(env, CeilingPolicy(env), "ceiling", seeds)
    assert ceiling.infeasible_syncs == 0
    for a, b in [(1.0, 0.0), (3.0, 0.5), (0.5, 0.0)]:
        rule = run_policy(env, ThresholdRule(a, b), "rule", seeds)
        assert min(np.subtract(ceiling.returns, rule.returns)) >= -1e-9


def test_ceiling_with_the_gru_replays_its_plan(tmp_path: Path) -> None:
    cfg = SystemConfig(**SMALL_GRU, twin_cache_dir=str(tmp_path))
    env = DNTSyncEnv(cfg)
    ceiling = CeilingPolicy(env)
    played = run_policy(env, ceiling, "ceiling", range(20)).returns
    planned = [ceiling.planned[s] for s in range(20)]
    # the DP plays every node with the twin's own history (module doc): its plan is its replay
    assert np.abs(np.subtract(planned, played)).max() < 1e-9 * np.abs(played).max()


class VelocityTwin:
    """ŝ_t = 2 s_{t−1} − s_{t−2}: a twin that reads a velocity from its last two states, as
    the Gauss–Markov GRU does; after a run of its own predictions the velocity is theirs."""

    def predict(self, history: np.ndarray) -> np.ndarray:
        return 2.0 * history[:, -1] - history[:, -2]


def test_ceiling_tops_every_rule_with_a_twin_that_reads_velocity() -> None:
    # Keyed by the last sync alone and rolled from true states, the first DP planned syncs
    # whose twin read a true velocity it did not have: replayed, it fell below `threshold`.
    cfg = SystemConfig(twin="hold", mobility_model="gauss_markov", episode_length=12)
    env = DNTSyncEnv(cfg, twin=VelocityTwin())
    seeds = range(8)
    ceiling = CeilingPolicy(env)
    played = run_policy(env, ceiling, "ceiling", seeds).returns
    assert np.abs(np.subtract([ceiling.planned[s] for s in seeds], played)).max() < 1e-6
    rules = [run_policy(env, ThresholdRule(a, b), "rule", seeds).returns
             for a in (0.5, 1.0, 2.0, 4.0) for b in (-1.0, 0.0, 0.5)]  # fmt: skip
    periodic = [[play(env, tuple(int(t % k == 0) for t in range(12)), s) for s in seeds]
                for k in (1, 2, 3)]  # fmt: skip
    assert np.min(np.subtract(played, np.max(rules + periodic, axis=0))) >= -1e-9


def test_lookahead_at_the_last_slot_is_greedy() -> None:
    # With nothing left to plan for, comparing the two branches is greedy's one-slot test.
    cfg = SystemConfig(twin="hold", episode_length=1, epsilon=0.9)
    env = DNTSyncEnv(cfg)
    seeds = range(200)
    look = run_policy(env, LookaheadPolicy(ThresholdRule(2.0, 0.5), 4), "lookahead", seeds)
    greedy = run_policy(env, baseline_policies([])["greedy"], "greedy", seeds)
    assert look.returns == greedy.returns
    assert 0 < greedy.sync_fraction < 1  # the test decides something


def test_lookahead_replays_the_same_decisions_for_the_same_seed() -> None:
    env = DNTSyncEnv(SystemConfig(twin="hold", episode_length=6))
    look = LookaheadPolicy(ThresholdRule(2.0, 0.3), 4)
    first = run_policy(env, look, "lookahead", range(8)).returns
    assert run_policy(env, look, "lookahead", range(8)).returns == first


def test_fit_beats_greedy_on_tuning_episodes_and_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = SystemConfig(twin="hold", twin_cache_dir=str(tmp_path))
    fit = load_or_fit(cfg)
    assert fit.tuning_seeds == (TUNING_SEEDS[0], TUNING_SEEDS[-1])
    assert fit.tuning_return >= fit.greedy_return
    # the saved greedy figure is greedy's own mean return on those episodes
    env = DNTSyncEnv(cfg)
    greedy = run_policy(env, baseline_policies([])["greedy"], "greedy", TUNING_SEEDS)
    assert fit.greedy_return == pytest.approx(greedy.mean_return, abs=1e-9)
    stored = json.loads(Path(fit.path).read_text())
    assert (stored["a"], stored["b"]) == (fit.a, fit.b)
    assert Path(fit.path).stat().st_mode & 0o777 == 0o644

    def refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached fit was not reused")

    monkeypatch.setattr(threshold_module, "fit_threshold", refit)
    assert load_or_fit(cfg) == fit
    with pytest.raises(AssertionError, match="not reused"):
        load_or_fit(cfg.replace(epsilon=0.95))  # another network: another fit


def test_lookahead_futures_continue_the_memory_options_from_the_present() -> None:
    """K futures from one slot. One Markov RB, and γ = 0.03 refuses the loud level only, so
    a future's first slot has no feasible sync iff the RB is loud then: P = π(1 − λ) + λ
    = 0.92 if loud now, π(1 − λ) = 0.02 if quiet (π = 0.2, λ = 0.9). A Gauss–Markov user's
    first displacement has mean α v_t + (1 − α) μ_u, μ_u = Δl (p_+x − p_−x, p_+y − p_−y)."""
    from dnt_rllib.policies.lookahead import sample_futures

    cfg = SystemConfig(twin="hold", interference_model="markov", mobility_model="gauss_markov",
                       interference_memory=0.9, mobility_memory=0.6, num_users=3, num_rbs=1,
                       delay_bound=0.03, area_size=1e5)  # fmt: skip
    env = DNTSyncEnv(cfg)
    env.reset(seed=2)
    k, seen = 4000, set()
    p = env.move_probs
    mu = cfg.step_size * np.stack([p[:, 4] - p[:, 3], p[:, 1] - p[:, 2]], axis=1)
    while len(seen) < 2:
        env.step(0)
        loud = bool(env.loud[0])
        if loud in seen:
            continue
        seen.add(loud)
        states, _, withheld = sample_futures(env, np.random.default_rng(9), k, 1)
        blocked = np.isnan(withheld[:, 0]).mean()
        want = 0.92 if loud else 0.02
        assert abs(blocked - want) < 4 * np.sqrt(want * (1 - want) / k), loud
        moved = states[:, 0].reshape(k, cfg.num_users, 2) - env.user_positions
        expected = 0.6 * env.velocity + 0.4 * mu
        error = np.abs(moved.mean(axis=0) - expected) / (moved.std(axis=0) / np.sqrt(k))
        assert error.max() < 4


def test_fit_key_holds_the_memory_options_and_keeps_the_keys_from_before_them() -> None:
    """Each memory option off its default gives another fit; at the defaults the key is the
    one computed before the options (and ``frame_stack``) existed (SHA-256 over the other
    fields), so cached fits stay valid. ``frame_stack`` never enters the key: the rule does
    not read the observation."""
    import hashlib

    from dnt_rllib.config import MEMORY_FIELDS
    from dnt_rllib.policies.threshold import FIT_VERSION, fit_key

    cfg = SystemConfig(twin="hold")
    later = (*MEMORY_FIELDS, "twin_cache_dir", "frame_stack")
    before = {k: v for k, v in cfg.to_dict().items() if k not in later}
    blob = json.dumps({"config": before, "version": FIT_VERSION}, sort_keys=True)
    assert fit_key(cfg) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    changed = {"interference_model": "markov", "interference_loud_share": 0.5,
               "interference_loud_ratio": 2.0, "interference_memory": 0.5,
               "mobility_model": "gauss_markov", "mobility_memory": 0.5}  # fmt: skip
    assert set(changed) == set(MEMORY_FIELDS)
    keys = {fit_key(cfg.replace(**{name: value})) for name, value in changed.items()}
    assert len(keys) == len(changed) and fit_key(cfg) not in keys
    assert fit_key(cfg.replace(frame_stack=3)) == fit_key(cfg)


def test_ceiling_check_finds_no_shortfall_where_the_dp_is_exact(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the hold twin: the DP is the best of every schedule, so all 2^L replays are ≤ it
    cfg = SystemConfig(twin="hold", mobility_model="gauss_markov", num_users=3, num_rbs=3)
    gap = shortfalls(HoldLastTwin(), record_tapes(cfg, range(4)), 10, cfg.epsilon, 3)
    assert np.abs(gap).max() < 1e-9
    # the velocity twin reads values the DP's key does not hold: never above the best
    assert shortfalls(VelocityTwin(), record_tapes(cfg, range(4)), 10, cfg.epsilon, 3).min() > -1e-9
    assert ceiling_check_main(["--slots", "40"]) == 2
    assert capsys.readouterr().err == "error: --slots = 40: must be an integer in [1, 16]\n"


def test_many_rules_replay_at_once_as_one_at_a_time_and_the_fit_reports_its_rule() -> None:
    """Three (a, b) in one batched replay each equal that rule played alone in the env, and
    the fit's tuning return is its rule's mean return played in the env on those seeds."""
    cfg = SystemConfig(twin="hold", episode_length=10)
    env = DNTSyncEnv(cfg)
    seeds = range(900, 912)
    a, b = np.array([0.5, 1.0, 3.0]), np.array([-1.0, 0.0, 0.5])
    replayed = rule_returns(env.twin, record_tapes(cfg, seeds), cfg, a, b)
    played = [
        run_policy(env, ThresholdRule(x, y), "rule", seeds).returns
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(replayed, played, rtol=0, atol=1e-9)
    assert len({round(float(r.mean()), 6) for r in replayed}) == 3  # three different rules
    fit = threshold_module.fit_threshold(cfg, env.twin, seeds)
    rule = run_policy(env, fit.rule, "fit", seeds)
    assert fit.tuning_return == pytest.approx(rule.mean_return, abs=1e-9)


def test_batched_replay_never_syncs_where_no_rb_meets_gamma() -> None:
    """ε = 0.5, γ = 0.02: some slots have no feasible RB. Each rule replayed on the tapes
    equals it played in the env, where a slot without a feasible RB cannot sync — with
    b = −10⁶ a rule that wants every sync, and greedy (1, 0)."""
    cfg = SystemConfig(twin="hold", epsilon=0.5, delay_bound=0.02, episode_length=15)
    env = DNTSyncEnv(cfg)
    seeds = range(12)
    tapes = record_tapes(cfg, seeds)
    assert not tapes.feasible.all()
    a, b = np.array([1.0, 2.5, 1.0]), np.array([0.0, 0.3, -1e6])
    replayed = rule_returns(env.twin, tapes, cfg, a, b)
    played = [
        run_policy(env, ThresholdRule(x, y), "rule", seeds).returns
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(replayed, played, rtol=0, atol=1e-9)


def test_free_sync_is_epsilon_times_every_slots_sum_rate_with_every_rb() -> None:
    """ε Σ_t Σc with every RB, summed by hand over an episode stepped without syncs (whose
    slots then allot every RB); the evaluation's ``free_sync`` row holds the same."""
    cfg = SystemConfig(twin="hold", episode_length=6, epsilon=0.7)
    env = DNTSyncEnv(cfg)
    seeds = range(3, 5)
    by_hand, per_slot = [], []
    for seed in seeds:
        env.reset(seed=seed)
        rates = [env.step(0)[4]["sum_rate"] for _ in range(6)]
        by_hand.append(0.7 * sum(rates))
        per_slot += rates
    policies = {"never": baseline_policies([])["never"], "ceiling": CeilingPolicy(env)}
    free = evaluate_policies(env, policies, seeds).by_name()["free_sync"]
    np.testing.assert_allclose(free.returns, by_hand, rtol=1e-12)
    assert free.sum_rate == pytest.approx(np.mean(per_slot), rel=1e-12)


def plan_by_hand(
    env: DNTSyncEnv, rule: ThresholdRule, samples: int, rng: np.random.Generator
) -> int:
    """The lookahead planner written out slot by slot: the same K futures for both branches,
    the sync branch's DNT keeping s_t and the other ŝ_t (eq. 4), each then played with the
    rule; sync iff the sync branch's mean return is higher."""
    cfg = env.config
    eps, weight = cfg.epsilon, (1.0 - cfg.epsilon) / cfg.num_users
    rb = env.paper_sync_rb()
    if rb < 0:
        return 0
    rates = env.rate_matrix()
    state, prediction = env.user_positions.ravel(), env.twin_prediction
    gap = float(np.sum((state - prediction) ** 2))
    value = {True: eps * allocate(rates, rb)[1], False: eps * allocate(rates)[1] - weight * gap}
    left = cfg.episode_length - env.slot - 1
    if left > 0:
        states, rate_free, rate_sync = sample_futures(env, rng, samples, left)
        for sync in (True, False):
            total = 0.0
            for k in range(samples):
                window = [*env.dnt_history[1:], state if sync else prediction]
                for t in range(left):
                    guess = env.twin.predict(np.array(window)[None])[0]
                    penalty = weight * float(np.sum((states[k, t] - guess) ** 2))
                    feasible = not np.isnan(rate_sync[k, t])
                    cost = eps * (rate_free[k, t] - (rate_sync[k, t] if feasible else 0.0))
                    if feasible and rule.a * penalty >= cost + rule.b:
                        total += eps * rate_sync[k, t]
                        window = [*window[1:], states[k, t]]
                    else:
                        total += eps * rate_free[k, t] - penalty
                        window = [*window[1:], guess]
            value[sync] += total / samples
    return 1 if value[True] > value[False] else 0


def test_lookahead_is_the_two_branch_comparison_on_the_same_futures() -> None:
    """Every decision equals :func:`plan_by_hand` drawing from the planner's own stream."""
    cfg = SystemConfig(twin="hold", episode_length=8)
    env = DNTSyncEnv(cfg)
    rule = ThresholdRule(2.0, 0.3)
    look = LookaheadPolicy(rule, 3)
    decisions = []
    for seed in range(4):
        look.start_episode(seed)
        rng = np.random.default_rng([seed, STREAM])
        obs, _ = env.reset(seed=seed)
        for _ in range(cfg.episode_length):
            want = plan_by_hand(env, rule, 3, rng)
            assert look(env, obs) == want, (seed, env.slot)
            decisions.append(want)
            obs = env.step(want)[0]
    assert 0 < sum(decisions) < len(decisions)  # the test decides something


def test_lookahead_whose_rule_always_syncs_is_greedy() -> None:
    """A rule that syncs every later slot (b = −10⁶, every RB feasible) scores ε Σc withheld
    there whatever the DNT holds, so on the same futures the branches differ by this slot
    alone: greedy's one-slot test."""
    cfg = SystemConfig(twin="hold", episode_length=6, epsilon=0.9)
    env = DNTSyncEnv(cfg)
    seeds = range(30)
    assert record_tapes(cfg, seeds).feasible.all()
    look = run_policy(env, LookaheadPolicy(ThresholdRule(1.0, -1e6), 2), "lookahead", seeds)
    greedy = run_policy(env, baseline_policies([])["greedy"], "greedy", seeds)
    assert look.returns == greedy.returns
    assert 0 < greedy.sync_fraction < 1  # the test decides something


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("saving", "synced"), [(0.5, 1), (1 / 12, 0)])
def test_lookahead_syncs_a_dnt_a_fixed_gap_off_when_the_slots_left_repay_it(
    seed: int, saving: float, synced: int
) -> None:
    """Users who never move (stay probability 1), the hold twin's ŝ_0 a fixed gap g off s_0,
    a rule that never syncs later: a sync now saves (1 − ε)/U g in this slot and in each of
    the L = T − 1 left, so the planner syncs iff (L + 1)(1 − ε)/U g > ε (Σc free − Σc
    withheld). g makes the one-slot saving ``saving`` × that cost: 6 × 0.5 > 1 (sync, which
    greedy would not), 6 / 12 < 1 (no sync)."""
    cfg = SystemConfig(twin="hold", episode_length=6, stay_prob_range=(1.0, 1.0))
    env = DNTSyncEnv(cfg)
    look = LookaheadPolicy(ThresholdRule(1.0, 1e6), 2)
    weight = (1.0 - cfg.epsilon) / cfg.num_users
    env.reset(seed=seed)
    look.start_episode(seed)
    rates, rb = env.rate_matrix(), env.paper_sync_rb()
    cost = cfg.epsilon * (allocate(rates)[1] - allocate(rates, rb)[1])
    assert rb >= 0 and cost > 0
    state = env.user_positions.ravel().copy()
    off = state.copy()
    off[0] += np.sqrt(saving * cost / weight)  # g = saving · cost / weight
    env._history[0, -1] = off  # the hold twin's ŝ_0
    obs = env._observe()
    np.testing.assert_array_equal(env.twin_prediction, off)
    assert look(env, obs) == synced
    env.step(0)
    np.testing.assert_array_equal(env.user_positions.ravel(), state)  # nobody moved
