"""The one training loop: Adam, fixed steps, validation every `eval_every`, best checkpoint, timing.

Methods only define losses; this loop owns the optimizer, seeding, evaluation and model selection
(highest validation accuracy, as in the paper). Every step is timed so Fig. 3's per-epoch training
time is a measurement, not an estimate.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from benchmark.data.base import endless, iterate
from benchmark.registry import UserError
from methods.base import Method


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so the same seed gives the same weights on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Move every tensor of a batch to `device`."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def accuracy(model: nn.Module, dataset: Dataset, *, batch_size: int = 256,
             device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy (%) of `model` in eval mode on a whole dataset; the model's mode is restored."""
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for batch in iterate(dataset, batch_size):
            batch = to_device(batch, torch.device(device))
            correct += (model(batch["x"]).argmax(1) == batch["y"]).sum().item()
            total += len(batch["y"])
    finally:
        model.train(was_training)
    return 100.0 * correct / max(total, 1)


@dataclass
class TrainResult:
    """What training produced: the best state and the curve that selected it."""

    best_state: dict[str, Tensor]
    best_step: int
    best_val_acc: float
    curve: list[dict[str, float]] = field(default_factory=list)
    step_time_s: float = 0.0
    steps_per_epoch: float = 0.0
    total_time_s: float = 0.0
    #: the step whose loss was not finite when training stopped there (stop_on_divergence), else None
    diverged_at: int | None = None

    @property
    def time_per_epoch_s(self) -> float:
        """Median step time x steps in one pass over the training split (Fig. 3's x axis)."""
        return self.step_time_s * self.steps_per_epoch


class DivergedError(UserError):
    """A non-finite training loss (the CLI reports it as one line; a sweep records the trial as diverged)."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def training_step(method: Method, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], step: int, *,
                  seed: int) -> tuple[Tensor, dict[str, float]]:
    """One optimizer step of `method` on `batch` (finished on the device when it is a GPU); a NaN loss is a
    DivergedError naming the method, step and seed."""
    method.train()
    loss, logs = method.loss(batch, step)
    if not math.isfinite(loss.item()):
        raise DivergedError(f"{type(method).__name__} loss is {loss.item()} at step {step} (seed {seed}); "
                            "lower the learning rate or check the method's hyperparameters", step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if loss.device.type == "cuda":
        torch.cuda.synchronize(loss.device)
    return loss, logs


def train(method: Method, train_set: Dataset, val_set: Dataset, *, steps: int, batch_size: int, lr: float,
          eval_every: int, seed: int, device: torch.device | str = "cpu", progress: bool = True,
          desc: str = "train", stop_on_divergence: bool = False) -> TrainResult:
    """Train `method.model` for `steps` Adam steps and return its best-validation state. A non-finite loss raises
    DivergedError, or with `stop_on_divergence` (a sweep's trials) ends training there: the best checkpoint
    validated before it is kept (the initial weights, validation accuracy -1, when none was) and
    `diverged_at` says where."""
    device = torch.device(device)
    model = method.model.to(device)
    method.extra.to(device)
    generator = torch.Generator().manual_seed(seed)
    batches = endless(train_set, batch_size, generator)
    optimizer = torch.optim.Adam(method.parameters(), lr=lr)
    best = TrainResult(copy.deepcopy(model.state_dict()), 0, -1.0, steps_per_epoch=len(train_set) / batch_size)
    step_times: list[float] = []
    logs_sum: dict[str, float] = {}
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step in bar:
        if step == method.reset_optimizer_at:
            optimizer = torch.optim.Adam(method.parameters(), lr=lr)
        batch = to_device(next(batches), device)
        t0 = time.perf_counter()
        try:
            loss, logs = training_step(method, optimizer, batch, step, seed=seed)
        except DivergedError:
            if not stop_on_divergence:
                raise
            best.diverged_at = step
            break
        step_times.append(time.perf_counter() - t0)
        for k, v in logs.items():
            logs_sum[k] = logs_sum.get(k, 0.0) + v
        if step % eval_every == 0 or step == steps:
            val_acc = accuracy(model, val_set, device=device)
            n = eval_every if step % eval_every == 0 else step % eval_every
            point = {"step": step, "val_acc": val_acc, **{k: v / n for k, v in logs_sum.items()}}
            best.curve.append(point)
            logs_sum = {}
            if val_acc >= best.best_val_acc:  # ties go to the later, longer-trained checkpoint
                best.best_state = copy.deepcopy(model.state_dict())
                best.best_step, best.best_val_acc = step, val_acc
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_acc:.1f}", best=f"{best.best_val_acc:.1f}")
    best.step_time_s = statistics.median(step_times) if step_times else math.nan
    best.total_time_s = time.perf_counter() - start
    return best
