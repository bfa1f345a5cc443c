"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps, as torchattacks.FGSM."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks.base import loss_gradient, register_attack


@register_attack("fgsm", display="FGSM", cost=0.1)
def fgsm(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """x_adv = clamp(x + eps * sign(grad_x CE(f(x), y)), 0, 1); deterministic, `generator` is unused."""
    grad = loss_gradient(model, x.detach(), y)  # a fresh alias: x itself stays grad-free
    return grad.sign_().mul_(eps).add_(x).clamp_(0, 1)
