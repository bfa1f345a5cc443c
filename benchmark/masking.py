"""Gradient-masking and convergence measurements of a model (benchmark/flags.py turns them, with the attacks'
accuracies and the transfer accuracy of benchmark/evaluate.py, into flags): the share of test images with zero or
non-finite input gradients, and which of the points the worst case `aa` left robust a second restart of its
white-box members breaks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.apgd import apgd_ce, apgd_t
from attacks.base import eval_mode

#: the convergence check's generator is seeded with the job's seed plus this offset, so that its random starts are not
#: the attack grid's (seeded with the job's seed)
RESTART_SEED_OFFSET = 1000


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


def restart_white_box(model: nn.Module, batches: list[dict[str, Tensor]], robust: Tensor, eps: float, *,
                      n_iter: int, n_targets: int, generator: torch.Generator) -> Tensor:
    """Which images stay robust when `aa`'s white-box members run again on the images `robust` marks (aa's robust
    mask over the batches' images, in order): apgd-ce, then apgd-t on the points apgd-ce leaves, with aa's `n_iter`
    and `n_targets`, 1 restart each, from new random starts (`generator`, seeded apart from the grid's). A restart
    only breaks points, so the result is a subset of `robust`; when it breaks more than a point in a hundred, aa had
    not converged (benchmark/flags.py `aa_not_converged`).

    Cost: the two members on the points aa left robust only, on which aa ran both in full and Square after them, so
    at most aa's white-box cost on these images. The evaluator gives it the first min(probe_images, half of aa's
    images) images: in the quick profile 250 of aa's 500, so at most half of aa's whole cost (which also pays for the
    points aa breaks and for Square)."""
    still = robust.clone()
    start = 0
    with eval_mode(model):
        for batch in batches:
            x, y = batch["x"], batch["y"]
            part = still[start:start + len(y)]  # a view: marking a point broken here marks it in `still`
            for member, params in ((apgd_ce, {}), (apgd_t, {"n_targets": n_targets})):
                idx = part.nonzero().flatten()
                if len(idx) == 0:
                    break
                out = member(model, x[idx], y[idx], eps, generator=generator, n_iter=n_iter, n_restarts=1, **params)
                with torch.no_grad():
                    part[idx[model(out).argmax(1) != y[idx]]] = False
            start += len(y)
    return still
