"""DNT_SHARED_STORAGE: the defaults it sets, the cache mirror on a URI, the cluster refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnt_rllib import shared_storage
from dnt_rllib.common import load_or_write_json
from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.schema import parse_experiment
from dnt_rllib.tuning import cluster_storage
from dnt_rllib.twin import cache
from dnt_rllib.validation import ConfigError

ENV = shared_storage.SHARED_STORAGE_ENV


def test_a_shared_folder_holds_the_results_and_the_twin_cache_the_yaml_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"{tmp_path}/shared/")
    exp = parse_experiment({"algorithm": "SAC"})
    assert exp.storage_path == f"{tmp_path}/shared/ray_results"
    assert exp.env.twin_cache_dir == f"{tmp_path}/shared/twins"
    given = parse_experiment(
        {
            "algorithm": "SAC",
            "storage_path": str(tmp_path / "mine"),
            "env": {"twin_cache_dir": str(tmp_path / "cache")},
        }
    )
    assert given.storage_path == str(tmp_path / "mine")
    assert given.env.twin_cache_dir == str(tmp_path / "cache")


def test_a_uri_holds_the_results_and_each_node_keeps_its_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "s3://bucket/dnt")
    exp = parse_experiment({"algorithm": "SAC"})
    assert exp.storage_path == "s3://bucket/dnt/ray_results"
    assert exp.env.twin_cache_dir == SystemConfig().twin_cache_dir
    assert shared_storage.mirror_root() == "s3://bucket/dnt/twins"


def test_on_one_machine_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    exp = parse_experiment({"algorithm": "SAC"})
    assert exp.storage_path == str(tmp_path / "ray_results")
    assert exp.env.twin_cache_dir == SystemConfig().twin_cache_dir
    assert shared_storage.mirror_root() is None


def test_a_file_one_node_computed_is_fetched_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"file://{tmp_path}/bucket")
    made = []

    def make() -> dict[str, int]:
        made.append(1)
        return {"a": 1}

    first = load_or_write_json(tmp_path / "node1" / "fit-0123.json", make)
    assert json.loads((tmp_path / "bucket" / "twins" / "fit-0123.json").read_text()) == first
    second = load_or_write_json(tmp_path / "node2" / "fit-0123.json", make)
    assert second == {"a": 1} and len(made) == 1  # fetched, not computed again
    assert (tmp_path / "node2" / "fit-0123.json").is_file()


def test_a_twin_another_node_trained_is_fetched_not_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"file://{tmp_path}/bucket")
    config = SystemConfig(twin_cache_dir=str(tmp_path / "node2"))
    name = cache.cache_path(config).name
    (tmp_path / "bucket" / "twins").mkdir(parents=True)
    (tmp_path / "bucket" / "twins" / name).write_bytes(b"the twin")

    def train(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although another node had")

    monkeypatch.setattr("dnt_rllib.twin.train.train_twin", train)
    path, trained = cache.ensure_checkpoint(config, progress=False)
    assert trained is None and path.read_bytes() == b"the twin"


def test_what_this_node_had_from_before_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, f"file://{tmp_path}/bucket")
    old = tmp_path / "node1" / "references-0123.json"
    old.parent.mkdir()
    old.write_text("{}")
    shared_storage.share(old)
    assert (tmp_path / "bucket" / "twins" / old.name).read_text() == "{}"


@pytest.fixture
def two_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_storage, "trials_elsewhere", lambda: "a Ray cluster of 2 nodes")


def test_a_cluster_refuses_a_folder_only_this_machine_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_nodes: None
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        cluster_storage.check_cluster_storage(parse_experiment({"algorithm": "SAC"}))
    text = str(err.value)
    assert text.startswith(f"experiment.storage_path = '{tmp_path}/ray_results': a folder of")
    assert "a Ray cluster of 2 nodes" in text and f"export {ENV}=" in text
    assert "\n" not in text


def test_a_cluster_refuses_a_twin_cache_outside_the_shared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_nodes: None
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "shared"))
    exp = parse_experiment({"algorithm": "SAC", "env": {"twin_cache_dir": str(tmp_path / "c")}})
    with pytest.raises(ConfigError, match=r"^experiment\.env\.twin_cache_dir = .*is '"):
        cluster_storage.check_cluster_storage(exp)
    cluster_storage.check_cluster_storage(parse_experiment({"algorithm": "SAC"}))  # defaults


def test_a_cluster_takes_a_uri_and_mirrors_the_twin_cache(
    monkeypatch: pytest.MonkeyPatch, two_nodes: None
) -> None:
    monkeypatch.setenv(ENV, "s3://bucket/dnt")
    cluster_storage.check_cluster_storage(parse_experiment({"algorithm": "SAC"}))
    monkeypatch.delenv(ENV)
    exp = parse_experiment({"algorithm": "SAC", "storage_path": "s3://bucket/results"})
    with pytest.raises(ConfigError, match=r"^experiment\.env\.twin_cache_dir = "):
        cluster_storage.check_cluster_storage(exp)
