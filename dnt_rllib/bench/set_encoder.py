"""The set encoder's cost per batch, its fused pooling against autograd's, measured in one run.

    python -m dnt_rllib.bench --set-encoder

For each (U, N) of :data:`SIZES`, one batch of 256 ``'set'`` observations (one frame, the
random-walk layout) through :class:`~dnt_rllib.rllib_ext.set_model.SetEncoder` (the default
``set_hiddens``, ρ 128 × 2), forward and backward, on one thread, in ms:

- **autograd**: φ and ψ applied to every item, then autograd's ``mean`` and ``amax`` (the
  path before :class:`~dnt_rllib.rllib_ext.set_model.ReluMeanMax`);
- **fused**: the encoder as trials run it;
- **MLP on decision**: RLlib's first two layers (128 × 2) on the ``'decision'`` observation
  of the same cell (4U + N + 4 inputs), the flat model the set model stands beside.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from dnt_rllib.env.observation import SET_HEADER_UNIT, SetLayout
from dnt_rllib.rllib_ext.set_model import ItemEncoder, SetEncoder, SetEncoderConfig, mlp
from dnt_rllib.trial.settings import SET_HIDDENS

#: The cells measured: the paper's and the realistic sizes of docs/realistic-cells.md.
SIZES = ((10, 6), (200, 100), (500, 275))
#: Observations per batch (the tuned SAC's train batch), and ρ's layers.
BATCH, HIDDENS = 256, [128, 128]


def autograd_pool(items: ItemEncoder, x: torch.Tensor) -> torch.Tensor:
    """``[mean_i φ(x_i), max_i φ(x_i)]`` through autograd's own ops (the reference)."""
    h = torch.relu(items.last(items.inner(x)))
    return torch.cat([h.mean(1), h.amax(1)], dim=-1)


def ms_per_call(step: Callable[[], None], seconds: float) -> float:
    """Mean ms of ``step`` over ``seconds`` (after two warm-up calls)."""
    step()
    step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e3


def measure(users: int, rbs: int, seconds: float) -> dict[str, float]:
    """ms per forward and backward of a batch at (U, N) on each path."""
    layout = SetLayout(globals=4, user_features=5, users=users, rbs=rbs, frames=1)
    obs = torch.rand(BATCH, layout.frame)
    obs[:, : SetLayout.HEADERS] = torch.tensor([users, rbs]) * SET_HEADER_UNIT
    config = SetEncoderConfig(input_dims=[layout.frame], item_hiddens=list(SET_HIDDENS),
                              hidden_layer_dims=HIDDENS)  # fmt: skip
    encoder = SetEncoder(config)

    def fused() -> None:
        encoder.net(encoder.pooled(obs)).sum().backward()

    def reference() -> None:
        glob, u, n = encoder.split(obs)
        pooled = [autograd_pool(encoder.users, u), autograd_pool(encoder.rbs, n), glob]
        encoder.net(torch.cat(pooled, dim=-1)).sum().backward()

    flat = torch.rand(BATCH, 4 * users + rbs + 4)
    flat_mlp = mlp([flat.shape[1], *HIDDENS], "relu")
    return {
        "autograd": ms_per_call(reference, seconds),
        "fused": ms_per_call(fused, seconds),
        "mlp": ms_per_call(lambda: flat_mlp(flat).sum().backward(), seconds),
    }


def main(seconds: float = 2.0) -> int:
    """Print the table (module docstring), one thread."""
    torch.set_num_threads(1)
    print(f"## set encoder, batch of {BATCH}, forward + backward, one thread, ms "
          f"(set_hiddens {SET_HIDDENS}, ρ {HIDDENS})")  # fmt: skip
    print("| (U, N) | autograd | fused | autograd / fused | MLP on decision |")
    print("|---|---|---|---|---|")
    for users, rbs in SIZES:
        ms = measure(users, rbs, seconds)
        print(f"| ({users}, {rbs}) | {ms['autograd']:.2f} | {ms['fused']:.2f} | "
              f"{ms['autograd'] / ms['fused']:.1f}× | {ms['mlp']:.2f} |")  # fmt: skip
    return 0
