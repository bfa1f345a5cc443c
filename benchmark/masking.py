"""Gradient-masking measurements of a model (benchmark/flags.py turns them, with the attacks' accuracies,
into flags): the share of test images with zero or non-finite input gradients, and the accuracy under
PGD examples transferred from another model (the dataset's ERM model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import eval_mode
from attacks.pgd import pgd


def gradient_health(model: nn.Module, batches: list[dict[str, Tensor]]) -> dict[str, float]:
    """Share (%) of images whose cross-entropy input gradient is all exactly zero, and share with any non-finite
    entry (the loss is summed, so each image gets its own gradient): what PGD's steps would follow."""
    zero = nonfinite = total = 0
    with eval_mode(model):
        for batch in batches:
            x = batch["x"].detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(x), batch["y"], reduction="sum")
            grad = torch.autograd.grad(loss, x)[0].flatten(1)
            zero += (grad == 0).all(dim=1).sum().item()
            nonfinite += (~torch.isfinite(grad)).any(dim=1).sum().item()
            total += len(grad)
    return {"zero_grad_share": 100.0 * zero / total, "nonfinite_grad_share": 100.0 * nonfinite / total}


def transfer_accuracy(source: nn.Module, target: nn.Module, batches: list[dict[str, Tensor]], eps: float, *,
                      steps: int, seed: int) -> float:
    """Accuracy (%) of `target` on PGD-`steps` examples crafted on `source` (the dataset's ERM model), seeded as
    benchmark/evaluate.py's adversarial_accuracy seeds: a transfer attack needs no gradient of `target`."""
    generator = torch.Generator(device=batches[0]["x"].device).manual_seed(seed)
    correct = total = 0
    with eval_mode(target):
        for batch in batches:
            x_adv = pgd(source, batch["x"], batch["y"], eps, generator=generator, steps=steps)
            with torch.no_grad():
                correct += (target(x_adv).argmax(1) == batch["y"]).sum().item()
            total += len(batch["y"])
    return 100.0 * correct / total
