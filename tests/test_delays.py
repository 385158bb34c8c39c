"""The sync-delay distribution (`python -m dnt_rllib.delays`) against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnt_rllib import SystemConfig
from dnt_rllib.delays import closed_form, infeasible_share, main, moved_share, slot_delays


def hand_delay(interference: float, config: SystemConfig) -> float:
    """T^C = D / (B log2(1 + P h^C / (I + B N0))), eq. (3); h^C = 1 / |l^C − l^N|²."""
    h = 1.0 / (20.0**2 + 20.0**2)  # cloud at (20, 20), BS at the origin, exponent 2
    sinr = config.tx_power * h / (interference + config.bandwidth * config.noise_psd)
    return config.data_size / (config.bandwidth * math.log2(1.0 + sinr))


def test_one_slot_by_hand() -> None:
    config = SystemConfig(num_rbs=3, twin="hold")
    # the env's i.i.d. law: one Exp(mean) per RB from the generator of that seed
    drawn = np.random.default_rng(7).exponential(config.interference, size=3)
    delays = slot_delays(config, 1, seed=7)
    assert delays.shape == (1, 3)
    assert delays[0] == pytest.approx([hand_delay(i, config) for i in drawn], rel=1e-12)
    best, slowest = min(delays[0]), max(delays[0])
    assert infeasible_share(delays, best * 0.999) == 1.0  # no RB meets γ
    assert infeasible_share(delays, best) == 0.0
    assert moved_share(delays, slowest * 0.999) == 1.0 and moved_share(delays, slowest) == 0.0


@pytest.mark.parametrize(("rbs", "gamma"), [(2, 0.02), (4, 0.02), (6, 0.022), (6, 0.025)])
def test_shares_match_the_exponential_closed_form(rbs: int, gamma: float) -> None:
    """P(I_n > I^max) = e^(−I^max/Ī) per RB, independent: no RB feasible with e^(−N I^max/Ī),
    the slowest RB moved with 1 − (1 − e^(−I^max/Ī))^N; I^max from eq. (3) by hand."""
    config = SystemConfig(num_rbs=rbs, twin="hold")
    h = 1.0 / 800.0
    i_max = h / (2.0 ** (config.data_size / gamma) - 1.0) - config.noise_psd
    p = math.exp(-i_max / config.interference)
    assert closed_form(config, gamma) == pytest.approx((p**rbs, 1 - (1 - p) ** rbs), rel=1e-9)
    slots = 200_000
    delays = slot_delays(config, slots, seed=1)
    for measured, expected in ((infeasible_share(delays, gamma), p**rbs),
                               (moved_share(delays, gamma), 1 - (1 - p) ** rbs)):  # fmt: skip
        sd = math.sqrt(expected * (1 - expected) / slots)
        assert abs(measured - expected) < 5 * sd + 1e-6


def test_markov_closed_form() -> None:
    """Markov levels are constant: an RB misses γ iff its state's level exceeds I^max."""
    config = SystemConfig(num_rbs=3, twin="hold", interference_model="markov")
    quiet = config.interference / (1 - 0.2 + 0.2 * 10)  # π = 0.2, r = 10
    h = 1.0 / 800.0
    gamma = config.data_size / math.log2(1 + h / (2 * quiet + config.noise_psd))  # I^max = 2 I_q
    assert closed_form(config, gamma) == pytest.approx((0.2**3, 1 - 0.8**3))
    delays = slot_delays(config, 100_000, seed=2)
    assert infeasible_share(delays, gamma) == pytest.approx(0.2**3, abs=0.002)


def test_cli_prints_percentiles_and_the_gamma_table(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:
    png = tmp_path / "delay.png"
    assert main(["--slots", "20000", "--gammas", "0.02,2.5", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "| percentile | 1 | 5 | 25 | 50 |" in out
    assert "| 2.5 | 0.000 % | 0.000 % | 0.0 % | 0.0 % |" in out
    none, moved = closed_form(SystemConfig(), 0.02)  # 16.2 % and 100 % on the default network
    assert f" % | {100 * none:.3f} % | " in out and f" % | {100 * moved:.1f} % |" in out
    assert png.stat().st_size > 10_000
    assert main(["--gammas", "0.02,x"]) == 2
    assert "error: --gammas" in capsys.readouterr().err


def test_plot_is_written_under_the_name_given(tmp_path, capsys: pytest.CaptureFixture) -> None:
    """``--plot X`` wrote X.png while saying "wrote X" (issue 25, low)."""
    figure = tmp_path / "delays"
    assert main(["--slots", "2000", "--gammas", "2.5", "--plot", str(figure)]) == 0
    assert f"wrote {figure}\n" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delays"]
    assert figure.read_bytes().startswith(b"\x89PNG")
