"""Evaluating a checkpoint never unpickles: the module is rebuilt from ``dnt_trial.json``
and only ``policy_weights.pt`` (tensors, ``torch.load(weights_only=True)``) is loaded."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from dnt_rllib.evaluate import main as evaluate_main
from dnt_rllib.experiment.schema import load_experiment
from dnt_rllib.names import TRIAL_FILE, WEIGHTS_FILE
from dnt_rllib.trial.spec import TrialSpec
from dnt_rllib.trial.trained_policy import build_module, save_weights
from tests.conftest import SMOKE

MODULE_DIR = ("algorithm", "learner_group", "learner", "rl_module", "default_policy")


class Payload:
    """Unpickling this creates the marker file: code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def trial_params(algorithm: str = "SAC") -> dict:
    """A smoke trial's saved spec, its twin held and its episodes 5 slots long."""
    spec = load_experiment(SMOKE).trial_spec(algorithm)
    return replace(spec, env=spec.env.replace(twin="hold", episode_length=5)).to_params()


def save_module(params: dict, folder: Path) -> None:
    """``params`` as the folder's trial file, and its module's (random) weights."""
    (folder / TRIAL_FILE).write_text(json.dumps(params))
    save_weights(build_module(TrialSpec.from_params(params)), folder)


def make_checkpoint(folder: Path, algorithm: str = "SAC", **env: object) -> Path:
    folder.mkdir(parents=True)
    params = trial_params(algorithm)
    params["env"] = {**params["env"], **env}
    save_module(params, folder)
    return folder


def hostile_pickles(folder: Path, marker: Path) -> None:
    """RLlib's checkpoint files with a payload in each pickle RLlib would read."""
    module = folder.joinpath(*MODULE_DIR)
    module.mkdir(parents=True)
    for name in ("class_and_ctor_args.pkl", "module_state.pkl"):
        (module / name).write_bytes(pickle.dumps(Payload(marker)))
    (module / "metadata.json").write_text(json.dumps({"checkpoint_version": "2.1"}))


def run_eval(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = evaluate_main([*args, "--episodes", "2", "--periods", "2-3", "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("algorithm", ["SAC", "DQN", "PPO"])
def test_relative_checkpoint_evaluates_without_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, algorithm: str
) -> None:
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoint_000003", algorithm)
    marker = tmp_path / "pwned"
    hostile_pickles(ckpt, marker)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_eval(capsys, "--checkpoint", "run/checkpoint_000003")
    assert not marker.exists(), "a pickle in the checkpoint was executed"
    assert code == 0, err
    assert f"| {algorithm} (seed 0) |" in out


def test_weights_are_the_trained_ones(tmp_path: Path) -> None:
    from dnt_rllib.trial.trained_policy import load_policy

    ckpt = make_checkpoint(tmp_path / "c")
    state = torch.load(ckpt / WEIGHTS_FILE, weights_only=True)
    state = {k: torch.full_like(v, 0.5) for k, v in state.items()}
    torch.save(state, ckpt / WEIGHTS_FILE)
    _, policy, config = load_policy(ckpt)
    assert config.twin == "hold" and callable(policy)


def test_pickle_as_weights_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = make_checkpoint(tmp_path / "c")
    marker = tmp_path / "pwned"
    (ckpt / WEIGHTS_FILE).write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert not marker.exists()
    assert code == 2 and err.startswith("error: --checkpoint") and "weights" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"algorithm": "SAC", "seed": 0}', "missing env"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_bad_trial_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str | bytes, says: str
) -> None:
    ckpt = make_checkpoint(tmp_path / "c")
    path = ckpt / TRIAL_FILE
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: --checkpoint") and TRIAL_FILE in err and says in err


@pytest.mark.parametrize(
    ("algorithm", "model", "says"),
    [
        ("SAC", {"use_lstm": True}, "model.use_lstm = true with algorithm = SAC"),
        ("DQN", {"use_lstm": True}, "replay.kind = 'fast' with DQN and model.use_lstm = true"),
        ("PPO", {"use_lstm": 1}, "model.use_lstm = 1: must be true or false"),
    ],
)
def test_a_trial_file_no_trial_could_have_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, algorithm: str, model: dict, says: str
) -> None:
    """An LSTM where RLlib's module would get no state (SAC) or no sequences (DQN on the
    fast replay path): refused as the YAML is, before any module is built."""
    ckpt = make_checkpoint(tmp_path / "c", algorithm)
    params = json.loads((ckpt / TRIAL_FILE).read_text())
    (ckpt / TRIAL_FILE).write_text(json.dumps({**params, "model": model}))
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: --checkpoint {ckpt}: {TRIAL_FILE}") and says in err


def test_missing_checkpoint_says_no_such_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, _, err = run_eval(capsys, "--checkpoint", str(tmp_path / "nope"))
    assert code == 2 and err.strip() == f"error: --checkpoint {tmp_path / 'nope'}: no such folder"


def test_old_checkpoint_without_weights_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = make_checkpoint(tmp_path / "c")
    (ckpt / WEIGHTS_FILE).unlink()
    marker = tmp_path / "pwned"
    hostile_pickles(ckpt, marker)
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert not marker.exists() and code == 2 and WEIGHTS_FILE in err
    assert len(err.strip().splitlines()) == 1


def test_a_deflated_weights_bomb_is_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A small zip that unpacks to far more than the module's weights (issue 25, 3)."""
    import zipfile

    ckpt = make_checkpoint(tmp_path / "c")
    with zipfile.ZipFile(ckpt / WEIGHTS_FILE, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * (200 << 20))
    assert (ckpt / WEIGHTS_FILE).stat().st_size < 1 << 20
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "unpacks to 209,715,200 bytes, more than the module's weights need" in err


@pytest.mark.parametrize(("trained", "given"), [("rb", "binary"), ("binary", "rb")])
def test_an_action_space_other_than_the_checkpoints_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, trained: str, given: str
) -> None:
    """issue 25, 7: an rb policy on a binary env crashed mid-evaluation; the reverse ran."""
    folder = tmp_path / "c"
    folder.mkdir()
    params = trial_params()
    params["env"] = {**params["env"], "action_mode": trained}
    save_module(params, folder)
    net = tmp_path / "net.yaml"
    net.write_text(yaml.safe_dump({**params["env"], "action_mode": given}))
    code, _, err = run_eval(capsys, "--checkpoint", str(folder), "--config", str(net))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"action_mode = {given}" in err and f"action_mode = {trained}" in err


def test_nan_weights_are_refused_not_scored(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A diverged trial's NaN weights were scored as the `never` policy (issue 25, low)."""
    ckpt = make_checkpoint(tmp_path / "c")
    state = torch.load(ckpt / WEIGHTS_FILE, weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, ckpt / WEIGHTS_FILE)
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{name} holds NaN or infinite weights" in err


def test_a_checkpoint_from_before_frame_stack_keeps_its_decision_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """issue 27: a 'decision' trial written before ``frame_stack`` and 'memory' existed (its
    env has no ``frame_stack``) rebuilds the module it trained, on 'decision''s entries."""
    folder = tmp_path / "c"
    folder.mkdir()
    params = trial_params()
    env = {k: v for k, v in params["env"].items() if k != "frame_stack"}
    params["env"] = {**env, "observation_mode": "decision"}
    save_module(params, folder)
    first = next(v for v in torch.load(folder / WEIGHTS_FILE, weights_only=True).values())
    u, n = params["env"]["num_users"], params["env"]["num_rbs"]
    assert first.shape[-1] == 2 * u + 2 * u + 1 + n + 1 + 2  # s, ŝ − s, since, I_n, left, 2
    code, out, err = run_eval(capsys, "--checkpoint", str(folder))
    assert code == 0, err
    assert "| SAC (seed 0) |" in out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"frame_stack": 2}, "frame_stack = 2 does not match the checkpoint's"),
        ({"observation_mode": "memory"}, "observation_mode = memory, frame_stack = 1 does not"),
    ],
)
def test_another_observation_layout_than_the_checkpoints_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, change: dict, says: str
) -> None:
    ckpt = make_checkpoint(tmp_path / "c")
    params = json.loads((ckpt / TRIAL_FILE).read_text())
    net = tmp_path / "net.yaml"
    net.write_text(yaml.safe_dump({**params["env"], **change}))
    code, _, err = run_eval(capsys, "--checkpoint", str(ckpt), "--config", str(net))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert says in err


@pytest.mark.parametrize(("mode", "plays"), [("compact", True), ("decision", False)])
def test_a_policy_on_the_compact_observation_plays_at_another_cell_size(
    tmp_path: Path, capsys: pytest.CaptureFixture, mode: str, plays: bool
) -> None:
    """Trained at (U, N) = (4, 3), evaluated at (30, 12): the compact observation has the
    same 9 entries there; any other is refused in one line (its shape is the cell's)."""
    ckpt = make_checkpoint(tmp_path / "c", observation_mode=mode)
    big = {"twin": "hold", "episode_length": 5, "observation_mode": mode, "num_users": 30,
           "num_rbs": 12}  # fmt: skip
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(big))
    code, out, err = run_eval(capsys, "--checkpoint", str(ckpt), "--config",
                              str(tmp_path / "big.yaml"))  # fmt: skip
    if plays:
        assert code == 0, err
        assert "| SAC (seed 0) |" in out
    else:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "observation shape" in err


def test_a_set_model_plays_at_another_cell_size(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``model.kind: set`` trained at (U, N) = (4, 3) on ``'set'`` observations evaluates at
    (30, 12) from the command line; a config that changes a user's features (Gauss–Markov
    adds the displacement) is refused in one line."""
    folder = tmp_path / "c"
    folder.mkdir()
    params = trial_params("DQN")
    params["env"] = {**params["env"], "observation_mode": "set"}
    params["model"] = {"kind": "set", "set_hiddens": [8], "fcnet_hiddens": [8]}
    save_module(params, folder)
    big = {"twin": "hold", "episode_length": 5, "observation_mode": "set", "num_users": 30,
           "num_rbs": 12}  # fmt: skip
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(big))
    code, out, err = run_eval(capsys, "--checkpoint", str(folder), "--config",
                              str(tmp_path / "big.yaml"))  # fmt: skip
    assert code == 0, err
    assert "| DQN (seed 0) |" in out
    (tmp_path / "gm.yaml").write_text(yaml.safe_dump({**big, "mobility_model": "gauss_markov"}))
    code, _, err = run_eval(capsys, "--checkpoint", str(folder), "--config",
                            str(tmp_path / "gm.yaml"))  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "mobility_model = gauss_markov" in err
