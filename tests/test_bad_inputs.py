"""Bad input to the CLIs: one ``error:`` line naming the file or field, exit 2, no traceback,
nothing written."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from dnt_rllib.config import SystemConfig
from dnt_rllib.evaluate import main as evaluate_main
from dnt_rllib.tune import main as tune_main
from dnt_rllib.tuning.state import STARTED_FILE
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


def test_experiment_naming_code_for_rllib_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A value RLlib would import and call by name never leaves the YAML (issue 25, 1)."""
    import dnt_rllib.tune as tune_cli

    def no_work(*args: object) -> None:
        raise AssertionError("the refused experiment went on to work")

    monkeypatch.setattr(tune_cli, "pretrain_twins", no_work)
    monkeypatch.setattr(tune_cli, "run", no_work)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(
        "algorithm: DQN\nmax_failures: 2\n"
        "training: {DQN: {replay_buffer_config: {type: builtins.exec,\n"
        "  _args: [\"import os; os.system('id > PWNED')\"]}}}\n"
        "search_space: {algorithm: {grid: [SAC, DQN]}}\n"
    )
    one_error(capsys, tune_main(["--config", "exp.yaml"]), "replay_buffer_config.type")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def _bomb(key: str, levels: int = 6) -> str:
    """A few hundred bytes of YAML whose aliases make ``key`` a list of 10^levels items."""
    names = "abcdefghij"[:levels]
    parts = ["&a [" + ", ".join(["x"] * 10) + "]"]
    for prev, name in itertools.pairwise(names):
        parts.append(f"&{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return f"{key}: [{', '.join(parts)}]\n"


def _clis() -> dict[str, Any]:
    from dnt_rllib.bench.cli import main as bench_main
    from dnt_rllib.delays import main as delays_main
    from dnt_rllib.policies.ceiling_check import main as ceiling_main

    return {
        "tune": lambda path: tune_main(["--config", path]),
        "evaluate": lambda path: evaluate_main(["--config", path, *FAST]),
        "delays": lambda path: delays_main(["--config", path]),
        "ceiling_check": lambda path: ceiling_main(["--config", path]),
        "bench": lambda path: bench_main(["--config", path]),
        "twin": lambda path: twin_main(["train", "--config", path, "--quiet"]),
    }


@pytest.mark.parametrize("cli", ["tune", "evaluate", "delays", "ceiling_check", "bench", "twin"])
def test_yaml_aliases_are_refused_by_every_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, cli: str
) -> None:
    """An alias bomb (issue 25, 2) is one short line: aliases are refused when read."""
    monkeypatch.chdir(tmp_path)
    text = f"algorithm: SAC\n{_bomb('seed')}" if cli == "tune" else _bomb("num_users")
    assert len(text) < 500
    (tmp_path / "bomb.yaml").write_text(text)
    line = one_error(capsys, _clis()[cli]("bomb.yaml"), "bomb.yaml", "alias *a is not accepted")
    assert len(line) < 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]


def test_a_key_given_twice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text("algorithm: SAC\nname: x\nalgorithm: DQN\n")
    one_error(capsys, tune_main(["--config", "exp.yaml"]), "line 3: key algorithm given twice")
    (tmp_path / "net.yaml").write_text(
        "twin: hold\nepisode_length: 3\nnum_users: 3\nnum_users: 5\n"
    )
    one_error(capsys, evaluate_main(["--config", "net.yaml", *FAST]), "key num_users given twice")


def test_a_long_value_is_cut_in_the_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(f"algorithm: SAC\nseed: [{', '.join(['1'] * 100_000)}]\n")
    line = one_error(capsys, tune_main(["--config", "exp.yaml"]), "experiment.seed = [1, 1")
    assert len(line) < 200


@pytest.mark.parametrize(
    "cli", ["tune", "evaluate", "sync_runs", "ceiling_check", "bench", "twin", "twin --cache-dir"]
)
def test_a_twin_cache_under_a_file_is_one_line_before_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, cli: str
) -> None:
    """Twins, threshold fits and references are cached in ``twin_cache_dir``: under a file it
    was a traceback (sync_runs, ceiling_check, bench after its first measurement, twin)."""
    from dnt_rllib.sync_runs import main as sync_main

    _no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    (tmp_path / "net.yaml").write_text("twin: hold\nepisode_length: 20\ntwin_cache_dir: file/c\n")
    (tmp_path / "exp.yaml").write_text(
        "algorithm: SAC\nenv: {twin: hold, twin_cache_dir: file/c}\n"
    )
    runs = {
        **_clis(),
        "sync_runs": lambda path: sync_main(["--config", path, "--episodes", "2"]),
        "twin --cache-dir": lambda path: twin_main(["train", "--cache-dir", "file/c"]),
    }
    says = "--cache-dir file/c" if cli == "twin --cache-dir" else "twin_cache_dir = file/c"
    yaml_file = "exp.yaml" if cli == "tune" else "net.yaml"
    one_error(capsys, runs[cli](yaml_file), says, "file is a file, so no folder can be made there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "file", "net.yaml"]


def _flag_cases(tmp_path: Path) -> list[tuple[str, list[str], str]]:
    (tmp_path / "file").write_text("x")
    under = str(tmp_path / "file" / "out")
    return [
        ("delays", ["--seed", "-1"], "--seed = -1: must be an integer >= 0"),
        ("delays", ["--plot", under + ".png"], "is a file, so no folder can be made there"),
        ("delays", ["--plot", str(tmp_path / "x.foo")], "must end in .png, .pdf or .svg"),
        ("ceiling_check", ["--seed", "-5"], "--seed = -5: must be an integer >= 0"),
        ("ceiling_check", ["--episodes", "1000000000"], "--episodes = 1000000000: must be"),
        ("twin", ["evaluate", "--seed", "-3"], "--seed = -3: must be an integer >= 0"),
        ("twin", ["evaluate", "--out", under], "is a file, so no folder can be made there"),
        ("evaluate", ["--lookahead", "1000000000"], "--lookahead = 1000000000: must be"),
        ("evaluate", ["--episodes", "1000000000000"], "--episodes = 1000000000000: must be"),
        ("evaluate", ["--json", under + ".json"], "is a file, so no folder can be made there"),
        ("bench", ["--steps", "0"], "--steps = 0: must be an integer in [1, 10000000]"),
        ("bench", ["--steps", "-5"], "--steps = -5"),
        ("bench", ["--learner", "--learner-seconds", "nan"], "--learner-seconds = nan: must be"),
        ("bench", ["--rllib", "--rllib-seconds", "-1"], "--rllib-seconds = -1.0: must be"),
        ("bench", ["--config", str(tmp_path / "none.yaml")], "none.yaml: no such file"),
        ("bench", ["--config", str(tmp_path / "file")], "must be a YAML mapping"),
        ("bench", ["--learner", "--json", under + ".json"], "is a file, so no folder can be"),
        ("bench", ["--evaluation", "0"], "--evaluation = 0: must be an integer in [2, 100000]"),
        ("bench", ["--evaluation", "4", "--learner"], "--learner and --evaluation: one at a"),
        ("bench", ["--set-encoder", "--rllib"], "--rllib and --set-encoder: one at a time"),
        ("bench", ["--set-encoder", "--steps", "5"], "--steps: applies only without --rllib"),
        ("bench", ["--json", "x.json"], "--json: applies only with --learner; it would be"),
        ("bench", ["--learner", "--steps", "5"], "--steps: applies only without --rllib"),
        ("bench", ["--rllib-rounds", "2"], "--rllib-rounds: applies only with --rllib"),
    ]


@pytest.mark.parametrize("case", range(22))
def test_bad_flags_are_one_line_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, case: int
) -> None:
    """Negative seeds, runaway sizes and outputs under a file (issue 25, low)."""
    from dnt_rllib.bench.cli import main as bench_main
    from dnt_rllib.delays import main as delays_main
    from dnt_rllib.policies.ceiling_check import main as ceiling_main

    clis = {"delays": delays_main, "ceiling_check": ceiling_main, "twin": twin_main,
            "evaluate": evaluate_main, "bench": bench_main}  # fmt: skip
    cli, argv, says = _flag_cases(tmp_path)[case]
    one_error(capsys, clis[cli](argv), says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_bench_learner_json_in_a_new_folder_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``--json no/such/dir/x.json`` passes the check before the work (the folder can be
    made) and gets the figures after it: the folder is made, the measurement is not lost."""
    import json

    import ray

    import dnt_rllib.bench.learner_cost as cost
    from dnt_rllib.bench.cli import main as bench_main

    measured = {"update_ms": 2.0, "step_ms": 3.0, "updates": 5, "shares": {"x": 1.0},
                "obs_dim": 4, "num_actions": 2, "batch": 8}  # fmt: skip
    monkeypatch.setattr(cost, "measure_path", lambda config, path, seconds: measured)
    monkeypatch.setattr(cost, "torch_floor_ms", lambda *args: 1.0)
    monkeypatch.setattr(cost, "matmul_gflops", lambda *args: 1.0)
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text("twin: hold\n")
    argv = ["--config", "net.yaml", "--learner", "--json", "no/such/dir/x.json"]
    assert bench_main(argv) == 0, capsys.readouterr().err
    figures = json.loads((tmp_path / "no/such/dir/x.json").read_text())
    assert figures["ms_per_update"] == 2.0 and figures["floor_ms_per_update"] == 1.0


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import dnt_rllib.tune as tune_cli

    def no_work(*args: object) -> None:
        raise AssertionError("the refused experiment went on to work")

    monkeypatch.setattr(tune_cli, "pretrain_twins", no_work)
    monkeypatch.setattr(tune_cli, "run", no_work)


#: (YAML, extra arguments, environment, what the line says): each refused before Ray.
BEFORE_RAY: list[tuple[str, list[str], dict[str, str], str]] = [
    ("seed: 4294967296", [], {}, "experiment.seed = 4294967296: must be an integer in [0, "),
    ("search_alg: {type: optuna, seed: 4294967296}\nsearch_space: {seed: {choice: [0, 1]}}",
     [], {}, "experiment.search_alg.seed = 4294967296: must be an integer in [0, 2147483647]"),
    ("search_space: {seed: {grid: [0, 4294967296]}}", [], {}, "4294967296"),
    ("mlflow: {tracking_uri: 'foo://bar'}", [], {}, "unknown scheme foo://"),
    ("", [], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, "no MLflow server answers there"),
    ("", ["--address", "127.0.0.1:1"], {}, "--address 127.0.0.1:1: no Ray cluster answers"),
    ("", ["--address", "nowhere"], {}, "--address nowhere: must be HOST:PORT"),
    ("resources: {num_gpus_per_learner: 1}", [], {}, "needs GPU 1, this machine has GPU 0"),
    ("resources: {num_env_runners: 8}", [], {}, "needs CPU 9, this machine has CPU 2"),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(BEFORE_RAY)))
def test_tune_faults_are_one_line_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, case: int
) -> None:
    """Seeds numpy cannot take, unreachable MLflow servers and Ray clusters, resources no
    trial can get (issue 25, 4 and 8): refused before Ray starts, instead of a hang."""
    import dnt_rllib.tune as tune_cli

    yaml_text, argv, env, says = BEFORE_RAY[case]
    _no_work(monkeypatch)
    monkeypatch.setattr(
        tune_cli, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0}, raising=False
    )
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(f"algorithm: SAC\nenv: {{twin: hold}}\n{yaml_text}\n")
    one_error(capsys, tune_main(["--config", "exp.yaml", *argv]), says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_a_read_only_mlflow_folder_is_refused_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != store and real(p, mode))
    _no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(
        f"algorithm: SAC\nenv: {{twin: hold}}\nmlflow: {{tracking_uri: 'sqlite:///{store}/m.db'}}\n"
    )
    one_error(capsys, tune_main(["--config", "exp.yaml"]), f"cannot write in {store}")


def test_resume_with_an_edited_yaml_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """issue 25, 6: Tune resumes the saved config; an edited file would be ignored."""
    import json

    _no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    started = {"algorithm": "SAC", "name": "x", "env": {"twin": "hold"},
               "evaluation": {"episodes": 10}}  # fmt: skip
    folder = tmp_path / "ray_results" / "x"
    folder.mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(b"")  # Tune's state: never read before the refusal
    (folder / STARTED_FILE).write_text(json.dumps(started))
    edited = {**started, "evaluation": {"episodes": 50}}
    (tmp_path / "exp.yaml").write_text(json.dumps(edited))
    code = tune_main(["--config", "exp.yaml", "--resume"])
    one_error(capsys, code, "is not the config this experiment started with",
              "evaluation.episodes: 10 → 50")  # fmt: skip


def test_ray_that_cannot_start_or_join_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``--address auto`` with no cluster (issue 25, 8): Ray refuses at once, in one line."""
    import ray

    import dnt_rllib.tune as tune_cli
    from dnt_rllib.experiment.schema import parse_experiment

    def no_cluster(**kwargs: object) -> None:
        raise ConnectionError("Could not find any running Ray instance. Please specify one.")

    monkeypatch.setattr(ray, "init", no_cluster)
    monkeypatch.chdir(tmp_path)
    exp = parse_experiment({"algorithm": "SAC", "env": {"twin": "hold"}})
    one_error(capsys, tune_cli.run(exp, False, "auto"), "--address auto: cannot start or join")
    assert list(tmp_path.iterdir()) == []


#: (YAML after ``env: {twin: hold}``, what the one line says): PPO's values and the
#: recurrent models' combinations, refused before Ray (issue 27, 2).
RECURRENT_FAULTS: list[tuple[str, str]] = [
    ("algorithm: SAC\nmodel: {use_lstm: true}",
     "experiment.model.use_lstm = true with algorithm = SAC: RLlib's SAC module passes no "
     "recurrent state"),
    ("algorithm: PPO\nmodel: {use_lstm: true}\n"
     "search_space: {algorithm: {grid: [PPO, SAC]}}",
     "experiment.search_space: the point algorithm = 'SAC': model.use_lstm = true with "
     "algorithm = SAC"),
    ("algorithm: SAC\nsearch_space: {model.use_lstm: {grid: [false, true]}}",
     "the point algorithm = 'SAC', model.use_lstm = True: model.use_lstm = true with"),
    ("algorithm: DQN\nmodel: {use_lstm: true}",
     "experiment.replay.kind = 'fast' with DQN and model.use_lstm = true: the ring buffer "
     "samples single transitions"),
    ("algorithm: DQN\nmodel: {use_lstm: true}\nreplay: {kind: rllib}\n"
     "training: {DQN: {n_step: 3}}",
     "experiment.training.DQN.n_step = 3 with model.use_lstm = true: RLlib samples "
     "sequences 1-step only"),
    ("algorithm: DQN\nmodel: {use_lstm: true, max_seq_len: 8}\nreplay: {kind: rllib}\n"
     "training: {DQN: {burn_in_len: 8}}",
     "experiment.training.DQN.burn_in_len = 8 with model.max_seq_len = 8: the burn-in must "
     "be shorter"),
    ("algorithm: DQN\nmodel: {use_lstm: true}\nreplay: {kind: rllib}\n"
     "training: {DQN: {replay_buffer_config: {type: PrioritizedEpisodeReplayBuffer}}}",
     "replay_buffer_config.type = 'PrioritizedEpisodeReplayBuffer' with model.use_lstm"),
    ("algorithm: DQN\ntraining: {DQN: {burn_in_len: 2}}",
     "experiment.training.DQN.burn_in_len = 2 with model.use_lstm = false"),
    ("algorithm: DQN\nmodel: {use_lstm: 'yes'}",
     "experiment.model.use_lstm = 'yes': must be true or false"),
    ("algorithm: PPO\nmodel: {use_lstm: true, lstm_cell_size: 0}",
     "experiment.model.lstm_cell_size = 0: must be an integer in [1, 8192]"),
    ("algorithm: PPO\nmodel: {use_lstm: true, max_seq_len: 0}",
     "experiment.model.max_seq_len = 0: must be an integer in [1, 1000]"),
    ("algorithm: PPO\nmodel: {use_lstm: true, lstm_cell_size: 8192, fcnet_hiddens: [8192]}",
     "experiment.model: layers [8192, LSTM 8192] hold 537 M weights per network, more than "
     "20.0 M; lower width, depth, fcnet_hiddens or lstm_cell_size"),
    ("algorithm: PPO\nmodel: {lstm_cell_size: 64}",
     "experiment.model.lstm_cell_size = 64 with model.use_lstm = false: it sizes the LSTM (an "
     "integer in [1, 8192] with model.use_lstm: true) and would be ignored"),
    ("algorithm: DQN\nmodel: {use_lstm: false, max_seq_len: 20}",
     "experiment.model.max_seq_len = 20 with model.use_lstm = false: it sizes the LSTM (an "
     "integer in [1, 1000] with model.use_lstm: true)"),
    ("algorithm: PPO\nsearch_space: {model.lstm_cell_size: {grid: [32, 64]}}",
     "experiment.search_space.model.lstm_cell_size with model.use_lstm = false"),
    ("algorithm: PPO\nreplay: {kind: fast}",
     "experiment.replay with algorithm = PPO: PPO learns on-policy, from no replay buffer"),
    ("algorithm: PPO\nsearch_space: {replay.kind: {grid: [fast, rllib]}}",
     "experiment.search_space.replay.kind with algorithm = PPO"),
    ("algorithm: PPO\ntraining: {PPO: {kl_coeff: 0.3}}",
     "experiment.training.PPO.kl_coeff = 0.3 with training.PPO.use_kl_loss = false: only the KL "
     "loss reads it"),
    ("algorithm: PPO\nsearch_space: {training.kl_target: {grid: [0.01, 0.02]}}",
     "experiment.search_space.training.kl_target with training.PPO.use_kl_loss = false"),
    ("algorithm: PPO\ntraining: {DQN: {lr: 0.01}}",
     "experiment.training.DQN: the experiment never runs DQN (algorithm: PPO)"),
    ("algorithm: SAC\ntraining: {SAC: {replay_buffer_config: {alpha: 0.6}}}",
     "experiment.training.SAC.replay_buffer_config.alpha = 0.6 with type EpisodeReplayBuffer: "
     "only the prioritised buffer reads it"),
    ("algorithm: PPO\nmodel: {lstm_use_prev_action: true}",
     "experiment.model.lstm_use_prev_action: not a model setting of this project"),
    ("algorithm: PPO\ntraining: {PPO: {clip_param: 0}}",
     "experiment.training.PPO.clip_param = 0: must be a number > 0"),
    ("algorithm: PPO\ntraining: {PPO: {lambda_: 1.5}}",
     "experiment.training.PPO.lambda_ = 1.5: must be a number in [0, 1]"),
    ("algorithm: PPO\ntraining: {PPO: {num_epochs: 0}}",
     "experiment.training.PPO.num_epochs = 0: must be an integer >= 1"),
    ("algorithm: PPO\ntraining: {PPO: {entropy_coeff: -0.1}}",
     "experiment.training.PPO.entropy_coeff = -0.1: must be a number >= 0"),
    ("algorithm: PPO\ntraining: {PPO: {entropy_coeff: [[5, 0.1]]}}",
     "experiment.training.PPO.entropy_coeff = [[5, 0.1]]: must be a number >= 0 or a "
     "schedule"),
    ("algorithm: PPO\ntraining: {PPO: {use_kl_loss: 1}}",
     "experiment.training.PPO.use_kl_loss = 1: must be true or false"),
    ("algorithm: PPO\ntraining: {PPO: {minibatch_size: 4096}}",
     "experiment.training.PPO.minibatch_size = 4096: must be <= train_batch_size_per_learner "
     "(2048)"),
    ("algorithm: PPO\nsearch_space: {training.minibatch_size: {grid: [64, 4096]}}",
     "the point algorithm = 'PPO', training.minibatch_size = 4096: "
     "training.PPO.minibatch_size = 4096: must be <="),
    ("algorithm: PPO\ntraining: {PPO: {use_critic: false}}",
     "experiment.training.PPO.use_critic: an RLlib PPO setting this project does not accept"),
    ("algorithm: PPO\ntraining: {PPO: {tau: 0.1}}",
     "experiment.training.PPO.tau: not a PPO training setting"),
    ("algorithm: PPO\ntraining: {PPO: {learner_class: builtins.exec}}",
     "experiment.training.PPO.learner_class: not accepted: RLlib would resolve its value"),
    ("algorithm: SAC\nlearner: {kind: fast}",
     "experiment.learner.kind = 'fast': must be one of 'lean', 'rllib'"),
    ("algorithm: SAC\nlearner: {kind: lean, fused: true}",
     "experiment.learner: unknown field 'fused'; allowed fields: kind"),
    ("algorithm: DQN\nmodel: {use_lstm: true}\nreplay: {kind: rllib}\nlearner: {kind: lean}",
     "experiment.learner.kind = 'lean' with DQN and model.use_lstm = true: the lean learner "
     "trains non-recurrent modules; set learner: {kind: rllib}"),
    ("algorithm: PPO\nsearch_space: {algorithm: {grid: [PPO, DQN]},"
     " model.use_lstm: {grid: [false, true]}}\nreplay: {kind: rllib}\nlearner: {kind: lean}",
     "experiment.learner.kind = 'lean' with DQN and model.use_lstm = true"),
    ("algorithm: SAC\nlearner: {kind: lean}\nresources: {num_learners: 2}",
     "experiment.learner.kind = 'lean' with resources.num_learners = 2: the lean learner "
     "updates one module in one process"),
    ("algorithm: PPO\nlearner: {kind: lean}",
     "experiment.learner with algorithm = PPO: PPO learns on-policy, with RLlib's learner"),
    ("algorithm: PPO\nsearch_space: {learner.kind: {grid: [lean, rllib]}}",
     "experiment.search_space.learner.kind with algorithm = PPO"),
    ("algorithm: PPO\nsearch_space: {algorithm: {grid: [PPO, SAC]},"
     " training.num_epochs: {grid: [1, 5]}}",
     "experiment.search_space.training.num_epochs: an RLlib SAC setting this project does "
     "not accept"),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(RECURRENT_FAULTS)))
def test_recurrent_and_ppo_faults_are_one_line_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, case: int
) -> None:
    yaml_text, says = RECURRENT_FAULTS[case]
    _no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(f"env: {{twin: hold}}\n{yaml_text}\n")
    one_error(capsys, tune_main(["--config", "exp.yaml"]), says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]
