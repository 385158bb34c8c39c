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
from dnt_rllib.twin.data import (
    SPLIT_STREAM,
    TORCH_STREAM,
    Normalisation,
    Windows,
    training_data,
)
from dnt_rllib.twin.gru import GRUPredictor, SharedGRUPredictor

#: Mini-batch size of eq. (12)'s updates (joint twin: windows of all U users).
BATCH_SIZE = 256
#: Mini-batch size of the shared twin, in user-windows (M positions of one user).
SHARED_BATCH_SIZE = 1024
#: User-windows in one epoch of the shared twin (a pass through a stream of reshuffles of
#: its data): its pool of user-windows grows with U up to the cap of
#: :data:`~dnt_rllib.config.SHARED_USER_TRAJECTORIES`, its time per epoch does not.
SHARED_EPOCH_ROWS = 20 * SHARED_BATCH_SIZE
#: User-windows the shared twin is validated on at most (a seeded random subset of those of
#: its validation trajectories), so that validation stays a small share of an epoch.
SHARED_VAL_ROWS = 16 * SHARED_BATCH_SIZE
#: The shared twin is validated, and kept, with an exponential moving average of its weights
#: over the steps (Polyak averaging; this decay per step averages over ~1/(1 − decay) steps):
#: its per-user offsets b_u each see few rows of a batch, and Adam's noise on them would
#: grow k-fold in a k-step rollout.
SHARED_EMA_DECAY = 0.99
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

    model: GRUPredictor | SharedGRUPredictor
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


def per_user(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Joint windows (n, M, 2U), targets (n, 2U) → user-windows (n·U, M, 2), their users
    (n·U,) and targets (n·U, 2), window-major: row i·U + u is user u of window i."""
    n, steps, dim = x.shape
    users = dim // 2
    x_users = x.reshape(n, steps, users, 2).transpose(1, 2).reshape(n * users, steps, 2)
    ids = torch.arange(users).repeat(n)
    return x_users.contiguous(), ids, y.reshape(n * users, 2)


def validation_rows(count: int, seed: int) -> torch.Tensor:
    """Indices of the shared twin's validation rows: all ``count``, or a seeded random
    :data:`SHARED_VAL_ROWS` of them, in order."""
    if count <= SHARED_VAL_ROWS:
        return torch.arange(count)
    rng = np.random.default_rng([seed, SPLIT_STREAM, 1])
    return torch.from_numpy(np.sort(rng.choice(count, SHARED_VAL_ROWS, replace=False)))


def user_means(users: torch.Tensor, y: torch.Tensor, num_users: int) -> torch.Tensor:
    """The mean of the rows of ``y`` (n, 2) of each user in ``users`` (n,): (U, 2)."""
    total = torch.zeros(num_users, 2, dtype=y.dtype).index_add_(0, users, y)
    count = torch.bincount(users, minlength=num_users).clamp(min=1).to(y.dtype)
    return total / count[:, None]


def _forward(
    model: GRUPredictor | SharedGRUPredictor, inputs: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """The model on (x,) joint windows, or on (x, users) user-windows (shared twin)."""
    if len(inputs) == 2:
        return model.forward_users(*inputs)
    return model(inputs[0])


@torch.no_grad()
def evaluate_loss(
    model: GRUPredictor | SharedGRUPredictor,
    x: torch.Tensor | tuple[torch.Tensor, ...],
    y: torch.Tensor,
    chunk: int = 8192,
) -> float:
    """Eq. (11) over a whole data set, in chunks; ``x`` is joint windows, or (user-windows,
    users) for the shared twin."""
    inputs = x if isinstance(x, tuple) else (x,)
    model.eval()
    total = 0.0
    for i in range(0, len(y), chunk):
        prediction = _forward(model, tuple(t[i : i + chunk] for t in inputs))
        total += float(torch.sum((prediction - y[i : i + chunk]) ** 2))
    return total / y.numel()


def train_twin(
    config: SystemConfig, *, progress: bool = True, threads: int = DEFAULT_THREADS
) -> TrainResult:
    """Simulate the training data for ``config`` and fit the GRU of eqs. (6)–(10) to eq. (11):
    the joint GRU over the whole state (``twin: gru``), or the shared cell per user with its
    offsets b_u (``twin: gru_shared``, trained on user-windows)."""
    start = time.perf_counter()
    shared = config.twin == "gru_shared"
    norm = Normalisation.from_config(config)
    train_windows, val_windows = training_data(config)
    x_train, y_train = to_tensors(train_windows, norm)
    x_val, y_val = to_tensors(val_windows, norm)
    del train_windows, val_windows
    train: tuple[torch.Tensor, ...] = (x_train,)
    val: tuple[torch.Tensor, ...] = (x_val,)
    batch, rows, ema = BATCH_SIZE, None, None
    if shared:
        x_u, ids, y_train = per_user(x_train, y_train)
        train = (x_u, ids)
        x_u, ids, y_val = per_user(x_val, y_val)
        keep = validation_rows(len(y_val), config.network_seed)
        val, y_val = (x_u[keep], ids[keep]), y_val[keep]
        del x_u, ids, x_train, x_val
        batch, rows, ema = SHARED_BATCH_SIZE, SHARED_EPOCH_ROWS, SHARED_EMA_DECAY
    hold_val_loss = float(torch.mean(y_val**2))  # the hold-last twin predicts zero displacement

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(config))
            model: GRUPredictor | SharedGRUPredictor
            if shared:
                model = SharedGRUPredictor(config.num_users, config.gru_hidden)
                with torch.no_grad():  # b_u starts at user u's mean move
                    model.user_bias.copy_(user_means(train[1], y_train, config.num_users))
            else:
                model = GRUPredictor(config.state_dim, config.gru_hidden)
            result = _fit(model, config, train, y_train, val, y_val, batch, rows, ema, progress)
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


def _copy(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    for target, source in zip(targets, sources, strict=True):
        target.copy_(source)


class _RowStream:
    """Row indices from an endless sequence of torch permutations of ``n`` rows."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pending = torch.empty(0, dtype=torch.long)

    def take(self, count: int) -> torch.Tensor:
        """The next ``count`` indices (each row once per permutation)."""
        parts, need = [], count
        while need > 0:
            if len(self.pending) == 0:
                self.pending = torch.randperm(self.n)
            parts.append(self.pending[:need])
            self.pending = self.pending[need:]
            need -= len(parts[-1])
        return torch.cat(parts)


def _fit(
    model: GRUPredictor | SharedGRUPredictor,
    config: SystemConfig,
    x_train: tuple[torch.Tensor, ...],
    y_train: torch.Tensor,
    x_val: tuple[torch.Tensor, ...],
    y_val: torch.Tensor,
    batch_size: int,
    epoch_rows: int | None,
    ema_decay: float | None,
    progress: bool,
) -> tuple[int, int, float, list[dict[str, float]]]:
    """The epoch loop over mini-batches of ``batch_size`` rows of ``x_train`` (the joint
    windows, or the user-windows and their users); an epoch is one reshuffled pass, or with
    ``epoch_rows`` the next that many rows of an endless stream of reshuffles. With
    ``ema_decay``, the weights validated and kept are the moving average of the steps' ones.
    Restores the best weights. Returns (best epoch, epochs run, loss, log)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=config.twin_learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=LR_DECAY, patience=LR_PATIENCE, threshold=MIN_IMPROVEMENT
    )
    best_loss, best_epoch, best_state = evaluate_loss(model, x_val, y_val), 0, None
    history: list[dict[str, float]] = []
    bar = tqdm(
        range(1, config.twin_max_epochs + 1),
        desc="shared GRU twin" if isinstance(model, SharedGRUPredictor) else "GRU twin",
        unit="epoch",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    epoch = 0
    rows = _RowStream(len(y_train))
    params = [p.data for p in model.parameters()]
    averaged = [p.clone() for p in params] if ema_decay is not None else []
    for epoch in bar:
        model.train()
        order = torch.randperm(len(y_train)) if epoch_rows is None else rows.take(epoch_rows)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = eq11_loss(_forward(model, tuple(t[idx] for t in x_train)), y_train[idx])
            loss.backward()
            optimiser.step()
            if ema_decay is not None:
                for mean, value in zip(averaged, params, strict=True):
                    mean.lerp_(value, 1.0 - ema_decay)
            total += float(loss.detach()) * len(idx)
        train_loss = total / len(order)
        if ema_decay is None:
            val_loss = evaluate_loss(model, x_val, y_val)
        else:
            raw = [p.clone() for p in params]
            _copy(params, averaged)  # validate (and keep) the averaged weights
            val_loss = evaluate_loss(model, x_val, y_val)
        scheduler.step(val_loss)
        lr = optimiser.param_groups[0]["lr"]
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr})
        if val_loss < best_loss * (1.0 - MIN_IMPROVEMENT):
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if ema_decay is not None:
            _copy(params, raw)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", best=best_epoch, lr=lr)
        if epoch - best_epoch >= STOP_PATIENCE:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_epoch, epoch, best_loss, history
