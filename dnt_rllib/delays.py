"""The cloud link's sync delay T^C_n = D / c^C_n (eq. 3) on a network, and where γ binds.

    python -m dnt_rllib.delays                                  # defaults, 10^6 slots
    python -m dnt_rllib.delays --config net.yaml --plot docs/sync_delay.png

Draws many slots' interference as the env does (`Network.draw_interference`, an episode's
first slot: the stationary law) and prints the percentiles of the best RB's delay per slot,
then for each γ of ``--gammas``, measured and in closed form: the share of slots where no
RB meets γ (no sync possible, `select_sync_rb` gives −1) and the share where γ moves the sync
RB off the slowest RB (the paper's R without a bound). With i.i.d. exponential interference
of mean Ī, T^C_n ≤ γ ⟺ I_n ≤ I^max (`interference_bound`), so

    P(no RB meets γ) = exp(−N I^max / Ī),   P(the slowest RB misses γ) = 1 − (1 − e^(−I^max/Ī))^N.

``--plot`` writes the best RB's delay histogram and both shares against γ.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.physics import channel
from dnt_rllib.physics.network import Network
from dnt_rllib.physics.sync import NO_RB, interference_bound, select_sync_rb, sync_delays
from dnt_rllib.validation import ConfigError, Range, check_int, check_plot, short

#: γ values printed by default: the sweep's grid and its neighbours.
GAMMAS = (0.018, 0.02, 0.022, 0.025, 0.03, 0.05, 2.5)
PERCENTILES = (1, 5, 25, 50, 75, 95, 99, 99.9)


def slot_delays(config: SystemConfig, slots: int, seed: int) -> np.ndarray:
    """T^C_n = D / c^C_n (eq. 3) of every RB in ``slots`` independent slots: (slots, N)."""
    network = Network.from_config(config)
    interference, _ = network.draw_interference(np.random.default_rng(seed), None, (slots,))
    cloud = channel.rates(
        network.cloud_gain, interference, config.tx_power, config.bandwidth, config.noise_psd
    )
    return sync_delays(cloud, config.data_size)


def infeasible_share(delays: np.ndarray, delay_bound: float) -> float:
    """Share of slots (rows) where no RB meets γ: the paper's rule finds no sync RB."""
    return float(np.mean(select_sync_rb(delays, delay_bound) == NO_RB))


def moved_share(delays: np.ndarray, delay_bound: float) -> float:
    """Share of slots where γ changes the sync RB: the slowest RB misses it."""
    return float(np.mean(delays.max(axis=-1) > delay_bound))


def closed_form(config: SystemConfig, delay_bound: float) -> tuple[float, float]:
    """(P(no RB meets γ), P(the slowest RB misses γ)) from the interference law: each RB
    misses γ with p = P(I_n > I^max) independently, so p^N and 1 − (1 − p)^N."""
    network = Network.from_config(config)
    i_max = interference_bound(
        network.cloud_gain, config.data_size, delay_bound,
        config.tx_power, config.bandwidth, config.noise_psd,
    )  # fmt: skip
    if config.interference_model == "iid":
        mean = config.interference
        p = 1.0 if i_max < 0 else (math.exp(-i_max / mean) if mean > 0 else 0.0)
    else:
        quiet, loud = network.interference_levels
        share = config.interference_loud_share
        p = (1 - share) * (quiet > i_max) + share * (loud > i_max)
    n = config.num_rbs
    return p**n, 1.0 - (1.0 - p) ** n


def plot(delays: np.ndarray, config: SystemConfig, gammas: list[float], path: Path) -> Path:
    """(a) histogram of the best RB's delay per slot, γ values marked; (b) against γ, the
    share of slots where no RB meets it and where it moves the sync RB, measured and in
    closed form."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best, slowest = delays.min(axis=-1), delays.max(axis=-1)
    floor = 1.0 / len(best)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    hi = float(np.quantile(best, 0.999))
    left.hist(best[best <= hi], bins=120, density=True, color="tab:blue", alpha=0.8)
    for g in (g for g in gammas if g <= hi * 1.1):
        left.axvline(g, color="tab:red", linestyle="--", linewidth=1)
        left.annotate(f"γ={g:g}\n{100 * np.mean(best > g):.2g} %", (g, 0.95), fontsize=7,
                      xycoords=("data", "axes fraction"), ha="left", va="top")  # fmt: skip
    left.set_title("(a) best RB's sync delay per slot (% of slots above γ)")
    left.set_xlabel("min_n D / c^C_n")
    left.set_ylabel("density")
    top = max(float(np.quantile(slowest, 0.999)), hi)
    grid = np.linspace(float(best.min()), top, 300)
    forms = np.array([closed_form(config, g) for g in grid])
    for values, form, label, colour in (
        (best, forms[:, 0], "no RB meets γ", "tab:red"),
        (slowest, forms[:, 1], "γ moves the sync RB", "tab:blue"),
    ):
        ordered = np.sort(values)
        measured = 1.0 - np.searchsorted(ordered, grid, side="right") / len(ordered)
        right.semilogy(grid, np.maximum(measured, floor), color=colour, label=label)
        right.semilogy(grid, np.maximum(form, floor), ":", color="black")
        shown = [g for g in gammas if g <= top]
        right.semilogy(shown, [max(np.mean(values > g), floor) for g in shown], "o",
                       color=colour)  # fmt: skip
    right.plot([], [], ":", color="black", label="closed form")
    right.set_title("(b) share of slots where γ binds (dots: the γ values)")
    right.set_xlabel("γ")
    right.set_ylabel("share of slots")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"N = {config.num_rbs}, interference {config.interference_model} mean "
        f"{config.interference:g}, D = {config.data_size:g}, {len(best):,} slots",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format=path.suffix[1:] or "png")  # the name as given
    plt.close(fig)
    return path


def parse_gammas(text: str) -> list[float]:
    try:
        gammas = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--gammas = {short(text)}: must be numbers separated by commas"
        ) from None
    if not all(g > 0 for g in gammas):
        raise ConfigError(f"--gammas = {short(text)}: every γ must be > 0")
    return gammas


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("dnt_rllib.delays", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of SystemConfig fields")
    parser.add_argument("--slots", type=int, default=1_000_000, help="slots drawn")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--gammas", default=",".join(f"{g:g}" for g in GAMMAS), help="γ values")
    parser.add_argument("--plot", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args(argv)
    try:
        check_int("--slots", "", args.slots, Range(1, 10_000_000))
        check_int("--seed", "", args.seed, Range(0, None))
        gammas = parse_gammas(args.gammas)
        if args.plot is not None:
            check_plot(args.plot, "--plot")
        config = SystemConfig.from_yaml(args.config) if args.config else SystemConfig()
    except ConfigError as err:
        return cli.refuse(err)
    delays = slot_delays(config, args.slots, args.seed)
    best = delays.min(axis=-1)
    print(f"best RB's delay per slot, {args.slots:,} slots, N = {config.num_rbs}:")
    print("| percentile | " + " | ".join(f"{p:g}" for p in PERCENTILES) + " |")
    print("|---|" + "---|" * len(PERCENTILES))
    values = np.percentile(best, PERCENTILES)
    print("| delay | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    print(f"slowest RB's delay: median {np.median(delays.max(axis=-1)):.4f}, "
          f"max {delays.max():.4f}\n")  # fmt: skip
    print("| γ | no RB meets γ | (closed form) | γ moves the sync RB | (closed form) |")
    print("|---|---|---|---|---|")
    for g in gammas:
        none, moved = closed_form(config, g)
        print(
            f"| {g:g} | {100 * infeasible_share(delays, g):.3f} % | {100 * none:.3f} % | "
            f"{100 * moved_share(delays, g):.1f} % | {100 * moved:.1f} % |"
        )
    if args.plot is not None:
        print(f"wrote {plot(delays, config, gammas, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
