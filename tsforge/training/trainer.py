"""One training loop for every torch forecaster.

It knows nothing about model families: a family passes its module, its training
tensors (first axis = samples) and a ``loss_fn(module, batch) -> loss``.  The loop
adds what every family needs: device ``auto`` (CUDA when present), bf16/fp16
autocast on CUDA, pinned-memory batching, a budget of optimiser steps, a
chronological validation split, early stopping with the best weights restored,
a learning-rate schedule,
gradient clipping, an ``after_step`` hook (used by stable models to project
their weights), checkpoints that hold only tensors and plain values
(``torch.load(weights_only=True)``), resumption and a progress bar.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tsforge.errors import ConfigError
from tsforge.optional import require
from tsforge.training.device import amp_dtype, resolve_device, seed_everything

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("cosine", "plateau", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training loop (not of the model).

    Training is budgeted in optimiser steps, not epochs: ``max_steps`` Adam steps of
    ``batch_size`` samples, with the validation loss measured after every pass over
    the data and training stopped ``patience`` passes after its best.  On 1,050
    readings (840 training windows) a pass is 27 steps and the budget 185 passes; on
    12,000 readings it is ~300 steps and ~16 passes.  A fixed small epoch count
    stopped the mlp while it was still learning (ETTh1 HUFL, h=12: MASE 1.241 after
    5 epochs of batch 64, 1.071 after 30 of batch 256, 0.888 with this budget;
    docs/accuracy.md).  ``epochs`` only caps the number of passes.  A pass counts as
    progress when it lowers the best validation loss by more than ``min_delta`` and
    by more than the share ``rel_delta`` of it (a cosine tail improves by crumbs).
    """

    epochs: int = 1000
    batch_size: int = 32
    max_steps: int | None = 5000
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    patience: int | None = 20
    min_delta: float = 0.0
    rel_delta: float = 1e-3
    val_fraction: float = 0.2
    lr_schedule: str = "cosine"
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    progress: bool = True
    checkpoint_dir: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer '{self.optimizer}' unknown; valid: {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"lr_schedule '{self.lr_schedule}' unknown; valid: {SCHEDULES}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 or None, got {self.max_steps}")

    def total_steps(self, n_samples: int) -> int:
        """Optimiser steps the budget allows on ``n_samples`` training samples."""
        per_epoch = max(1, math.ceil(n_samples / self.batch_size))
        total = self.epochs * per_epoch
        return total if self.max_steps is None else min(total, self.max_steps)


@dataclass
class TrainResult:
    """What happened during training."""

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    steps_run: int = 0
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LossFn = Callable[[Any, tuple[Any, ...]], Any]


def make_optimizer(module: Any, config: TrainConfig) -> Any:
    torch = require("torch", "training")
    params = [p for p in module.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: Any, config: TrainConfig, steps_per_epoch: int) -> Any | None:
    torch = require("torch", "training")
    if config.lr_schedule == "cosine":
        total = config.total_steps(steps_per_epoch * config.batch_size)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    return None


def chronological_split(
    tensors: tuple[Any, ...], val_fraction: float
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """Split samples in time order: the last ``val_fraction`` validate (no look-ahead leak)."""
    n = tensors[0].shape[0]
    n_val = round(n * val_fraction)
    if n_val < 1 or n - n_val < 1:
        return tensors, None
    return tuple(t[: n - n_val] for t in tensors), tuple(t[n - n_val :] for t in tensors)


def train(
    module: Any,
    tensors: tuple[Any, ...],
    loss_fn: LossFn,
    config: TrainConfig,
    *,
    val_tensors: tuple[Any, ...] | None = None,
    after_step: Callable[[Any], None] | None = None,
    desc: str = "training",
) -> TrainResult:
    """Train ``module`` in place and restore its best validation weights.

    Parameters
    ----------
    module
        The ``torch.nn.Module`` to train; moved to the chosen device and back to CPU at the end.
    tensors
        Training tensors whose first axis indexes samples (e.g. windows and targets).
    loss_fn
        ``loss_fn(module, batch) -> scalar loss`` where ``batch`` holds one slice of each tensor.
    config
        Loop settings; see :class:`TrainConfig`.
    val_tensors
        Validation tensors; if None, the last ``config.val_fraction`` of ``tensors`` in time order.
    after_step
        Called with the module after every optimiser step (e.g. a stability projection).
    """
    torch = require("torch", "training")
    seed_everything(config.seed)
    device = resolve_device(config.device)
    if val_tensors is None:
        tensors, val_tensors = chronological_split(tensors, config.val_fraction)
    module.to(device)
    optimizer = make_optimizer(module, config)
    n = tensors[0].shape[0]
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch)
    autocast_dtype = amp_dtype(device) if config.amp else None
    scaler = (
        torch.amp.GradScaler("cuda")
        if autocast_dtype is not None and autocast_dtype == torch.float16
        else None
    )
    if device.type == "cuda":
        tensors = tuple(t.pin_memory() for t in tensors)
    generator = torch.Generator().manual_seed(config.seed)

    result = TrainResult(epochs_run=0, best_epoch=-1, best_val_loss=math.inf, device=str(device))
    best_state = copy.deepcopy(module.state_dict())
    start_epoch = 0
    ckpt = Path(config.checkpoint_dir) / "last.pt" if config.checkpoint_dir else None
    if ckpt is not None and config.resume and ckpt.exists():
        start_epoch, best_state = _load_checkpoint(ckpt, module, optimizer, scheduler, result)

    budget = config.total_steps(n)
    bad_epochs = 0
    t0 = time.perf_counter()
    bar = _progress(range(start_epoch, config.epochs), config.progress, desc)
    for epoch in bar:
        module.train()
        # the shuffle of epoch e depends only on (seed, e), so a resumed run sees the same order
        generator.manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator)
        total, count = 0.0, 0
        for start in range(0, n, config.batch_size):
            if result.steps_run >= budget:
                break
            result.steps_run += 1
            idx = order[start : start + config.batch_size]
            batch = tuple(t[idx].to(device, non_blocking=True) for t in tensors)
            optimizer.zero_grad(set_to_none=True)
            use_amp = autocast_dtype is not None
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_amp):
                loss = loss_fn(module, batch)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if after_step is not None:
                after_step(module)
            if scheduler is not None and config.lr_schedule == "cosine":
                scheduler.step()
            total += float(loss.detach()) * idx.shape[0]
            count += idx.shape[0]
        train_loss = total / max(count, 1)
        val_loss = evaluate(module, val_tensors, loss_fn, device) if val_tensors else train_loss
        if scheduler is not None and config.lr_schedule == "plateau":
            scheduler.step(val_loss)
        result.train_losses.append(train_loss)
        result.val_losses.append(val_loss)
        result.epochs_run = epoch + 1
        best = result.best_val_loss
        margin = max(config.min_delta, config.rel_delta * abs(best)) if math.isfinite(best) else 0
        if val_loss < best - margin:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(module.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if ckpt is not None:
            _save_checkpoint(ckpt, module, optimizer, scheduler, result, best_state, epoch + 1)
        if config.patience is not None and bad_epochs > config.patience:
            result.stopped_early = True
            break
        if result.steps_run >= budget:
            break
    if hasattr(bar, "close"):
        bar.close()
    module.load_state_dict(best_state)
    module.to("cpu")
    module.eval()
    result.seconds = time.perf_counter() - t0
    return result


def evaluate(module: Any, tensors: tuple[Any, ...], loss_fn: LossFn, device: Any) -> float:
    """Mean loss over ``tensors`` in evaluation mode, without gradients."""
    torch = require("torch", "training")
    module.eval()
    total, count = 0.0, 0
    n = tensors[0].shape[0]
    with torch.no_grad():
        for start in range(0, n, 4096):
            batch = tuple(t[start : start + 4096].to(device) for t in tensors)
            total += float(loss_fn(module, batch)) * batch[0].shape[0]
            count += batch[0].shape[0]
    return total / max(count, 1)


def _progress(iterable: Any, enabled: bool, desc: str) -> Any:
    from tsforge.progress import track

    return track(iterable, desc, "epoch", force=enabled)


def _save_checkpoint(
    path: Path, module: Any, optimizer: Any, scheduler: Any, result: TrainResult,
    best_state: dict[str, Any], epoch: int,
) -> None:
    torch = require("torch", "training")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "epoch": epoch,
        "model": module.state_dict(),
        "best_model": best_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "result": json.dumps(result.to_dict()),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _load_checkpoint(
    path: Path, module: Any, optimizer: Any, scheduler: Any, result: TrainResult
) -> tuple[int, dict[str, Any]]:
    torch = require("torch", "training")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"]:
        scheduler.load_state_dict(payload["scheduler"])
    saved = json.loads(payload["result"])
    for key, value in saved.items():
        setattr(result, key, value)
    return int(payload["epoch"]), payload["best_model"]
