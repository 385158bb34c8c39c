"""The cost of one SAC update on this CPU: RLlib's replay path, ours, the lean learner, the
torch floor and the arithmetic limit, measured in one run.

    python -m dnt_rllib.bench --learner [--learner-seconds 10] [--json PATH]

Builds the paper's SAC trial (``build_algorithm_config``: Table I rates, 2×256 ReLU MLPs,
batch 256, no remote env runners, 8 envs) once per path (:data:`PATHS`: ``rllib``, RLlib's
``EpisodeReplayBuffer``, learner connectors and learner; ``fast``, the ring buffer of
:mod:`dnt_rllib.rllib_ext.fast_replay` and RLlib's learner; ``lean``, the ring buffer and the
learner of :mod:`dnt_rllib.rllib_ext.lean_learner`), trains it until learning has started,
then times:

- **ms per update**: one train batch sampled from the path's buffer and one
  ``learner_group.update`` on it, exactly the calls the path's training step makes;
- **ms per training step**: ``algo.train()`` divided by its training steps (one update
  plus the 8 × fragment env steps sampled and stored before it, the weight sync and
  metrics), what a trial pays.

The floor is the same update in plain torch on one thread (:func:`torch_floor_ms`: actor
and twin critics forward on o_t, actor and twin target critics on o_{t+1}, the four
losses, their backward passes, four Adam steps and the Polyak target update), ≈ 0.5 GFLOP.
The limit is that update's FLOPs (:func:`update_gflop`) at the rate this CPU multiplies the
update's own matrix shapes on one thread (:func:`matmul_gflops`): arithmetic and nothing else.
Last, one cProfile pass over ``algo.train()`` per path splits it into where the time goes
(:data:`SINKS`). cProfile charges Python calls more than torch kernels, so the
Python-heavy shares read high.
"""

from __future__ import annotations

import copy
import cProfile
import itertools
import os
import pstats
import time
from pathlib import Path
from typing import Any

from dnt_rllib import cli
from dnt_rllib.config import SystemConfig
from dnt_rllib.trial.spec import Resources, TrialSpec

#: (label, file the function is in, function): each a sink's inclusive time in cProfile.
SINKS: tuple[tuple[str, str, str], ...] = (
    ("replay buffer: sample 256 transitions", "episode_replay_buffer.py", "_sample_episodes"),
    ("ring buffer: sample 256 transitions", "dnt_rllib/rllib_ext/replay_ring.py", "sample"),
    ("learner connectors: episodes → tensors", "learner_connector_pipeline.py", "__call__"),
    ("RLlib learner: forward, backward, Adam", "torch_learner.py", "_uncompiled_update"),
    (
        "lean learner: forward, backward, Adam",
        "dnt_rllib/rllib_ext/lean_learner.py",
        "_uncompiled_update",
    ),
    ("replay buffer: add the sampled steps", "episode_replay_buffer.py", "add"),
    ("ring buffer: add the sampled steps", "dnt_rllib/rllib_ext/replay_ring.py", "add"),
    ("env runner: sample 8 env steps", "single_agent_env_runner.py", "sample"),
    ("weights learner → env runner", "env_runner_group.py", "sync_weights"),
    ("… of which our env's step", "dnt_rllib/env/", "step"),
)
#: Self time of every function in these folders (metrics are logged everywhere).
SELF_TIME: tuple[tuple[str, str], ...] = (("metrics logging (self time)", "rllib/utils/metrics/"),)


#: The paths compared, in the order printed: (replay.kind, learner.kind) of each.
PATHS: dict[str, tuple[str, str]] = {
    "rllib": ("rllib", "rllib"),
    "fast": ("fast", "rllib"),
    "lean": ("fast", "lean"),
}
#: Printed names of :data:`PATHS`.
PATH_LABELS = {
    "rllib": "RLlib's replay and learner (`replay.kind: rllib`)",
    "fast": "ring buffer, RLlib's learner (`replay.kind: fast`)",
    "lean": "ring buffer, lean learner (`learner.kind: lean`)",
}


def trial_spec(
    config: SystemConfig, envs: int = 8, replay: str = "fast", learner: str = "rllib"
) -> TrialSpec:
    """A paper SAC trial (the paper's settings and network), sampling in the trial process."""
    return TrialSpec.make(config, "SAC", replay=replay, learner=learner,
                          resources=Resources(num_envs_per_env_runner=envs))  # fmt: skip


def update_gflop(obs_dim: int, num_actions: int, hiddens: list[int], batch: int) -> float:
    """FLOPs of one discrete SAC update: six MLP forwards (actor on o_t and o_{t+1}, two
    critics on o_t, two target critics on o_{t+1}) and the backward of actor and both
    critics (≈ 2 forwards each), 2 FLOPs a multiply-add."""
    sizes = [obs_dim, *hiddens, num_actions]
    macs = sum(a * b for a, b in itertools.pairwise(sizes)) * batch
    return 2 * macs * (6 + 3 * 2) / 1e9


def matmul_gflops(
    obs_dim: int, num_actions: int, hiddens: list[int], batch: int, seconds: float = 1.0
) -> float:
    """GFLOP/s of one thread on the update's matrix products: every layer's forward
    (batch × in)·(in × out) and its two backward products, timed together."""
    import torch

    torch.set_num_threads(1)
    sizes = [obs_dim, *hiddens, num_actions]
    pairs = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        x, w, g = (
            torch.randn(batch, fan_in),
            torch.randn(fan_in, fan_out),
            torch.randn(batch, fan_out),
        )
        pairs.append((x, w, g))
    flop = sum(3 * 2 * batch * x.shape[1] * w.shape[1] for x, w, _ in pairs)

    def products() -> None:
        for x, w, g in pairs:
            x @ w  # forward
            g @ w.T  # gradient of the input
            x.T @ g  # gradient of the weight

    for _ in range(20):
        products()
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        products()
        rounds += 1
    return flop * rounds / (time.perf_counter() - started) / 1e9


def torch_floor_ms(
    obs_dim: int,
    num_actions: int,
    hiddens: list[int],
    batch: int = 256,
    updates: int = 200,
    gamma: float = 0.8,
    tau: float = 0.005,
) -> float:
    """ms per discrete SAC update (RLlib's loss, optimisers and target update) in plain
    torch on one thread, random data: the floor an update could cost on this CPU."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def mlp() -> nn.Sequential:
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hiddens:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        return nn.Sequential(*layers, nn.Linear(width, num_actions))

    actor, q1, q2 = mlp(), mlp(), mlp()
    targets = [copy.deepcopy(q1), copy.deepcopy(q2)]
    for p in (p for t in targets for p in t.parameters()):
        p.requires_grad_(False)
    log_alpha = torch.zeros(1, requires_grad=True)
    optims = [
        torch.optim.Adam(net.parameters(), lr=lr, eps=1e-7)
        for net, lr in ((q1, 1e-3), (q2, 1e-3), (actor, 1e-4))
    ] + [torch.optim.Adam([log_alpha], lr=0.0, eps=1e-7)]
    obs, nxt = torch.randn(batch, obs_dim), torch.randn(batch, obs_dim)
    actions = torch.randint(0, num_actions, (batch, 1))
    rewards, terminated = torch.randn(batch), torch.zeros(batch)
    huber = nn.HuberLoss(reduction="none")
    target_entropy = 0.98 * float(torch.log(torch.tensor(float(num_actions))))

    def update() -> None:
        alpha = log_alpha.exp()
        probs_next = torch.softmax(actor(nxt), -1)
        q_next = torch.min(targets[0](nxt), targets[1](nxt))
        q_a, q_b = q1(obs), q2(obs)
        probs = torch.softmax(actor(obs), -1)
        v_next = (probs_next * (q_next - alpha.detach() * probs_next.log())).sum(-1)
        target = (rewards + gamma * (1.0 - terminated) * v_next).detach()
        critic = [huber(q.gather(-1, actions).squeeze(-1), target).mean() for q in (q_a, q_b)]
        policy = (probs * (alpha.detach() * probs.log() - torch.min(q_a, q_b).detach())).sum(-1)
        entropy = (probs.log() * probs).sum(-1).detach()
        losses = [*critic, policy.mean(), -(log_alpha * (entropy + target_entropy)).mean()]
        for optim, loss in zip(optims, losses, strict=True):
            optim.zero_grad(set_to_none=True)
            loss.backward(retain_graph=True)
        for optim in optims:
            optim.step()
        with torch.no_grad():
            for net, target_net in zip((q1, q2), targets, strict=True):
                for p, tp in zip(net.parameters(), target_net.parameters(), strict=True):
                    tp.mul_(1.0 - tau).add_(p, alpha=tau)

    for _ in range(max(updates // 10, 5)):
        update()
    started = time.perf_counter()
    for _ in range(updates):
        update()
    return (time.perf_counter() - started) / updates * 1e3


def train_until_learning(algo: Any) -> None:
    """``algo.train()`` until the learner has updated at least once, and one more time."""
    while True:
        result = algo.train()
        trained = result.get("learners", {}).get("__all_modules__", {})
        if trained.get("num_module_steps_trained_lifetime", 0):
            algo.train()
            return


def update_once(algo: Any) -> None:
    """One train batch from the algorithm's buffer and one learner update on it, with the
    arguments its own training step uses (RLlib's DQN/SAC step, or ours)."""
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    config = algo.config
    timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 10**6}
    if hasattr(algo, "replay_batch"):
        algo.learner_group.update(batch=algo.replay_batch(), timesteps=timesteps)
        return
    episodes = algo.local_replay_buffer.sample(
        num_items=config.total_train_batch_size,
        n_step=config.n_step,
        batch_length_T=0,
        lookback=0,
        min_batch_length_T=0,
        gamma=config.gamma,
        beta=config.replay_buffer_config.get("beta"),
        sample_episodes=True,
    )
    algo.learner_group.update(episodes=episodes, timesteps=timesteps)


def ms_per_update(algo: Any, seconds: float) -> tuple[float, int]:
    """Wall ms per :func:`update_once` over ``seconds``."""
    updates, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        update_once(algo)
        updates += 1
    return (time.perf_counter() - started) / updates * 1e3, updates


def ms_per_training_step(algo: Any, seconds: float) -> tuple[float, int]:
    """Wall ms per training step (one learner update) over ``algo.train()`` calls."""
    updates, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        updates += int(algo.train()["num_training_step_calls_per_iteration"])
    return (time.perf_counter() - started) / updates * 1e3, updates


def sinks(algo: Any, iterations: int = 2) -> dict[str, float]:
    """Share of ``algo.train()`` time per sink (:data:`SINKS`, :data:`SELF_TIME`), from one
    cProfile pass of ``iterations`` iterations."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(iterations):
        algo.train()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in stats.values())
    out: dict[str, float] = {}
    for label, where, name in SINKS:
        out[label] = sum(
            ct
            for (file, _, func), (_, _, _, ct, callers) in stats.items()
            if func == name
            and where in file.replace(os.sep, "/")
            # inclusive time of the outermost call only (not of its recursive calls)
            and not any(c[2] == name and where in c[0] for c in callers)
        )
    for label, where in SELF_TIME:
        out[label] = sum(tt for (file, _, _), (_, _, tt, _, _) in stats.items() if where in file)
    return {label: t / total for label, t in out.items() if t > 0}


def measure_path(config: SystemConfig, path: str, seconds: float) -> dict[str, Any]:
    """ms per update and per training step of one of :data:`PATHS`, and its time sinks."""
    from dnt_rllib.rllib_ext.callbacks import DNTMetricsCallback
    from dnt_rllib.rllib_ext.rllib_env import RLlibDNTEnv
    from dnt_rllib.trial.rllib_config import build_algorithm_config

    replay, learner = PATHS[path]
    spec = trial_spec(config, replay=replay, learner=learner)
    algo_config = build_algorithm_config(spec, RLlibDNTEnv).callbacks(DNTMetricsCallback)
    algo = algo_config.build_algo()
    try:
        train_until_learning(algo)
        update_ms, updates = ms_per_update(algo, seconds)
        step_ms, steps = ms_per_training_step(algo, seconds)
        space = algo.env_runner.env.single_observation_space
        return {
            "update_ms": update_ms,
            "updates": updates,
            "step_ms": step_ms,
            "steps": steps,
            "shares": sinks(algo),
            "obs_dim": int(space.shape[0]),
            "num_actions": int(algo.env_runner.env.single_action_space.n),
            "batch": int(algo_config.train_batch_size_per_learner),
        }
    finally:
        algo.stop()


def main(config: SystemConfig, seconds: float = 10.0, json_path: Path | None = None) -> int:
    """Print ms per SAC update on every path of :data:`PATHS`, the torch floor and the
    arithmetic limit, their ratios and the top time sinks; ``json_path`` gets the figures
    (docs/speed.md, "The learner's cost")."""
    import json

    import ray
    import torch
    from threadpoolctl import threadpool_limits

    from dnt_rllib.trial.settings import PAPER_MODEL, REPLAY_DEFAULTS, default_learner
    from dnt_rllib.twin import make_twin

    torch.set_num_threads(1)  # as in a trial (trainable.train_trial)
    threadpool_limits(1)
    config = config.replace(twin_cache_dir=str(Path(config.twin_cache_dir).resolve()))
    if config.twin != "hold":
        make_twin(config)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
    )
    try:
        paths = {path: measure_path(config, path, seconds) for path in PATHS}
    finally:
        ray.shutdown()
    first = paths["fast"]
    hiddens = list(PAPER_MODEL["fcnet_hiddens"])
    obs_dim, num_actions, batch = first["obs_dim"], first["num_actions"], first["batch"]
    floor_ms = torch_floor_ms(obs_dim, num_actions, hiddens, batch)
    gflop = update_gflop(obs_dim, num_actions, hiddens, batch)
    rate = matmul_gflops(obs_dim, num_actions, hiddens, batch)
    limit_ms = gflop / rate * 1e3
    # the path the shipped YAMLs train on: the default replay and learner of a SAC trial
    default = (REPLAY_DEFAULTS["kind"], default_learner("SAC", {}, 0))
    shipped = next(path for path, kinds in PATHS.items() if kinds == default)
    print(
        f"\n## One SAC update (batch {batch}, {'×'.join(map(str, hiddens))} MLPs, "
        f"{obs_dim} inputs, {num_actions} actions), one thread, "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at the start\n"
    )
    print("| | ms per update | × floor | ms per training step (update + 8 × fragment env "
          "steps, sync, metrics) |\n|---|---|---|---|")  # fmt: skip
    for path, label in PATH_LABELS.items():
        got = paths[path]
        print(f"| {label} | {got['update_ms']:.1f} ({got['updates']} updates) | "
              f"{got['update_ms'] / floor_ms:.2f}× | {got['step_ms']:.1f} |")  # fmt: skip
    print(f"| torch floor, same nets and loss ({gflop:.2f} GFLOP, "
          f"{gflop / floor_ms * 1e3:.0f} GFLOP/s) | {floor_ms:.1f} | 1.00× | – |")  # fmt: skip
    print(f"| arithmetic limit: {gflop:.2f} GFLOP at {rate:.0f} GFLOP/s (one thread, the "
          f"update's matrix shapes) | {limit_ms:.1f} | "
          f"{limit_ms / floor_ms:.2f}× | – |")  # fmt: skip
    rllib, fast, lean = paths["rllib"], paths["fast"], paths["lean"]
    print(f"\nfast / RLlib: {rllib['update_ms'] / fast['update_ms']:.1f}× fewer ms per update; "
          f"lean / fast: {fast['update_ms'] / lean['update_ms']:.2f}× fewer ms per update, "
          f"{fast['step_ms'] / lean['step_ms']:.2f}× fewer per training step")  # fmt: skip
    for path in PATHS:
        print(f"\n| where `algo.train()` spends its time, {path} (cProfile) "
              "| share |\n|---|---|")  # fmt: skip
        for label, share in sorted(paths[path]["shares"].items(), key=lambda kv: -kv[1]):
            print(f"| {label} | {100 * share:.1f} % |")
    if json_path is not None:
        figures = {
            "rllib_ms_per_update": rllib["update_ms"],
            "fast_ms_per_update": fast["update_ms"],
            "lean_ms_per_update": lean["update_ms"],
            "ms_per_update": paths[shipped]["update_ms"],
            "floor_ms_per_update": floor_ms,
            "limit_ms_per_update": limit_ms,
            "rllib_ms_per_training_step": rllib["step_ms"],
            "fast_ms_per_training_step": fast["step_ms"],
            "lean_ms_per_training_step": lean["step_ms"],
            "ms_per_training_step": paths[shipped]["step_ms"],
            "matmul_gflops": rate,
            "load_average": load,
        }
        try:  # checked before the work (bench.check_args); its folders made now
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(figures, indent=2) + "\n")
        except OSError as err:
            return cli.refuse(f"--json {json_path}: {err.strerror or err}")
        print(f"\nwrote {json_path}")
    return 0
