"""MI-FGSM (Dong et al. 2018): iterative FGSM with L1-normalized gradient momentum, as torchattacks.MIFGSM."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks.base import check_steps, loss_gradient, project_, register_attack, validate_iterative


@register_attack("mifgsm", display="MI-FGSM", cost=1.0, validate=validate_iterative)
def mifgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    steps: int = 10,
    alpha: float | None = None,
    decay: float = 1.0,
) -> Tensor:
    """MI-FGSM from x (no random start; `generator` is unused); alpha defaults to eps / 4.

    Each step: g = grad / mean|grad| (per sample), momentum = g + decay * momentum,
    x_adv = clamp(x + clamp(x_adv + alpha * sign(momentum) - x, -eps, eps), 0, 1).
    Unlike torchattacks, a sample whose gradient is all zeros gets g = 0 instead of 0/0 = NaN. (There,
    the NaN stays in the momentum and torch.sign(NaN) = 0 freezes the sample for the remaining steps.)
    Otherwise the output is bit-identical to torchattacks.MIFGSM.
    """
    steps, alpha = check_steps(steps, alpha, eps)
    sample_dims = tuple(range(1, x.ndim))
    momentum = torch.zeros_like(x)
    x_adv = x.clone()
    for _ in range(steps):
        grad = loss_gradient(model, x_adv, y)
        scale = grad.abs().mean(dim=sample_dims, keepdim=True)
        grad.div_(scale.masked_fill_(scale == 0, 1))
        momentum = momentum.mul_(decay).add_(grad)
        x_adv = project_(x_adv.detach().add_(momentum.sign(), alpha=alpha), x, eps)
    return x_adv
