"""Training of the GRU twin, §III-B: mini-batch minimisation of eq. (11) with early stopping.

Loss: eq. (11), L^G = 1/(2U)·‖ŝ'_{t+1} − s_{t+1}‖², the mean squared error over the 2U
coordinates, computed in the model's normalised displacement units (the raw-coordinate loss
divided by Δl², the same minimiser). Optimiser: Adam with learning rate
``config.twin_learning_rate`` in place of eq. (12)'s plain SGD step — Adam's per-parameter
step sizes make one learning rate work across network sizes and converge in a few tens of
epochs, which matters because Tune workers train the twin on first use. The learning rate is
cut by ``LR_DECAY`` when the validation loss stalls for ``LR_PATIENCE`` epochs; training stops
after ``twin_max_epochs`` or ``STOP_PATIENCE`` epochs without improvement, and the weights of
the best validation epoch are kept.

Seeded: data from ``default_rng([network_seed, 1, 0])``, the split and the torch draws
(initialisation, shuffling) from ``network_seed`` too; the global torch RNG is left untouched.
The same config gives the same weights on the same machine and thread count.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.data import TORCH_STREAM, Normalisation, Windows, training_data
from dnt_rllib.twin.gru import GRUPredictor

#: Mini-batch size of eq. (12)'s updates.
BATCH_SIZE = 256
#: Epochs without a better validation loss before the learning rate is cut.
LR_PATIENCE = 2
#: Factor of each learning-rate cut.
LR_DECAY = 0.3
#: Epochs without a better validation loss before training stops.
STOP_PATIENCE = 6
#: Relative improvement that counts as better.
MIN_IMPROVEMENT = 1e-4
#: torch intra-op threads while training (kept modest: Ray workers share the machine).
DEFAULT_THREADS = 1


@dataclass
class TrainResult:
    """A trained model with what the checkpoint records about its training."""

    model: GRUPredictor
    norm: Normalisation
    best_epoch: int
    epochs_run: int
    val_loss: float  # eq. (11) of the best epoch, normalised units
    hold_val_loss: float  # eq. (11) of the hold-last twin on the same windows
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def info(self) -> dict[str, float | int]:
        """Scalar training facts for the checkpoint metadata."""
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "val_loss": self.val_loss,
            "hold_val_loss": self.hold_val_loss,
            "seconds": self.seconds,
        }


def torch_seed(config: SystemConfig) -> int:
    """The seed of the torch draws (initialisation, shuffling) for ``config``."""
    return int(np.random.default_rng([config.network_seed, TORCH_STREAM]).integers(2**62))


def to_tensors(windows: Windows, norm: Normalisation) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised float32 model inputs (n, M, 2U) and eq. (10) targets (n, 2U)."""
    x = norm.inputs(windows.inputs)
    y = norm.targets(windows.targets, windows.inputs[:, -1, :])
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


def eq11_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (11) averaged over the batch: mean over the 2U coordinates of the squared error."""
    return torch.mean((prediction - target) ** 2)


@torch.no_grad()
def evaluate_loss(
    model: GRUPredictor, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192
) -> float:
    """Eq. (11) over a whole data set, in chunks."""
    model.eval()
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float(torch.sum((model(x[i : i + chunk]) - y[i : i + chunk]) ** 2))
    return total / y.numel()


def train_twin(
    config: SystemConfig, *, progress: bool = True, threads: int = DEFAULT_THREADS
) -> TrainResult:
    """Simulate the training data for ``config`` and fit the GRU of eqs. (6)–(10) to eq. (11)."""
    start = time.perf_counter()
    norm = Normalisation.from_config(config)
    train_windows, val_windows = training_data(config)
    x_train, y_train = to_tensors(train_windows, norm)
    x_val, y_val = to_tensors(val_windows, norm)
    hold_val_loss = float(torch.mean(y_val**2))  # the hold-last twin predicts zero displacement

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(config))
            model = GRUPredictor(config.state_dim, config.gru_hidden)
            result = _fit(model, config, x_train, y_train, x_val, y_val, progress)
    finally:
        torch.set_num_threads(old_threads)
    best_epoch, epochs_run, val_loss, history = result
    return TrainResult(
        model=model.eval(),
        norm=norm,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        val_loss=val_loss,
        hold_val_loss=hold_val_loss,
        seconds=time.perf_counter() - start,
        history=history,
    )


def _fit(
    model: GRUPredictor,
    config: SystemConfig,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    progress: bool,
) -> tuple[int, int, float, list[dict[str, float]]]:
    """The epoch loop; restores the best weights. Returns (best epoch, epochs run, loss, log)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=config.twin_learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=LR_DECAY, patience=LR_PATIENCE, threshold=MIN_IMPROVEMENT
    )
    best_loss, best_epoch, best_state = evaluate_loss(model, x_val, y_val), 0, None
    history: list[dict[str, float]] = []
    bar = tqdm(
        range(1, config.twin_max_epochs + 1),
        desc="GRU twin",
        unit="epoch",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    epoch = 0
    for epoch in bar:
        model.train()
        order = torch.randperm(len(x_train))
        total = 0.0
        for i in range(0, len(order), BATCH_SIZE):
            idx = order[i : i + BATCH_SIZE]
            optimiser.zero_grad(set_to_none=True)
            loss = eq11_loss(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        train_loss = total / len(order)
        val_loss = evaluate_loss(model, x_val, y_val)
        scheduler.step(val_loss)
        lr = optimiser.param_groups[0]["lr"]
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr})
        if val_loss < best_loss * (1.0 - MIN_IMPROVEMENT):
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", best=best_epoch, lr=lr)
        if epoch - best_epoch >= STOP_PATIENCE:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_epoch, epoch, best_loss, history
