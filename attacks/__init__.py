"""Adversarial attacks (L-inf, pixel units): registry and the helpers the attacks share.

Every attack has the signature `attack(model, x, y, eps, *, generator=None, **params) -> x_adv` with
x in [0, 1] (normalization lives inside the model), x_adv in [0, 1] and ||x_adv - x||_inf <= eps.
FGSM, MI-FGSM and PGD follow torchattacks 3.5.1 operation by operation (CE with mean reduction,
gradient by `torch.autograd.grad`, step -> projection -> clamp), so their outputs are identical.
SCA (attacks/sca) attacks through a DDPM of the images' dataset, which the caller passes as `diffusion=`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.registry import Registry, UserError

AttackFn = Callable[..., Tensor]
ATTACKS: Registry[AttackFn] = Registry("attack")


def check_eps(eps: float) -> float:
    """The budget as a float; a negative or non-finite budget is a UserError (it comes from --eps)."""
    value = float(eps)
    if not math.isfinite(value) or value < 0:
        raise UserError(f"attack budget eps must be a finite number >= 0, got {eps!r}")
    return value


def check_steps(steps: int, alpha: float | None, eps: float) -> tuple[int, float]:
    """Validated (steps, alpha) for iterative attacks; alpha defaults to eps / 4 (the paper's setting)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"attack steps must be an integer >= 1, got {steps!r}")
    step = eps / 4 if alpha is None else float(alpha)
    if not math.isfinite(step) or step < 0:
        raise UserError(f"attack step size alpha must be a finite number >= 0, got {alpha!r}")
    return steps, step


def check_images(x: Tensor) -> None:
    """Attacks work in pixel space: images outside [0, 1] (e.g. normalized ones) are a bug upstream."""
    low, high = torch.aminmax(x.detach())
    if low < 0 or high > 1:
        raise ValueError(
            f"attack inputs must lie in [0, 1] (got [{low.item():.3g}, {high.item():.3g}]); "
            "models normalize internally, pass raw images"
        )


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode and restore every submodule's own train/eval flag afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def loss_gradient(model: nn.Module, x_adv: Tensor, y: Tensor) -> Tensor:
    """Gradient of the mean cross-entropy w.r.t. the leaf `x_adv` (no parameter gradients are kept)."""
    x_adv.requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    return torch.autograd.grad(loss, x_adv)[0]


def project_(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """In place: x_adv <- clamp(x + clamp(x_adv - x, -eps, eps), 0, 1), torchattacks' order of ops."""
    return x_adv.sub_(x).clamp_(-eps, eps).add_(x).clamp_(0, 1)


# The attack modules register themselves on import; they need the helpers above.
from attacks import fgsm, mifgsm, pgd, sca  # noqa: E402, F401
