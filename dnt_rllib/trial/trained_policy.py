"""A trained RLlib policy as a plain `Policy` (greedy action), from a module or a checkpoint.

Loading a checkpoint for evaluation never unpickles anything: a trial saves the policy
module's weights as a plain tensor file (:data:`WEIGHTS_FILE`, read with
``torch.load(weights_only=True)``) beside its parameters (:data:`TRIAL_FILE`, JSON); the
module is rebuilt from those parameters and only the weights are loaded into it. RLlib's
own checkpoint (``algorithm/``, pickles) is read only by ``tune --resume``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnt_rllib.common import first_line
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.names import TRIAL_FILE, WEIGHTS_FILE
from dnt_rllib.policies.baselines import Policy
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.validation import ConfigError, key_text, short

#: Keys of a trial's parameters that rebuilding its module needs.
TRIAL_KEYS = ("algorithm", "seed", "env", "training", "model")


def greedy_policy(module: Any) -> Policy:
    """The module's greedy action, one observation at a time: argmax of its action logits
    (SAC, PPO) or Q-values (DQN). A recurrent module (``use_lstm``) gets
    :class:`RecurrentGreedy`, which carries its state from slot to slot."""
    if module.is_stateful():
        return RecurrentGreedy(module)
    from ray.rllib.core import Columns

    def policy(env: DNTSyncEnv, obs: np.ndarray) -> int:
        batch = {Columns.OBS: torch.from_numpy(np.asarray(obs, dtype=np.float32)[None])}
        with torch.no_grad():
            out = module.forward_inference(batch)
        return _greedy_action(out)

    return policy


def _greedy_action(out: dict[str, Any]) -> int:
    """The action of the (first) row of a module's inference output."""
    return int(_greedy_rows(out)[0])


def _greedy_rows(out: dict[str, Any]) -> np.ndarray:
    """The greedy action (int64) of every row of a module's inference output: its actions
    (DQN), else the argmax of its action logits, (B, actions) or (B, 1, actions) with a
    state."""
    from ray.rllib.core import Columns

    if Columns.ACTIONS in out:
        return out[Columns.ACTIONS].reshape(-1).numpy().astype(np.int64)
    logits = out[Columns.ACTION_DIST_INPUTS]
    return torch.argmax(logits.reshape(-1, logits.shape[-1]), dim=-1).numpy().astype(np.int64)


class RecurrentGreedy:
    """The greedy action of a recurrent module, whose state runs through an episode: the
    module's initial state at the episode's first slot (``env.slot == 0``, whatever was
    played before), then each slot's output state as the next slot's input, as RLlib's env
    runners thread it. Call it once per slot, as :func:`dnt_rllib.scoring.run_policy`
    does."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.state: Any = None

    def initial_state(self) -> Any:
        """The module's initial state with a batch axis of 1 (as ``STATE_IN`` takes it)."""
        import tree  # dm-tree, RLlib's

        return tree.map_structure(lambda s: s[None], self.module.get_initial_state())

    def __call__(self, env: DNTSyncEnv, obs: np.ndarray) -> int:
        from ray.rllib.core import Columns

        if env.slot == 0 or self.state is None:
            self.state = self.initial_state()
        obs_bt = torch.from_numpy(np.asarray(obs, dtype=np.float32)[None, None])  # (B, T)
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: obs_bt,
                                                 Columns.STATE_IN: self.state})  # fmt: skip
        self.state = out[Columns.STATE_OUT]
        return _greedy_action(out)


def save_weights(module: Any, folder: str | Path) -> Path:
    """The module's weights as :data:`WEIGHTS_FILE` in ``folder`` (tensors only)."""
    path = Path(folder) / WEIGHTS_FILE
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, path)
    return path


def build_module(spec: TrialSpec) -> Any:
    """A fresh inference-only RLModule of the trial ``spec`` (random weights)."""
    from dnt_rllib.rllib_ext.quiet import quiet_ray_logs
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config

    quiet_ray_logs()
    env = DNTSyncEnv(spec.env.replace(twin="hold"))
    spaces = {"default_policy": (env.observation_space, env.action_space)}
    config = build_algorithm_config(spec, RLlibDNTEnv)
    return config.get_rl_module_spec(spaces=spaces, inference_only=True).build()


def read_trial(root: Path) -> TrialSpec:
    """The checked trial spec in ``root/dnt_trial.json`` (one-line ConfigError otherwise)."""
    from dnt_rllib.trial.settings import (
        ALGORITHMS,
        check_learner,
        check_model,
        check_set_model,
        check_together,
        check_training,
    )

    where = f"--checkpoint {root}: {TRIAL_FILE}"
    try:
        params = json.loads((root / TRIAL_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: must be a JSON object, got {type(params).__name__}")
    missing = [k for k in TRIAL_KEYS if k not in params]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}; needs {', '.join(TRIAL_KEYS)}")
    names = ", ".join(ALGORITHMS)
    if params["algorithm"] not in ALGORITHMS:
        raise ConfigError(f"{where}: algorithm = {short(params['algorithm'])}: must be {names}")
    if not isinstance(params["env"], dict) or not isinstance(params["training"], dict):
        raise ConfigError(f"{where}: env and training must be JSON objects")
    try:
        check_model(f"{TRIAL_FILE}.model", params["model"])
        for algo, values in params["training"].items():
            if algo not in ALGORITHMS or not isinstance(values, dict):
                raise ConfigError(f"training.{key_text(algo)}: must be settings of {names}")
            check_training(algo, f"{TRIAL_FILE}.training.{algo}", values)
        spec = TrialSpec.from_params(params)
        check_together(spec.algorithm, dict(spec.model), dict(spec.training), spec.replay)
        check_set_model(dict(spec.model), spec.env)
        check_learner(spec.algorithm, spec.learner, dict(spec.model),
                      spec.resources.num_learners)  # fmt: skip
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return spec


def check_weights_size(path: Path, module: Any, slack: int = 16 << 20) -> None:
    """Refuse a weights file that would unpack to more than 8 times the inference module's
    tensors (a trial may save its full module: SAC's five networks) plus ``slack`` bytes,
    before ``torch.load`` inflates it: a small deflated file can hold gigabytes.
    ``torch.save`` writes a zip archive; its entries' sizes are read from the central
    directory without unpacking any."""
    import zipfile

    expected = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    limit = 8 * expected + slack
    if path.stat().st_size > limit:
        raise ConfigError(
            f"--checkpoint {path}: {path.stat().st_size:,} bytes, more than the module's "
            f"weights need ({expected:,}); not this trial's weights file"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # not an archive: torch.load refuses it in one line
    if unpacked > limit:
        raise ConfigError(
            f"--checkpoint {path}: unpacks to {unpacked:,} bytes, more than the module's "
            f"weights need ({expected:,}); not this trial's weights file"
        )


def check_spaces(config: SystemConfig, trained: SystemConfig, size_free: bool = False) -> None:
    """Refuse an evaluation config whose observation or action space is not the trained one's,
    or whose observation has another layout (``observation_mode``, ``frame_stack``; for a
    set model also ``mobility_model`` and ``history``, which size a user and the globals):
    one line, naming the fields that set it. A ``size_free`` model (the set model) takes
    observations of any U and N."""
    layout = ("observation_mode", "frame_stack")
    if size_free:
        layout += ("mobility_model", "history")
    if any(getattr(config, f) != getattr(trained, f) for f in layout):
        mine, theirs = (", ".join(f"{f} = {getattr(c, f)}" for f in layout)
                        for c in (config, trained))  # fmt: skip
        raise ConfigError(f"--config: {mine} does not match the checkpoint's {theirs}")
    have, want = DNTSyncEnv.spaces(config), DNTSyncEnv.spaces(trained)
    if have[0].shape != want[0].shape and not size_free:
        raise ConfigError(
            f"--config: observation shape {have[0].shape} does not match the checkpoint's "
            f"{want[0].shape} (an MLP on a {trained.observation_mode!r} observation is sized "
            "by num_users and num_rbs; model.kind: set or a compact observation is not)"
        )
    if have[1] != want[1]:
        raise ConfigError(
            f"--config: action space {have[1]} (action_mode = {config.action_mode}, num_rbs = "
            f"{config.num_rbs}) does not match the checkpoint's {want[1]} (action_mode = "
            f"{trained.action_mode}, num_rbs = {trained.num_rbs})"
        )


def load_policy(
    checkpoint: str | Path, config: SystemConfig | None = None
) -> tuple[str, Policy, SystemConfig]:
    """(name, greedy policy, the env config it was trained on) from a trial checkpoint.

    ``checkpoint`` is a Tune checkpoint folder written by this pipeline (it holds
    ``dnt_trial.json`` and ``policy_weights.pt``). ``config`` overrides the stored env
    config; it must give the same observation and action spaces. Nothing in the folder is
    unpickled.
    """
    spec, module, config = load_module(checkpoint, config)
    return spec.name, greedy_policy(module), config


def load_module(
    checkpoint: str | Path, config: SystemConfig | None = None
) -> tuple[TrialSpec, Any, SystemConfig]:
    """(trial spec, inference module in eval mode, env config) of a trial checkpoint,
    checked as :func:`load_policy` describes."""
    root = Path(checkpoint).expanduser().resolve()
    if not root.exists():
        raise ConfigError(f"--checkpoint {root}: no such folder")
    if not root.is_dir():
        raise ConfigError(f"--checkpoint {root}: not a folder; give a checkpoint_NNNNNN folder")
    if not (root / TRIAL_FILE).is_file():
        raise ConfigError(f"--checkpoint {root}: not a dnt_rllib checkpoint (no {TRIAL_FILE})")
    spec = read_trial(root)
    weights = root / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(
            f"--checkpoint {root}: no {WEIGHTS_FILE} (written by dnt_rllib before weights were "
            "saved apart from RLlib's pickles, which evaluate does not load); retrain it"
        )
    trained = spec.env
    config = config or trained
    check_spaces(config, trained, size_free=spec.model.get("kind") == "set")
    module = build_module(spec)
    check_weights_size(weights, module)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError on foreign content
        first = first_line(err)
        raise ConfigError(f"--checkpoint {weights}: not a weights file ({first[:200]})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(f"--checkpoint {weights}: must map parameter names to tensors")
    broken = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise ConfigError(
            f"--checkpoint {weights}: {key_text(broken[0])} holds NaN or infinite weights (a "
            "diverged trial); it cannot be scored"
        )
    try:
        missing, _ = module.load_state_dict(state, strict=False)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"--checkpoint {weights}: does not fit the module ({first})") from None
    if missing:
        raise ConfigError(f"--checkpoint {weights}: lacks {', '.join(sorted(missing)[:3])}")
    module.eval()
    return spec, module, config


def greedy_actions(module: Any, observations: np.ndarray) -> np.ndarray:
    """The greedy action of a non-recurrent module for each row of ``observations`` (B, dim),
    as :func:`greedy_policy` takes it one row at a time."""
    from ray.rllib.core import Columns

    batch = {Columns.OBS: torch.from_numpy(np.asarray(observations, dtype=np.float32))}
    with torch.no_grad():
        return _greedy_rows(module.forward_inference(batch))
