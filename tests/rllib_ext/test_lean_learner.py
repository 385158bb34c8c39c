"""The lean learner (``learner: {kind: lean}``) against RLlib's, from the same state.

Both learners are built from the shipped tuned YAMLs (SAC: twin Q, entropy tuning, n-step
3; DQN: double Q, dueling, n-step 3), the lean one is given the RLlib one's weights and
optimiser state, and both are updated on the same batches: the losses and every weight
(online, target, log α) and Adam moment must agree. The expected values are RLlib's own
learner, a second implementation of the same update.
"""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import ALL_MODULES, NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from dnt_rllib.env.observation import observation_dim
from dnt_rllib.experiment.schema import load_experiment
from dnt_rllib.rllib_ext.lean_learner import LeanDQNLearner, LeanSACLearner, _mlp_chains
from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
from dnt_rllib.trial.rllib_config import build_algorithm_config

#: One update: float32 arithmetic in another order (one backward, fused Adam).
ONE_UPDATE = {"rtol": 1e-5, "atol": 1e-6}
#: After 100 updates, the largest relative (Frobenius) difference of any one tensor.
#: Rounding alone stays at 1e-7 while no ReLU changes side (DQN here); in SAC's twin critic a
#: unit at its kink changes side at update 6 in one learner and not in the other, and Adam,
#: which normalises each gradient, turns that into O(lr) steps: 2 % after 100 updates.
HUNDRED_UPDATES = 0.05


def learners(yaml: str, algorithm: str) -> tuple[object, object, int, int]:
    """(RLlib's learner, the lean one with RLlib's state, obs dim, batch size)."""
    exp = load_experiment(f"tune_configs/{yaml}")
    spec = exp.trial_spec(algorithm)
    dim = observation_dim(exp.env)
    spaces = {
        DEFAULT_MODULE_ID: (
            gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32),
            gym.spaces.Discrete(2),
        )
    }
    built = []
    for kind in ("rllib", "lean"):
        torch.manual_seed(0)
        config = build_algorithm_config(replace(spec, learner=kind), RLlibDNTEnv)
        built.append(config.build_learner(spaces=spaces))
    rllib, lean = built
    lean.set_state(rllib.get_state())
    return rllib, lean, dim, int(config.train_batch_size_per_learner)


def batch(rng: np.random.Generator, dim: int, size: int) -> MultiAgentBatch:
    """Replay-ring columns with returns of this env's size and some terminal steps."""
    columns = {
        "obs": rng.normal(size=(size, dim)).astype(np.float32),
        "new_obs": rng.normal(size=(size, dim)).astype(np.float32),
        "actions": rng.integers(2, size=size),
        "rewards": rng.normal(0.0, 5.0, size=size).astype(np.float32),
        "terminateds": rng.random(size) < 0.1,
        "truncateds": np.zeros(size, bool),
        "n_step": rng.integers(1, 4, size=size),
        "weights": np.ones(size, np.float32),
    }
    return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, size)


def assert_close_weights(rllib: object, lean: object, relative: float) -> None:
    """Every weight tensor (online and target networks) within ``relative`` of RLlib's."""
    a = rllib.module[DEFAULT_MODULE_ID].state_dict()
    b = lean.module[DEFAULT_MODULE_ID].state_dict()
    assert a.keys() == b.keys()
    for key in a:
        gap = float((b[key] - a[key]).norm() / a[key].norm())
        assert gap <= relative, f"module weight {key}: relative difference {gap:.2e}"


def assert_same_state(rllib: object, lean: object, tol: dict[str, float]) -> None:
    """Every weight of the module (online and target networks) and every Adam moment."""
    mine, theirs = lean.module[DEFAULT_MODULE_ID], rllib.module[DEFAULT_MODULE_ID]
    a, b = theirs.state_dict(), mine.state_dict()
    assert a.keys() == b.keys() and len(a) >= 8
    assert any("target" in k for k in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], **tol, msg=f"module weight {key}")
    if hasattr(rllib, "curr_log_alpha"):
        torch.testing.assert_close(
            lean.curr_log_alpha[DEFAULT_MODULE_ID], rllib.curr_log_alpha[DEFAULT_MODULE_ID], **tol
        )
    for name, optim in rllib._named_optimizers.items():
        theirs_state = optim.state_dict()["state"]
        mine_state = lean._named_optimizers[name].state_dict()["state"]
        assert theirs_state.keys() == mine_state.keys()
        for index, moments in theirs_state.items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(
                    mine_state[index][key].float(), moments[key].float(), **tol,
                    msg=f"optimizer {name} tensor {index} {key}",
                )  # fmt: skip


def update(learner: object, data: MultiAgentBatch, step: int) -> dict:
    return learner.update(batch=data, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: step})


@pytest.mark.parametrize(
    ("yaml", "algorithm", "lean_class"),
    [("sac_tuned.yaml", "SAC", LeanSACLearner), ("dqn_tuned.yaml", "DQN", LeanDQNLearner)],
)
def test_lean_update_equals_rllib_update(yaml: str, algorithm: str, lean_class: type) -> None:
    rllib, lean, dim, size = learners(yaml, algorithm)
    assert type(lean) is lean_class and not isinstance(rllib, lean_class)
    assert_same_state(rllib, lean, {"rtol": 0.0, "atol": 0.0})
    rng = np.random.default_rng(7)
    first = batch(rng, dim, size)
    before = {k: v.clone() for k, v in rllib.module[DEFAULT_MODULE_ID].state_dict().items()}

    # the losses, from the same forward pass of the same weights
    tensors = {DEFAULT_MODULE_ID: rllib._convert_batch_type(first)[DEFAULT_MODULE_ID]}
    fwd = {
        DEFAULT_MODULE_ID: rllib.module[DEFAULT_MODULE_ID]._forward_train(
            tensors[DEFAULT_MODULE_ID]
        )
    }
    lean._since_reduce = lean._reduce_every  # this update's statistics are due
    theirs = rllib.compute_losses(fwd_out=fwd, batch=tensors)[DEFAULT_MODULE_ID]
    mine = lean.compute_losses(fwd_out=fwd, batch=tensors)[DEFAULT_MODULE_ID]
    torch.testing.assert_close(mine, theirs, **ONE_UPDATE)
    for key in ("qf_loss", "policy_loss", "alpha_loss", "qf_twin_loss", "qf_mean", "td_error_mean"):
        if key in rllib.metrics.stats.get(DEFAULT_MODULE_ID, {}):
            mine_stat = float(lean.metrics.peek((DEFAULT_MODULE_ID, key)).detach())
            theirs_stat = float(rllib.metrics.peek((DEFAULT_MODULE_ID, key)).detach())
            assert mine_stat == pytest.approx(theirs_stat, rel=1e-5, abs=1e-6), key
    if algorithm == "SAC":
        rllib._temp_losses.clear()
    lean._since_reduce = 0

    # one update from the same state: the same new weights, targets and Adam moments
    update(rllib, first, 1000)
    update(lean, first, 1000)
    after = rllib.module[DEFAULT_MODULE_ID].state_dict()
    moved = [k for k in after if not torch.equal(after[k], before[k])]
    assert any("target" in k for k in moved) and any("target" not in k for k in moved)
    assert_same_state(rllib, lean, ONE_UPDATE)

    # 100 updates on 100 batches: still the same learner (both report the 100th's losses)
    for i in range(1, 100):
        data = batch(rng, dim, size)
        theirs_result = update(rllib, data, 1000 + 8 * i)
        mine_result = update(lean, data, 1000 + 8 * i)
    assert_close_weights(rllib, lean, HUNDRED_UPDATES)
    assert ALL_MODULES in mine_result, "the lean learner reduces every 10th update (the 100th)"
    losses = [k for k in theirs_result[DEFAULT_MODULE_ID] if k.endswith("_loss")]
    assert "qf_loss" in losses
    for key in losses:
        theirs_loss = float(theirs_result[DEFAULT_MODULE_ID][key].peek())
        mine_loss = float(mine_result[DEFAULT_MODULE_ID][key].peek())
        assert mine_loss == pytest.approx(theirs_loss, rel=HUNDRED_UPDATES, abs=1e-3), key


def test_lean_learner_keeps_fused_adam_and_reduces_every_tenth_update() -> None:
    rllib, lean, dim, size = learners("sac_tuned.yaml", "SAC")
    rng = np.random.default_rng(3)
    results = [update(lean, batch(rng, dim, size), 1000 + i) for i in range(20)]
    assert [ALL_MODULES in r for r in results] == [i % 10 == 9 for i in range(20)]
    # every result names the module: RLlib's own training step (replay.kind: rllib) syncs
    # the weights of the modules the learner's result names, after every update
    assert all(DEFAULT_MODULE_ID in r for r in results)
    MetricsLogger().aggregate(results[:9], key="learners")  # what the algorithm does
    # each reduction hands on the steps trained since the last (the algorithm sums them):
    # no update is lost between two reductions
    key = "num_module_steps_trained_lifetime"
    assert sum(r[ALL_MODULES][key].peek() for r in results if ALL_MODULES in r) == 20 * size
    lean.set_state(rllib.get_state())  # a checkpoint restored into the lean learner
    for optim in lean._named_optimizers.values():
        assert all(g["fused"] and not g["foreach"] for g in optim.param_groups)


def test_lean_sac_forward_equals_the_modules_forward() -> None:
    """The forward through the networks' own layers gives RLlib module's outputs."""
    _, lean, dim, size = learners("sac_tuned.yaml", "SAC")
    module = lean.module[DEFAULT_MODULE_ID]
    assert _mlp_chains(module) is not None  # the SAC modules this project builds take it
    data = batch(np.random.default_rng(5), dim, size)
    tensors = lean._convert_batch_type(data)[DEFAULT_MODULE_ID]
    theirs = module._forward_train(tensors)
    mine = lean.forward_train(module, tensors)
    assert mine.keys() == theirs.keys()
    for key in theirs:
        torch.testing.assert_close(mine[key], theirs[key], rtol=0.0, atol=0.0, msg=key)
    assert not mine["action_probs_next"].requires_grad and mine["action_probs"].requires_grad


def test_the_lean_learner_is_the_default_where_it_applies() -> None:
    """An experiment without a learner section: lean for SAC and DQN without an LSTM on at
    most one learner, RLlib's for DQN with an LSTM, two learner actors, or PPO; a trial
    saved before the section keeps RLlib's."""
    from dnt_rllib.experiment.schema import parse_experiment
    from dnt_rllib.trial.spec import TrialSpec

    def kind(raw: dict) -> str:
        return parse_experiment({"env": {"twin": "hold"}, **raw}).trial_spec().learner

    assert kind({"algorithm": "SAC"}) == "lean" and kind({"algorithm": "DQN"}) == "lean"
    assert kind({"algorithm": "SAC", "resources": {"num_learners": 1}}) == "lean"
    lstm = {"algorithm": "DQN", "replay": {"kind": "rllib"}, "model": {"use_lstm": True}}
    assert kind(lstm) == "rllib"
    assert kind({"algorithm": "DQN", "resources": {"num_learners": 2}}) == "rllib"
    assert kind({"algorithm": "PPO"}) == "rllib"
    assert kind({"algorithm": "SAC", "learner": {"kind": "rllib"}}) == "rllib"
    saved = parse_experiment({"algorithm": "SAC"}).trial_spec().to_params()
    del saved["learner"]
    assert TrialSpec.from_params(saved).learner == "rllib"
