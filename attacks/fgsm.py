"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps, as torchattacks.FGSM."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks import ATTACKS, check_eps, check_images, eval_mode, loss_gradient


@ATTACKS.register("fgsm")
def fgsm(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """x_adv = clamp(x + eps * sign(grad_x CE(f(x), y)), 0, 1); deterministic, `generator` is unused."""
    eps = check_eps(eps)
    x = x.detach()
    if eps == 0:
        return x.clone()
    check_images(x)
    with eval_mode(model):
        grad = loss_gradient(model, x.detach(), y)  # a fresh alias: x itself stays grad-free
    return grad.sign_().mul_(eps).add_(x).clamp_(0, 1)
