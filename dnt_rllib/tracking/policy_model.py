"""A trained policy as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(obs)``.

``tune`` logs each scored checkpoint's deterministic policy (its argmax action) as the
model ``policy`` of its trial's MLflow run (the run's Models tab, and the experiment's,
list it). The model holds the two
files a checkpoint's evaluation reads (:data:`~dnt_rllib.names.TRIAL_FILE` and
:data:`~dnt_rllib.names.WEIGHTS_FILE`: JSON and tensors) and rebuilds the module
from them, as ``evaluate --checkpoint`` does; what MLflow pickles is only the stateless
:class:`GreedyPolicyModel` (a reference to this class). ``predict``
takes observations (B, dim) float32 and returns the actions (B,) int64 that
``evaluate --checkpoint`` plays. A recurrent policy (``use_lstm``) is not logged: its action
depends on the episode so far, which a table of observations does not carry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import Schema, TensorSpec

from dnt_rllib.names import MODEL_NAME, TRIAL_FILE, WEIGHTS_FILE
from dnt_rllib.validation import ConfigError

#: The artifact that holds the checkpoint's trial file and weights.
CHECKPOINT_ARTIFACT = "checkpoint"


class GreedyPolicyModel(mlflow.pyfunc.PythonModel):
    """The deterministic policy of a trial checkpoint (module docstring)."""

    def load_context(self, context: Any) -> None:
        from dnt_rllib.trial.trained_policy import load_module

        _, self.module, _ = load_module(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> np.ndarray:
        from dnt_rllib.trial.trained_policy import greedy_actions

        values = getattr(model_input, "values", model_input)  # a DataFrame or an array
        return greedy_actions(self.module, np.asarray(values, dtype=np.float32))


def signature(obs_dim: int) -> ModelSignature:
    """Observations (B, ``obs_dim``) float32 → actions (B,) int64."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, obs_dim))]),
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,))]),
    )


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``uri`` for the block only. ``mlflow.set_tracking_uri``
    also exports ``MLFLOW_TRACKING_URI`` to every later subprocess (a ``tune`` run started
    after it would track there): the variable and the global URI are restored after."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None unsets the variable


def log_policy_model(uri: str, run_id: str, checkpoint: str | Path) -> str:
    """Log ``checkpoint``'s deterministic policy as the model :data:`MODEL_NAME` of MLflow run
    ``run_id``; its ``models:/`` URI. A recurrent policy is refused in one line."""
    from dnt_rllib.env.observation import observation_dim
    from dnt_rllib.trial.trained_policy import load_module

    spec, _, config = load_module(checkpoint)  # the checks evaluate makes, before logging
    if spec.model.get("use_lstm"):
        raise ConfigError(
            f"{checkpoint}: a recurrent policy (model.use_lstm) is not logged as an MLflow "
            "model: its action depends on the episode so far; evaluate --checkpoint plays it"
        )
    with tempfile.TemporaryDirectory() as folder:
        for name in (TRIAL_FILE, WEIGHTS_FILE):
            shutil.copy2(Path(checkpoint) / name, Path(folder) / name)
        with tracking_uri(uri), mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=GreedyPolicyModel(),
                artifacts={CHECKPOINT_ARTIFACT: folder},
                signature=signature(observation_dim(config)),
                pip_requirements=["dnt_rllib"],
            )
    return info.model_uri
