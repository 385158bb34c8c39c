"""A trained RLlib policy as a plain `Policy` (greedy action), from a module or a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.baselines import Policy
from dnt_rllib.validation import ConfigError

TRIAL_FILE = "dnt_trial.json"  # trial parameters saved beside the algorithm state
ALGORITHM_DIR = "algorithm"
MODULE_PATH = ("learner_group", "learner", "rl_module", "default_policy")


def greedy_policy(module: Any) -> Policy:
    """argmax of the module's action logits (SAC) or Q-values (DQN), one observation at a time."""
    from ray.rllib.core import Columns

    def policy(env: DNTSyncEnv, obs: np.ndarray) -> int:
        batch = {Columns.OBS: torch.from_numpy(np.asarray(obs, dtype=np.float32)[None])}
        with torch.no_grad():
            out = module.forward_inference(batch)
        if Columns.ACTIONS in out:
            return int(out[Columns.ACTIONS][0])
        return int(torch.argmax(out[Columns.ACTION_DIST_INPUTS], dim=-1)[0])

    return policy


def load_policy(
    checkpoint: str | Path, config: SystemConfig | None = None
) -> tuple[str, Policy, SystemConfig]:
    """(name, greedy policy, the env config it was trained on) from a trial checkpoint.

    ``checkpoint`` is a Tune checkpoint folder written by this pipeline (it holds
    ``dnt_trial.json`` and ``algorithm/``). ``config`` overrides the stored env config; it
    must give the same observation and action spaces.
    """
    from ray.rllib.core.rl_module.rl_module import RLModule

    root = Path(checkpoint)
    trial_file = root / TRIAL_FILE
    if not trial_file.is_file():
        raise ConfigError(f"--checkpoint {root}: not a dnt_rllib checkpoint (no {TRIAL_FILE})")
    params = json.loads(trial_file.read_text())
    trained = SystemConfig.from_dict(params["env"])
    config = config or trained
    module = RLModule.from_checkpoint(root / ALGORITHM_DIR / Path(*MODULE_PATH))
    module.eval()
    env = DNTSyncEnv(config.replace(twin="hold"))
    expected = getattr(module, "observation_space", None)
    if expected is not None and expected.shape != env.observation_space.shape:
        raise ConfigError(
            f"--config: observation shape {env.observation_space.shape} does not match the "
            f"checkpoint's {expected.shape}"
        )
    return f"{params['algorithm']} (seed {params['seed']})", greedy_policy(module), config
