"""PPO (with and without an LSTM) and DQN with an LSTM through a real trial: each builds,
trains one iteration on two envs, plays its learning curve and final evaluation greedily,
and the checkpoint it writes, read back by ``evaluate --checkpoint``, scores the same
returns on the same episodes, episode by episode.

``train_trial`` runs as in Tune, with Tune's calls (checkpoint, report) and the threshold
fit (minutes) stood in for, as in ``test_frame_stack_training.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dnt_rllib.evaluate as evaluate_cli
from dnt_rllib import SystemConfig
from dnt_rllib.names import EVALUATION_FILE
from dnt_rllib.rllib_ext.recurrent_dqn import RecurrentDQNTorchRLModule
from dnt_rllib.tracking.mlflow_runs import trial_params as mlflow_params
from dnt_rllib.trial.spec import TrialSpec
from tests.trial.test_frame_stack_training import (
    FIT,
    local_ray,  # noqa: F401 (autouse: a local Ray)
    run_trial,
    tiny_trial,
)

CONFIG = SystemConfig(twin="hold", num_users=3, num_rbs=2, episode_length=6, history=3)
LSTM = {"fcnet_hiddens": [8], "use_lstm": True, "lstm_cell_size": 4, "max_seq_len": 4}
CASES = {
    "PPO": ({"fcnet_hiddens": [8]}, {"train_batch_size_per_learner": 24, "minibatch_size": 8,
                                     "num_epochs": 1}),
    "PPO+LSTM": (LSTM, {"train_batch_size_per_learner": 24, "minibatch_size": 8,
                        "num_epochs": 1}),
    # a handful of updates in the iteration's 1,000 env steps: one per 80 sampled
    "DQN+LSTM": (LSTM, {"num_steps_sampled_before_learning_starts": 12,
                        "train_batch_size_per_learner": 8, "burn_in_len": 1,
                        "training_intensity": 0.05}),
}  # fmt: skip
LOSS = {"PPO": "learner/policy_loss", "DQN": "learner/qf_loss"}


def params_for(case: str) -> dict[str, Any]:
    model, training = CASES[case]
    return tiny_trial(CONFIG, case.split("+")[0], replay="rllib", training=training, model=model)


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_and_ppo_trials_train_and_their_checkpoints_evaluate_the_same(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = params_for(case)
    algorithm, lstm = params["algorithm"], "LSTM" in case
    algo, report = run_trial(params, tmp_path / "checkpoint", monkeypatch)
    module = algo.get_module()
    assert module.is_stateful() == lstm
    assert (type(module) is RecurrentDQNTorchRLModule) == (algorithm == "DQN")
    assert report["iteration"] == 1 and np.isfinite(report["curve/diff_threshold"])
    assert np.isfinite(report[LOSS[algorithm]])  # the learner did update
    # MLflow: this algorithm's settings only, and no replay on a PPO run
    logged = mlflow_params(TrialSpec.from_params(params))
    assert logged["algorithm"] == algorithm
    assert logged.get("model.use_lstm", "False") == str(lstm)
    assert ("training.clip_param" in logged) == (algorithm == "PPO")
    assert ("replay.kind" in logged) == (algorithm == "DQN")
    assert not {"training.actor_lr", "training.initial_alpha"} & logged.keys()

    # evaluate --checkpoint: the module rebuilt from dnt_trial.json, its greedy policy (the
    # state carried through each episode) on the trial's evaluation episodes
    record = json.loads((tmp_path / "checkpoint" / EVALUATION_FILE).read_text())
    trial = next(s for s in record["summaries"] if s["policy"] == "policy")
    monkeypatch.setattr(evaluate_cli, "load_or_fit", lambda config, twin: FIT)
    out = tmp_path / "eval.json"
    argv = ["--checkpoint", str(tmp_path / "checkpoint"), "--episodes", "3", "--seed",
            "10000", "--periods", "2-3", "--no-progress", "--json", str(out)]  # fmt: skip
    assert evaluate_cli.main(argv) == 0
    summaries = json.loads(out.read_text())["summaries"]
    again = next(s for s in summaries if s["policy"] == f"{algorithm} (seed 0)")
    assert again["returns"] == trial["returns"]
    assert report["eval/return"] == pytest.approx(np.mean(trial["returns"]))
