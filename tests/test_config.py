"""SystemConfig: Table I defaults and one clear line per bad value."""

from pathlib import Path

import pytest

from dnt_rllib import ConfigError, SystemConfig


def test_defaults_are_table_one() -> None:
    c = SystemConfig()
    assert (c.num_users, c.num_rbs, c.bandwidth, c.tx_power) == (10, 6, 1.0, 1.0)
    assert (c.noise_psd, c.fading, c.epsilon, c.data_size, c.delay_bound) == (
        1e-5,
        1.0,
        0.987,
        0.1,
        2.5,
    )
    assert (c.bs_position, c.cloud_position, c.history, c.gru_hidden) == (
        (0.0, 0.0),
        (20.0, 20.0),
        5,
        128,
    )
    assert c.episode_length == 30 and c.area_size == 100.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epsilon": 1.0}, "SystemConfig.epsilon = 1.0: must be a number in (0, 1)"),
        ({"epsilon": 0}, "SystemConfig.epsilon = 0: must be a number in (0, 1)"),
        ({"num_users": 0}, "SystemConfig.num_users = 0: must be an integer >= 1"),
        ({"num_rbs": 2.5}, "SystemConfig.num_rbs = 2.5: must be an integer >= 1"),
        ({"num_rbs": True}, "SystemConfig.num_rbs = True: must be an integer >= 1"),
        ({"tx_power": -1}, "SystemConfig.tx_power = -1: must be a number > 0"),
        ({"noise_psd": 0}, "SystemConfig.noise_psd = 0: must be a number > 0"),
        ({"delay_bound": 0.0}, "SystemConfig.delay_bound = 0.0: must be a number > 0"),
        ({"interference": -1e-3}, "SystemConfig.interference = -0.001: must be a number >= 0"),
        ({"epsilon": "high"}, "SystemConfig.epsilon = 'high': must be a number in (0, 1)"),
        ({"action_mode": "all"}, "SystemConfig.action_mode = 'all': must be one of"),
        ({"bs_position": [0]}, "SystemConfig.bs_position = [0]: must be a pair"),
        ({"step_size": 60.0}, "SystemConfig.step_size = 60: must be < area_size / 2 = 50"),
        ({"stay_prob_range": [0.9, 0.1]}, "SystemConfig.stay_prob_range = [0.9, 0.1]"),
        ({"gamma": 0.8}, "SystemConfig: unknown field 'gamma'"),
    ],
)
def test_bad_values_give_one_line_naming_the_field(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        SystemConfig.from_dict(values)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_yaml_round_trip_and_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("num_users: 4\nbs_position: [1, 2]\nepsilon: 0.5\n")
    c = SystemConfig.from_yaml(path)
    assert (c.num_users, c.bs_position, c.epsilon) == (4, (1.0, 2.0), 0.5)
    evil = tmp_path / "evil.yaml"
    evil.write_text("num_users: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        SystemConfig.from_yaml(evil)


def test_replace_revalidates() -> None:
    with pytest.raises(ConfigError, match="num_rbs"):
        SystemConfig().replace(num_rbs=0)


def test_a_yaml_list_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- num_users: 3\n")
    with pytest.raises(ConfigError, match=r"list.yaml: must be a YAML mapping of .* got list$"):
        SystemConfig.from_yaml(path)
