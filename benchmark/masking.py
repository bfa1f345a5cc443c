"""Gradient-masking measurement of a model (benchmark/flags.py turns it, with the attacks' accuracies and the
transfer accuracy of benchmark/evaluate.py, into flags): the share of test images with zero or non-finite
input gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import eval_mode


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
