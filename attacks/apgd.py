"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"), L-inf: `apgd-ce` on the cross-entropy, `apgd-t` on the targeted DLR loss.

One run starts at x + eps * t / ||t||_inf (t ~ U(-1, 1)^d, a point on the ball's surface), steps with
size 2 eps and momentum 0.75 (the first step without), and keeps the point of highest loss. At the
checkpoints w_j = ceil(p_j N) of p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
(in iterations, rounded as AutoAttack does) it halves a sample's step and restarts it from its best
point when the loss rose in at most rho = 75% of the period's steps, or when the step was not halved
at the previous checkpoint and the best loss has not improved since. As in AutoAttack's code, the
first iteration's loss is compared with 0 rather than with the start's loss. A point counts as broken
if any iterate misclassifies it. Exact saving (`early_exit`, the default): a point leaves the working batch at the
iterate that breaks it, which is its output; every state of the run is per sample, so the others' trajectories,
and so the robust set, are those of the full-batch run (tests/test_worst_case.py compares the masks bit for bit).
With early_exit=False every point runs all iterations and the output is its last misclassifying iterate
(AutoAttack's output); x where none does. Restarts (and apgd-t's targets) run only on the points still robust.

Given the same start and early_exit=False, both attacks reproduce torchattacks 3.5.1's APGD (loss 'ce') and APGDT
(tests/test_worst_case.py): the generator draws each run's t as their seeded global RNG does.

Parameters: the standard version (AutoAttack's) is `n_iter` = 100 iterations, `n_restarts` = 1 and,
for apgd-t, `n_targets` = 9 target classes (the 2nd- to 10th-highest clean logits, capped at the
number of classes - 1). They are not named `steps`, so the evaluator does not pass them the profile's
PGD step count (`Attack.takes_steps` is False): a reduced version is chosen by passing smaller values.

Declared costs (PGD-10 = 1), measured with the standard versions on a random 5-class cnn (32 images of 32x32,
eps 0.02, one CPU thread; two runs): apgd-ce 8.3-11.1 (101 gradients vs 10), apgd-t 23-29 (4 targets
on 5 classes, 56% of the points left robust); a robust point costs apgd-t up to n_targets x 10.1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import register_attack
from attacks.common import check_count, check_switch, uniform
from benchmark.registry import UserError

#: per-sample loss to maximise, from (logits, labels, per-sample targets: apgd-t's target classes)
Loss = Callable[[Tensor, Tensor, Tensor], Tensor]

MOMENTUM = 0.75
RHO = 0.75


def checkpoints(n_iter: int) -> dict[int, int]:
    """The iterations (0-based) that end a checkpoint period, each with its period's length.

    AutoAttack's rounding of w_j: the first period lasts max(int(0.22 N), 1) iterations, each next one
    max(int(0.03 N), 1) fewer, but at least max(int(0.06 N), 1)."""
    length, shrink, least = max(int(0.22 * n_iter), 1), max(int(0.03 * n_iter), 1), max(int(0.06 * n_iter), 1)
    ends, done = {}, 0
    while done + length <= n_iter:
        done += length
        ends[done - 1] = length
        length = max(length - shrink, least)
    return ends


def surface_start(x: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """x + eps * t / ||t||_inf per sample, t ~ U(-1, 1), clamped to [0, 1]: AutoAttack's L-inf start."""
    t = uniform(tuple(x.shape), x, generator).mul_(2).sub_(1)
    top = t.flatten(1).abs().amax(dim=1).view(-1, *[1] * (x.ndim - 1))
    return (x + eps * t / top).clamp_(0, 1)


def _loss_and_grad(model: nn.Module, x_adv: Tensor, y: Tensor, target: Tensor, loss: Loss
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(per-sample loss, gradient of its sum w.r.t. x_adv, predictions) at x_adv."""
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv)
    values = loss(logits, y, target)
    grad = torch.autograd.grad(values.sum(), x_adv)[0]
    return values.detach(), grad, logits.detach().argmax(1)


def apgd_run(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, n_iter: int, loss: Loss, target: Tensor,
             generator: torch.Generator | None, early_exit: bool = True) -> tuple[Tensor, Tensor]:
    """One APGD run of `n_iter` iterations from a random start: (broken mask, misclassifying iterate).

    Every quantity of the run is per sample (step size, momentum, loss history, checkpoints), so a sample's
    trajectory does not depend on the others in the batch. With `early_exit`, a sample leaves the working batch at
    the iterate that first misclassifies it (its output); the others go on exactly as before, so the broken mask is
    the full run's and each gradient is spent on a point still robust. Without it, every sample runs all
    iterations and its output is its last misclassifying iterate (AutoAttack's and torchattacks' output). The
    iterate of a sample never misclassified is its start (the caller keeps x for it)."""
    rows = torch.arange(len(x), device=x.device)  # the working batch's positions in x
    lower, upper = x - eps, x + eps
    sample = (-1, *[1] * (x.ndim - 1))
    x_adv = surface_start(x, eps, generator)
    values, grad, pred = _loss_and_grad(model, x_adv, y, target, loss)
    broken = pred != y
    found = x_adv.clone()
    x_best, grad_best, best = x_adv.clone(), grad.clone(), values.clone()
    step = torch.full((len(x), *sample[1:]), 2 * eps, dtype=x.dtype, device=x.device)
    x_prev = x_adv.clone()
    # AutoAttack compares the first iteration's loss with 0: row 0 of the loss history is zeros
    history = torch.zeros(n_iter + 1, len(x), dtype=values.dtype, device=x.device)
    best_at_check, halved_at_check = best.clone(), torch.ones_like(broken)
    state = [x, y, target, lower, upper, x_adv, x_prev, grad, x_best, grad_best, best, step, best_at_check,
             halved_at_check]

    def leave(wrong: Tensor) -> None:
        """Drop the samples `wrong` marks from the working batch (every per-sample state, and history's columns)."""
        nonlocal rows, state, history
        keep = ~wrong
        rows, history = rows[keep], history[:, keep]
        state = [t[keep] for t in state]

    if early_exit and broken.any():
        leave(broken)
    ends = checkpoints(n_iter)
    for i in range(n_iter):
        if len(rows) == 0:
            break
        (xs, ys, targets, lower_s, upper_s, x_adv, x_prev, grad, x_best, grad_best, best, step, best_at_check,
         halved_at_check) = state
        a = MOMENTUM if i > 0 else 1.0
        z = torch.clamp(x_adv + step * grad.sign(), lower_s, upper_s).clamp_(0, 1)
        z = x_adv + (z - x_adv) * a + (x_adv - x_prev) * (1 - a)
        x_prev, x_adv = x_adv, torch.clamp(z, lower_s, upper_s).clamp_(0, 1)
        values, grad, pred = _loss_and_grad(model, x_adv, ys, targets, loss)
        wrong = pred != ys
        broken[rows[wrong]] = True
        found[rows[wrong]] = x_adv[wrong]
        improved = values > best
        x_best[improved], grad_best[improved], best[improved] = x_adv[improved], grad[improved], values[improved]
        history[i + 1] = values
        if i in ends:
            k = ends[i]
            rises = (history[i + 2 - k:i + 2] > history[i + 1 - k:i + 1]).sum(dim=0)
            halve = (rises <= k * RHO) | (~halved_at_check & (best_at_check >= best))
            halved_at_check, best_at_check = halve, best.clone()
            step[halve] /= 2
            x_adv[halve], grad[halve] = x_best[halve], grad_best[halve]
        state = [xs, ys, targets, lower_s, upper_s, x_adv, x_prev, grad, x_best, grad_best, best, step, best_at_check,
                 halved_at_check]
        if early_exit and wrong.any():
            leave(wrong)
    return broken, found


def apgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, n_iter: int, n_restarts: int, loss: Loss,
         targets: list[Callable[[Tensor], Tensor]], generator: torch.Generator | None, early_exit: bool = True
         ) -> Tensor:
    """For each of `targets` in turn (apgd-ce: one, the labels; apgd-t: one per target rank, each computed for the
    points still robust), `n_restarts` APGD runs of `loss`, each on the points still robust. Returns each broken
    point's misclassifying iterate, x elsewhere."""
    x_adv = x.clone()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    for target_of in targets:
        for _ in range(n_restarts):
            idx = robust.nonzero().flatten()
            if len(idx) == 0:
                return x_adv
            broken, found = apgd_run(model, x[idx], y[idx], eps, n_iter=n_iter, loss=loss, target=target_of(idx),
                                     generator=generator, early_exit=early_exit)
            x_adv[idx[broken]] = found[broken]
            robust[idx[broken]] = False
    return x_adv


def cross_entropy(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Per-sample cross-entropy of the labels (apgd-ce's loss; its `target` is the labels, unused)."""
    return F.cross_entropy(logits, y, reduction="none")


def dlr_targeted(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Targeted DLR loss -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) (pi: logits sorted descending).

    Written as torchattacks writes it (z_pi1 - 0.5 z_pi3 - 0.5 z_pi4 + 1e-12) so that losses, and so the
    best points, agree to the bit."""
    top = logits.sort(dim=1).values
    rows = torch.arange(len(y), device=logits.device)
    return -(logits[rows, y] - logits[rows, target]) / (top[:, -1] - 0.5 * top[:, -3] - 0.5 * top[:, -4] + 1e-12)


def _validate_ce(eps: float, params: dict[str, Any]) -> None:
    check_count("apgd-ce", params, "n_iter", "n_restarts")
    check_switch("apgd-ce", params, "early_exit")


def _validate_t(eps: float, params: dict[str, Any]) -> None:
    check_count("apgd-t", params, "n_iter", "n_restarts", "n_targets")
    check_switch("apgd-t", params, "early_exit")


@register_attack("apgd-ce", display="APGD-CE", cost=10.0, validate=_validate_ce, chained=True)
def apgd_ce(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    n_iter: int = 100,
    n_restarts: int = 1,
    early_exit: bool = True,
) -> Tensor:
    """APGD on the cross-entropy, `n_restarts` runs of `n_iter` iterations (AutoAttack's apgd-ce: 100, 1).

    Cost: up to n_iter + 1 gradients per clean-correct image and restart (PGD-10: 10); with `early_exit` (an exact
    saving: apgd_run) a point stops costing at the iterate that breaks it."""
    return apgd(model, x, y, eps, n_iter=n_iter, n_restarts=n_restarts, loss=cross_entropy,
                targets=[lambda idx: y[idx]], generator=generator, early_exit=early_exit)


@register_attack("apgd-t", display="APGD-T", cost=25.0, validate=_validate_t, chained=True)
def apgd_t(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    n_iter: int = 100,
    n_restarts: int = 1,
    n_targets: int = 9,
    early_exit: bool = True,
) -> Tensor:
    """Targeted APGD on the DLR loss (AutoAttack's apgd-t: 100 iterations, 9 targets, 1 restart).

    Target r (r = 1..n_targets, capped at classes - 1) is the class of the (r + 1)-th highest clean logit
    of each point still robust; a point is broken as soon as any target's run misclassifies it. The DLR
    loss needs at least 4 classes (UserError otherwise). Cost: up to n_targets x (n_iter + 1) gradients
    per image, fewer as points break (with `early_exit`, at the iterate that breaks them: apgd_run)."""
    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    if classes < 4:
        raise UserError(f"apgd-t needs at least 4 classes (its DLR loss uses the 4th-highest logit), got {classes}")

    def towards(idx: Tensor, rank: int) -> Tensor:
        with torch.no_grad():
            return model(x[idx]).sort(dim=1).indices[:, -rank]

    ranks = range(2, min(n_targets, classes - 1) + 2)
    return apgd(model, x, y, eps, n_iter=n_iter, n_restarts=n_restarts, loss=dlr_targeted,
                targets=[partial(towards, rank=rank) for rank in ranks], generator=generator, early_exit=early_exit)
