"""PGD (Madry et al. 2018): uniform random start, then signed-gradient steps projected on the eps-ball."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks.base import check_steps, loss_gradient, project_, register_attack, validate_iterative


def uniform_start(x: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """x + U(-eps, eps), clamped to [0, 1]; noise drawn on the generator's device (default: x's, global RNG).

    With `generator=None` this draws exactly what torchattacks.PGD draws after the same global seed;
    a CPU generator seeded with s draws the same numbers as `torch.manual_seed(s)` on CPU.
    """
    device = x.device if generator is None else generator.device
    noise = torch.empty(x.shape, dtype=x.dtype, device=device).uniform_(-eps, eps, generator=generator)
    return noise.to(x.device).add_(x).clamp_(0, 1)


@register_attack("pgd", display="PGD", cost=1.0, validate=validate_iterative)
def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    steps: int = 10,
    alpha: float | None = None,
    random_start: bool = True,
) -> Tensor:
    """PGD-`steps` on the mean CE with step alpha (default eps / 4), as torchattacks.PGD (cost: PGD-10 = 1).

    Each step: x_adv = clamp(x + clamp(x_adv + alpha * sign(grad) - x, -eps, eps), 0, 1).
    The random start comes from `generator` (global RNG when None) so runs are reproducible.
    """
    steps, alpha = check_steps(steps, alpha, eps)
    x_adv = uniform_start(x, eps, generator) if random_start else x.clone()
    for _ in range(steps):
        grad = loss_gradient(model, x_adv, y)
        x_adv = project_(x_adv.detach().add_(grad.sign_(), alpha=alpha), x, eps)
    return x_adv
