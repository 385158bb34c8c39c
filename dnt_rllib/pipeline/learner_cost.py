"""The cost of one RLlib SAC update on this CPU, against the torch floor of the same nets.

    python -m dnt_rllib.bench --learner [--learner-seconds 10]

Builds the paper's SAC trial (``build_algorithm_config``: Table I rates, 2×256 ReLU MLPs,
batch 256, ``EpisodeReplayBuffer``, no remote env runners, 8 envs) and times ``algo.train()``
once learning has started: ms per SAC training step, which is one learner update of a
256-transition batch plus the 8 env steps sampled before it. The floor is the same update
in plain torch on one thread (:func:`torch_floor_ms`: actor and twin critics forward on
o_t, actor and twin target critics on o_{t+1}, the four losses, their backward passes,
four Adam steps and the Polyak target update), ≈ 0.5 GFLOP. Last, one cProfile pass over
``algo.train()`` splits the update into where the time goes (:data:`SINKS`). cProfile
charges Python calls more than torch kernels, so the Python-heavy shares read high.
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

from dnt_rllib.config import SystemConfig

#: (label, file the function is in, function): each a sink's inclusive time in cProfile.
SINKS: tuple[tuple[str, str, str], ...] = (
    ("replay buffer: sample 256 transitions", "episode_replay_buffer.py", "_sample_episodes"),
    ("learner connectors: episodes → tensors", "learner_connector_pipeline.py", "__call__"),
    ("torch: forward, backward, Adam, targets", "torch_learner.py", "_uncompiled_update"),
    ("replay buffer: add 8 steps", "episode_replay_buffer.py", "add"),
    ("env runner: sample 8 env steps", "single_agent_env_runner.py", "sample"),
    ("weights learner → env runner", "env_runner_group.py", "sync_weights"),
    ("… of which our env's step", "dnt_rllib/env/", "step"),
)
#: Self time of every function in these folders (metrics are logged everywhere).
SELF_TIME: tuple[tuple[str, str], ...] = (("metrics logging (self time)", "rllib/utils/metrics/"),)


def trial_params(config: SystemConfig, envs: int = 8) -> dict[str, Any]:
    """A paper SAC trial (``training: {}``, ``model: {}``), sampling in the trial process."""
    return {
        "algorithm": "SAC",
        "seed": 0,
        "env": config.to_dict(),
        "training": {},
        "model": {},
        "num_env_runners": 0,
        "num_envs_per_env_runner": envs,
    }


def update_gflop(obs_dim: int, num_actions: int, hiddens: list[int], batch: int) -> float:
    """FLOPs of one discrete SAC update: six MLP forwards (actor on o_t and o_{t+1}, two
    critics on o_t, two target critics on o_{t+1}) and the backward of actor and both
    critics (≈ 2 forwards each), 2 FLOPs a multiply-add."""
    sizes = [obs_dim, *hiddens, num_actions]
    macs = sum(a * b for a, b in itertools.pairwise(sizes)) * batch
    return 2 * macs * (6 + 3 * 2) / 1e9


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


def ms_per_update(algo: Any, seconds: float) -> tuple[float, int]:
    """Wall ms per SAC training step (one learner update) over ``algo.train()`` calls."""
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
    return {label: t / total for label, t in out.items()}


def main(config: SystemConfig, seconds: float = 10.0) -> int:
    """Print ms per SAC update, the torch floor, their ratio and the top time sinks."""
    import ray
    import torch
    from threadpoolctl import threadpool_limits

    from dnt_rllib.pipeline.algorithms import PAPER_MODEL, build_algorithm_config
    from dnt_rllib.pipeline.callbacks import DNTMetricsCallback
    from dnt_rllib.pipeline.rllib_env import RLlibDNTEnv
    from dnt_rllib.twin import make_twin

    torch.set_num_threads(1)  # as in a trial (trainable.train_trial)
    threadpool_limits(1)
    config = config.replace(twin_cache_dir=str(Path(config.twin_cache_dir).resolve()))
    if config.twin == "gru":
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
        params = trial_params(config)
        algo_config = build_algorithm_config(params, RLlibDNTEnv).callbacks(DNTMetricsCallback)
        algo = algo_config.build_algo()
        try:
            train_until_learning(algo)
            rllib_ms, updates = ms_per_update(algo, seconds)
            space = algo.env_runner.env.single_observation_space
            num_actions = int(algo.env_runner.env.single_action_space.n)
            hiddens = list(PAPER_MODEL["fcnet_hiddens"])
            batch = int(algo_config.train_batch_size_per_learner)
            floor_ms = torch_floor_ms(space.shape[0], num_actions, hiddens, batch)
            shares = sinks(algo)
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    gflop = update_gflop(space.shape[0], num_actions, hiddens, batch)
    print(
        f"\n## One SAC update (batch {batch}, {'×'.join(map(str, hiddens))} MLPs, "
        f"{space.shape[0]} inputs, {num_actions} actions), one thread, "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at the start\n"
    )
    print("| | ms per update |\n|---|---|")
    print(f"| RLlib `algo.train()`, per training step ({updates} updates) | {rllib_ms:.1f} |")
    print(f"| torch floor, same nets and loss ({gflop:.2f} GFLOP, "
          f"{gflop / floor_ms * 1e3:.0f} GFLOP/s) | {floor_ms:.1f} |")  # fmt: skip
    print(f"| ratio RLlib / floor | {rllib_ms / floor_ms:.1f}× |")
    print("\n| where `algo.train()` spends its time (cProfile) | share |\n|---|---|")
    for label, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {100 * share:.1f} % |")
    return 0
