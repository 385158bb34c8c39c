"""A trial checkpoint as an MLflow model: ``predict`` gives the actions ``evaluate`` plays."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.names import MODEL_NAME, TRIAL_FILE, WEIGHTS_FILE
from dnt_rllib.tracking.policy_model import log_policy_model, tracking_uri
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.trial.trained_policy import load_policy
from dnt_rllib.validation import ConfigError
from tests.trial.test_trained_policy import make_checkpoint


def observations(ckpt: Path, count: int = 200) -> tuple[DNTSyncEnv, np.ndarray]:
    """The env of the checkpoint, ``count`` observations it returns (random actions) and as
    many drawn uniformly from its observation box (an untrained net's action varies more
    over those)."""
    params = json.loads((ckpt / TRIAL_FILE).read_text())
    env = DNTSyncEnv(SystemConfig.from_dict(params["env"]))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(count):
        rows.append(obs)
        obs, _, done, truncated, _ = env.step(int(rng.integers(2)))
        if done or truncated:
            obs, _ = env.reset()
    rows += list(rng.uniform(-1.0, 1.0, size=(count, len(obs))))
    return env, np.asarray(rows, dtype=np.float32)


def scramble(ckpt: Path) -> None:
    """Standard-normal weights: an initialised net picks one action nearly everywhere, and
    a test whose policy never varies could not tell a right action from a constant."""
    generator = torch.Generator().manual_seed(0)
    state = torch.load(ckpt / WEIGHTS_FILE, weights_only=True)
    torch.save({k: torch.randn(v.shape, generator=generator) for k, v in state.items()},
               ckpt / WEIGHTS_FILE)  # fmt: skip


def store(tmp_path: Path) -> tuple[str, str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("models")
    return uri, experiment, client.create_run(experiment).info.run_id


@pytest.mark.parametrize("algorithm", ["SAC", "DQN", "PPO"])
def test_the_logged_model_predicts_the_actions_evaluate_plays(
    tmp_path: Path, algorithm: str
) -> None:
    ckpt = make_checkpoint(tmp_path / "checkpoint_000001", algorithm)
    scramble(ckpt)
    uri, experiment, run_id = store(tmp_path)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    model_uri = log_policy_model(uri, run_id, ckpt)
    # nothing leaks to later processes: a tune started after it tracks where it is told
    assert "MLFLOW_TRACKING_URI" not in os.environ
    env, obs = observations(ckpt)
    with tracking_uri(uri):  # a models:/ URI is looked up in the store it was logged to
        actions = mlflow.pyfunc.load_model(model_uri).predict(obs)
        info = mlflow.models.get_model_info(model_uri)
    _, policy, _ = load_policy(ckpt)  # what evaluate --checkpoint plays, row by row
    expected = [policy(env, row) for row in obs]
    assert actions.dtype == np.int64 and actions.shape == (len(obs),)
    assert actions.tolist() == expected
    assert set(expected) == {0, 1}  # both actions occur: the comparison can fail
    # the experiment's Models tab lists it, from this run, with its signature
    models = mlflow.MlflowClient(uri).search_logged_models(experiment_ids=[experiment])
    assert [(m.name, m.source_run_id) for m in models] == [(MODEL_NAME, run_id)]
    assert tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, obs.shape[1])


def test_a_recurrent_policy_is_refused_in_one_line(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "checkpoint_000001", "DQN")
    params = json.loads((ckpt / TRIAL_FILE).read_text())
    params["model"] = {**params["model"], "use_lstm": True}
    params["replay"] = {"kind": "rllib"}
    params["learner"] = {"kind": "rllib"}
    (ckpt / TRIAL_FILE).write_text(json.dumps(params))
    from dnt_rllib.trial.trained_policy import build_module, save_weights

    save_weights(build_module(TrialSpec.from_params(params)), ckpt)
    uri, experiment, run_id = store(tmp_path)
    with pytest.raises(ConfigError) as err:
        log_policy_model(uri, run_id, ckpt)
    assert "recurrent policy (model.use_lstm) is not logged as an MLflow model" in str(err.value)
    assert "\n" not in str(err.value)
    assert not mlflow.MlflowClient(uri).search_logged_models(experiment_ids=[experiment])
