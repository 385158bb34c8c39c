"""Bad input to the CLIs: one ``error:`` line naming the file or field, exit 2, no traceback,
nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.evaluate import main as evaluate_main
from dnt_rllib.tune import main as tune_main
from dnt_rllib.twin.__main__ import main as twin_main

FAST = ["--episodes", "2", "--periods", "2-3", "--no-progress"]
TINY_GRU = {"num_users": 2, "num_rbs": 2, "episode_length": 8, "gru_hidden": 4,
            "twin_trajectories": 10, "twin_max_epochs": 1}  # fmt: skip


def one_error(capsys: pytest.CaptureFixture, code: int, *says: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in says:
        assert text in lines[0], lines[0]
    return lines[0]


BAD_YAML: dict[str, bytes] = {
    "list": b"- a\n- b\n",
    "scalar": b"3\n",
    "false": b"false\n",
    "empty list": b"[]\n",
    "syntax": b"num_users: [1,\n",
    "python tag": b"!!python/object/apply:os.system ['touch pwned']\n",
    "not utf-8": b"num_users: \xff\xfe\n",
}


@pytest.mark.parametrize("kind", sorted(BAD_YAML))
def test_network_yaml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_bytes(BAD_YAML[kind])
    one_error(capsys, evaluate_main(["--config", "net.yaml", *FAST]), "net.yaml")
    assert not (tmp_path / "pwned").exists()


def test_network_yaml_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    one_error(capsys, evaluate_main(["--config", str(tmp_path), *FAST]), "is a folder")


@pytest.mark.parametrize("kind", ["list", "scalar", "not utf-8", "python tag", "folder"])
def test_experiment_yaml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "exp.yaml"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(BAD_YAML[kind])
    one_error(capsys, tune_main(["--config", str(path)]), str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_history_longer_than_episode_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    net = tmp_path / "net.yaml"
    net.write_text("episode_length: 3\nhistory: 5\n")
    one_error(capsys, evaluate_main(["--config", str(net), *FAST]), "episode_length = 3", "history")


def test_history_longer_than_episode_stops_tune_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text("algorithm: SAC\nenv: {episode_length: 3, history: 5}\n")
    one_error(capsys, tune_main(["--config", "exp.yaml"]), "episode_length = 3", "history")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_json_naming_a_folder_is_refused_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    net = tmp_path / "net.yaml"
    net.write_text("twin: hold\nepisode_length: 3\n")
    code = evaluate_main(["--config", str(net), "--json", str(tmp_path), *FAST])
    one_error(capsys, code, "--json", "is a folder")


def test_cache_dir_naming_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "f").write_text("x")
    code = twin_main(["train", "--cache-dir", str(tmp_path / "f"), "--quiet"])
    one_error(capsys, code, "--cache-dir", "is a file")
    assert (tmp_path / "f").read_text() == "x"


def damaged_twin(tmp_path: Path) -> tuple[dict, Path]:
    from dnt_rllib.twin.cache import cache_path

    env = {**TINY_GRU, "twin_cache_dir": str(tmp_path / "twins")}
    path = cache_path(SystemConfig.from_dict(env))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    return env, path


def test_damaged_twin_through_evaluate_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import yaml

    env, path = damaged_twin(tmp_path)
    (tmp_path / "net.yaml").write_text(yaml.safe_dump(env))
    one_error(capsys, evaluate_main(["--config", str(tmp_path / "net.yaml"), *FAST]), path.name)
    assert path.read_bytes() == b"not a checkpoint"


def test_damaged_twin_through_tune_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    env, path = damaged_twin(tmp_path)
    exp = {"algorithm": "SAC", "name": "x", "env": env, "model": {"fcnet_hiddens": [4]}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    one_error(capsys, tune_main(["--config", "exp.yaml"]), path.name)
    assert path.read_bytes() == b"not a checkpoint"
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()


def test_twin_cache_file_has_the_usual_mode(tmp_path: Path) -> None:
    from dnt_rllib.twin.cache import ensure_checkpoint

    config = SystemConfig.from_dict(TINY_GRU)
    path, _ = ensure_checkpoint(config, tmp_path, progress=False)
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # 0644 under umask 022


def test_second_tune_of_the_same_experiment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import yaml
    from filelock import FileLock

    import dnt_rllib.tune as tune_cli

    def no_work(*args: object) -> None:
        raise AssertionError("the second command went on to work")

    monkeypatch.setattr(tune_cli, "pretrain_twins", lambda exp: None)
    monkeypatch.setattr(tune_cli, "run", no_work)
    monkeypatch.chdir(tmp_path)
    exp = {"algorithm": "SAC", "name": "twice", "env": {"twin": "hold"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    folder = tmp_path / "ray_results" / "twice"
    folder.mkdir(parents=True)
    with FileLock(str(folder / ".dnt_tune.lock")):  # the first command, running
        code = tune_main(["--config", "exp.yaml"])
    one_error(capsys, code, "another `tune` process is running", str(folder))
