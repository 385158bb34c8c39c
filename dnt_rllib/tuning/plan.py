"""What a sweep costs on K nodes of C CPUs, before anything runs (``tune --plan``).

The cost is the sum of parts measured on their own, each printed with where it comes from:

- before the trials, once: the driver's start; the GRU twin of each network (one process,
  none when cached here); each network's threshold fit, then its references on the curve
  episodes, one Ray task of one CPU each, in waves over the cluster's CPUs (none when
  cached here);
- the references on the evaluation episodes, one task per network, play beside the first
  round of trials when it leaves CPUs free, else before it;
- the trials: ``stop.time_total_s`` (the training budget, which Tune's clock counts) plus
  a trial's measured overhead beyond it (its start, the learning-curve evaluations and
  checkpoints, the final evaluation), in rounds of as many trials as the nodes hold
  (``1 + num_env_runners`` CPUs each; ``max_concurrent_trials`` at most).

Each part is the figure measured at the network size nearest to the sweep's (by U·N,
:data:`MEASURED`); one more than :data:`FAR` times away is marked extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from dnt_rllib.config import SystemConfig
from dnt_rllib.experiment.schema import ExperimentConfig
from dnt_rllib.validation import ConfigError


@dataclass(frozen=True)
class Measured:
    """The parts of a sweep measured at one network size (seconds of one CPU).

    A trial's overhead beyond its budget is its start, then its policy's play on the
    learning-curve episodes every ``curve_interval`` iterations and on the evaluation
    episodes: ``trial_start_s + policy_episode_s · (evaluation episodes + curve episodes ·
    ⌊budget / (iteration_s · curve_interval)⌋)``; ``policy_episode_s`` is what the measured
    overhead of a whole trial leaves for each episode its policy played."""

    num_users: int
    num_rbs: int
    twin_s: float  # pretraining the GRU twin (early stopping)
    fit_s: float  # the threshold fit (300 tuning episodes)
    reference_episode_s: float  # every reference (the rules, the ceiling's DP) on one episode
    trial_start_s: float  # from the trial's actor to its first iteration
    iteration_s: float  # one training iteration of the tuned SAC (8 envs)
    policy_episode_s: float  # the trained policy's play of one episode, checkpoints included
    source: str

    def trial_overhead_s(self, budget: float, episodes: int, curve: int, every: int) -> float:
        """A trial's wall time beyond its ``budget`` of training seconds (class doc)."""
        points = math.floor(budget / (self.iteration_s * every)) if curve else 0
        return self.trial_start_s + self.policy_episode_s * (episodes + curve * points)


#: The measured sizes, each part on its own on 2 otherwise idle cores (docs/cluster.md, "What
#: a sweep costs", gives the commands).
MEASURED = (
    Measured(
        10,
        6,
        twin_s=49.5,
        fit_s=5.5,
        reference_episode_s=0.0707,
        trial_start_s=13.0,
        iteration_s=1.0,
        policy_episode_s=0.031,
        source="U = 10, N = 6, measured 2026-12-06: `python -m dnt_rllib.twin train` 49.5 s; "
        "`python -m dnt_rllib.bench --evaluation 200`: fit 5.5 s, references 14.1 s for 200 "
        "episodes (tapes 0.8, rules 0.9, ceiling DP 11.5 and play 1.0); one scale_out.yaml "
        "trial of 120 s: 13 s from PENDING to training, ~1.0 s an iteration, 41 s beyond its "
        "budget: its start and 28 s for 300 + 50 × 12 episodes of its policy",
    ),
    Measured(
        200,
        100,
        twin_s=37.5,
        fit_s=26.3,
        reference_episode_s=0.214,
        trial_start_s=13.0,
        iteration_s=1.09,
        policy_episode_s=0.10,
        source="U = 200, N = 100, measured 2026-12-06: `python -m dnt_rllib.twin train` 37.5 s "
        "(9 epochs); `bench --evaluation 100`: fit 26.3 s, references 21.4 s for 100 episodes "
        "(ceiling DP 18.2); the trial from docs/realistic-cells.md (sweep_cell_slice.yaml, "
        "before): 130-140 s beyond its 600 s, 55 curve points; less the start measured at "
        "U = 10 (13 s), 122 s for 100 + 20 × 55 episodes of its policy",
    ),
)
#: The driver's start before the twin: imports, the checks, Ray's start or join (11 s
#: measured to the fits' start in the U = 10 trial above).
DRIVER_START_S = 11.0
#: A measured figure used more than this factor of U·N away is marked extrapolated.
FAR = 3.0


def nearest(config: SystemConfig) -> Measured:
    """The measured size nearest to ``config`` by log(U·N)."""
    size = config.num_users * config.num_rbs
    return min(MEASURED, key=lambda m: abs(math.log(size / (m.num_users * m.num_rbs))))


def is_far(config: SystemConfig, measured: Measured) -> bool:
    """Whether ``config``'s U·N is more than :data:`FAR` times from ``measured``'s."""
    ratio = config.num_users * config.num_rbs / (measured.num_users * measured.num_rbs)
    return not 1 / FAR <= ratio <= FAR


@dataclass(frozen=True)
class Part:
    """One line of the plan: what, its seconds each, how many, CPUs each, wall seconds."""

    what: str
    each_s: float
    count: int
    cpus: float
    wall_s: float
    note: str = ""

    @property
    def cpu_s(self) -> float:
        return self.each_s * self.count * self.cpus


@dataclass(frozen=True)
class Plan:
    """A sweep's parts on ``nodes`` × ``cpus``; its trials' rounds; its sources."""

    nodes: int
    cpus: int
    trials: int
    at_once: int
    bound: str  # what sets ``at_once``
    busy_nodes: int  # the nodes a round of trials fills
    rounds: int
    parts: list[Part]
    sources: list[str]

    @property
    def wall_s(self) -> float:
        return sum(p.wall_s for p in self.parts)

    @property
    def cpu_h(self) -> float:
        return sum(p.cpu_s for p in self.parts) / 3600


def trial_count(exp: ExperimentConfig) -> int:
    """Tune's trials: every grid point, ``num_samples`` times."""
    grid = [len(values) for domain, values in exp.search_space.values() if domain == "grid"]
    return math.prod(grid) * exp.num_samples


class Cached(NamedTuple):
    """What this machine's cache holds of a network: its twin, its fit, its references on
    the curve and on the evaluation episodes."""

    twin: bool
    fit: bool
    curve: bool
    evaluation: bool


def cached(config: SystemConfig, curve: range, evaluation: range) -> Cached:
    """What this machine's cache holds of ``config`` (:class:`Cached`)."""
    from dnt_rllib.policies.threshold import fit_path, load_or_fit
    from dnt_rllib.trial.references import references_path
    from dnt_rllib.twin.cache import cache_path

    twin = config.twin == "hold" or cache_path(config).is_file()
    if not fit_path(config).is_file():
        return Cached(twin, False, False, False)
    fit = load_or_fit(config)  # read from the cache
    return Cached(twin, True, not curve or references_path(config, fit, curve).is_file(),
                  not evaluation or references_path(config, fit, evaluation).is_file())  # fmt: skip


def make_plan(exp: ExperimentConfig, nodes: int, cpus: int) -> Plan:
    """The cost of ``exp`` on ``nodes`` nodes of ``cpus`` CPUs each (see the module doc)."""
    from dnt_rllib.policies.threshold import fit_key
    from dnt_rllib.tuning.checks import trial_resources
    from dnt_rllib.tuning.prepare import grid_networks
    from dnt_rllib.twin.cache import cache_path

    budget = exp.stop.get("time_total_s")
    if budget is None:
        raise ConfigError(
            "experiment.stop: --plan needs the trials' training budget, stop.time_total_s "
            f"(this one stops on {', '.join(exp.stop)})"
        )
    need = float(trial_resources(exp).required_resources.get("CPU", 1.0))
    per_node = int(cpus // need)
    if per_node == 0:
        raise ConfigError(f"--cpus {cpus}: a trial needs {need:g} CPUs (1 + num_env_runners)")
    trials = trial_count(exp)
    at_once, bound = nodes * per_node, f"{nodes} node(s) × {per_node}"
    if exp.max_concurrent_trials is not None and exp.max_concurrent_trials < at_once:
        at_once, bound = exp.max_concurrent_trials, "resources.max_concurrent_trials"
    rounds = math.ceil(trials / at_once)

    ev = exp.evaluation
    networks = list({fit_key(c): c for c in grid_networks(exp)}.values())
    measured = [nearest(c) for c in networks]
    state = [cached(c, ev.curve_seeds, ev.seeds) for c in networks]
    twins = {cache_path(c): m for c, m, s in zip(networks, measured, state, strict=True)
             if not s.twin}  # fmt: skip
    twin_s = [m.twin_s for m in twins.values()]
    pairs = list(zip(measured, state, strict=True))
    fits = [m.fit_s for m, s in pairs if not s.fit]
    curve = [m.reference_episode_s * len(ev.curve_seeds) for m, s in pairs if not s.curve]
    evaluation = [m.reference_episode_s * len(ev.seeds) for m, s in pairs if not s.evaluation]
    slots = nodes * cpus

    def tasks(what: str, seconds: list[float], total: int) -> Part:
        """Ray tasks of one CPU in waves over the cluster's CPUs (the longest sets each)."""
        waves = math.ceil(len(seconds) / slots)
        each = max(seconds, default=0.0)
        cached_note = f", {total - len(seconds)} cached here" if len(seconds) < total else ""
        return Part(what, each, len(seconds), 1.0, waves * each,
                    f"{waves} wave(s) of tasks on {slots} CPUs{cached_note}")  # fmt: skip

    overhead = max(m.trial_overhead_s(budget, len(ev.seeds), len(ev.curve_seeds),
                                      ev.curve_interval) for m in measured)  # fmt: skip
    trial_s = budget + overhead
    free = slots - min(trials, at_once) * need
    parts = [
        Part("the driver's start (imports, checks, Ray)", DRIVER_START_S, 1, 0.0, DRIVER_START_S),
        Part(
            "GRU twin pretraining, in the driver",
            max(twin_s, default=0.0),
            len(twin_s),
            1.0,
            sum(twin_s),
            "" if twin_s else "cached here",
        ),
        tasks("threshold fits", fits, len(networks)),
        tasks(f"references on the {len(ev.curve_seeds)} curve episodes", curve, len(networks)),
    ]
    beside = tasks(f"references on the {len(ev.seeds)} evaluation episodes", evaluation,
                   len(networks))  # fmt: skip
    if free >= 1 and beside.count:
        beside = Part(beside.what, beside.each_s, beside.count, 1.0, 0.0,
                      f"beside the first round, on its {free:g} free CPUs")  # fmt: skip
    parts += [
        beside,
        Part(
            f"trials: {budget} s of training (stop.time_total_s) + {overhead:.0f} s overhead",
            trial_s,
            trials,
            need,
            rounds * trial_s,
            f"{rounds} round(s) of up to {at_once}",
        ),
    ]
    sources = sorted({m.source + (" [extrapolated: U·N more than 3× away]"
                                  if is_far(c, m) else "")
                      for c, m in zip(networks, measured, strict=True)})  # fmt: skip
    busy = math.ceil(min(trials, at_once) / per_node)
    return Plan(nodes, cpus, trials, at_once, bound, busy, rounds, parts, sources)


def hours(seconds: float) -> str:
    """Seconds as '1 h 52 min', '11.7 min' or '20 s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60):d} min"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def describe(plan: Plan, exp: ExperimentConfig) -> str:
    """The plan as ``tune --plan`` prints it: a table, the totals, the sources."""
    rows = [
        f"| {p.what} | {hours(p.each_s)} | {p.count} | {p.cpu_s / 3600:.2f} | "
        f"{hours(p.wall_s) if p.wall_s else '-'} | {p.note} |"
        for p in plan.parts
    ]
    wall_h = plan.wall_s / 3600
    busy = ""
    if plan.busy_nodes < plan.nodes:
        busy = (f" ({plan.busy_nodes * wall_h:.1f} on the {plan.busy_nodes} the trials keep "
                "busy: cluster.yaml's autoscaler starts no more)")  # fmt: skip
    return "\n".join(
        [
            f"Plan for {exp.source or exp.name} on {plan.nodes} node(s) of {plan.cpus} CPUs "
            "(nothing was started):",
            f"{plan.trials} trials, {plan.at_once} at a time ({plan.bound}): "
            f"{plan.rounds} round(s)",
            "",
            "| part | each | count | CPU-h | wall | how |",
            "|---|---|---|---|---|---|",
            *rows,
            f"| **the sweep** | | | **{plan.cpu_h:.1f}** | **{hours(plan.wall_s)}** | |",
            "",
            f"Wall time {wall_h:.2f} h: {plan.nodes * wall_h:.1f} instance-hours of "
            f"{plan.nodes} worker node(s) held throughout{busy}, and {wall_h:.2f} of the "
            "head node.",
            "Measured parts:",
            *(f"  - {source}" for source in plan.sources),
        ]
    )
