"""IG-NORM (Chen, Wu, Rastogi, Liang, Jha, NeurIPS 2019, "Robust Attribution Regularization").

Official code: jfc43/robust-attribution-regularization (TensorFlow 1), objective "ar":
  IG(x, x') = (x' - x) * (1/m) sum_{k=1..m} d CE(z_k, y) / d z_k,  z_k = x + (k/m)(x' - x),
  loss = sum_b CE(x_b) + lambda * ||IG||_1,
with x' from an L-inf PGD (uniform random start, sign steps, clipped to the eps-ball and the pixel
range) that maximizes the approximate norm computed on every `approx_factor`-th path point
(m / approx_factor points). Flower (natural images) config: lambda 0.1, m 50, approx_factor 10,
eps 8/255, 7 steps of 2/255; these are the paper profile's values.

Choices and deviations:
- The batch sums become batch means (mean CE + lambda * mean_b ||IG_b||_1): same ratio of terms.
- CE is torch's log-softmax cross-entropy (the official code clips the softmax at 1e-10).
- x' is searched with the model in eval mode (as every attack here), without parameter gradients.
- IG is computed with the head's dropout off (the official network has none), BatchNorm as the
  caller left it (training mode during training).
- Memory: path points go through the model `path_chunk` at a time (the official graph holds all m).
  The exact gradient of the L1 norm is accumulated chunk by chunk with the norm's sign fixed from a
  first, gradient-free pass (d|u|/du = sign(u) a.e.), then handed to the loop through a zero-valued
  surrogate term, so the loop's single backward applies it. With one chunk there is no first pass.
- `penalty_samples` (None: the whole batch) restricts x' and the IG term to the batch's first n images
  (batches are shuffled), an unbiased estimate of the same mean at a fraction of the cost.
- The official optimizer (momentum SGD, weight decay 2e-4, 70k steps) is replaced by the profile's loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import eval_mode, project_
from attacks.pgd import uniform_start
from benchmark.models import dropout_off
from methods.base import Method, Range, register_method


def path_gradient_sum(model: nn.Module, x: Tensor, delta: Tensor, y: Tensor, fractions: Sequence[float],
                      *, create_graph: bool) -> Tensor:
    """sum_t d CE(z_t, y) / d z_t at z_t = x + t * delta for t in `fractions` (one forward pass), (B,C,H,W)."""
    z = torch.cat([x + t * delta for t in fractions])
    if not z.requires_grad:
        z.requires_grad_(True)
    ce = F.cross_entropy(model(z), y.repeat(len(fractions)), reduction="sum")
    (grad,) = torch.autograd.grad(ce, z, create_graph=create_graph)
    return grad.view(len(fractions), *x.shape).sum(dim=0)


def integrated_loss_gradients(model: nn.Module, x: Tensor, x_end: Tensor, y: Tensor, points: int, *,
                              create_graph: bool = False) -> Tensor:
    """IG of the per-sample CE on the path x -> x_end, right Riemann sum with `points` points, (B,C,H,W).

    Completeness: IG sums to about CE(x_end) - CE(x) per sample (exactly in the limit of many points).
    """
    fractions = [k / points for k in range(1, points + 1)]
    delta = x_end - x
    return delta * path_gradient_sum(model, x, delta, y, fractions, create_graph=create_graph) / points


def ig_norm_and_gradients(model: nn.Module, x: Tensor, x_end: Tensor, y: Tensor, points: int, chunk: int,
                          wrt: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """mean_b ||IG_b(x, x_end)||_1 (detached) and its gradients w.r.t. `wrt`, path points `chunk` at a time.

    `x_end` may depend on `wrt` (the attack differentiates w.r.t. x_end itself). The L1 norm's gradient
    is linear in each point's gradient once sign(IG) is fixed, so each chunk's graph is freed after its
    contribution; with several chunks sign(IG) comes from a first, gradient-free pass.
    """
    fractions = [k / points for k in range(1, points + 1)]
    chunks = [fractions[i : i + chunk] for i in range(0, points, chunk)]
    delta = x_end - x
    if len(chunks) == 1:
        ig = delta * path_gradient_sum(model, x, delta, y, fractions, create_graph=True) / points
        value = ig.abs().flatten(1).sum(dim=1).mean()
        return value.detach(), list(torch.autograd.grad(value, wrt, allow_unused=True, materialize_grads=True))
    plain = delta.detach()
    total = sum(path_gradient_sum(model, x, plain, y, part, create_graph=False) for part in chunks)
    ig = plain * total / points
    sign = ig.sign()
    grads = [torch.zeros_like(t) for t in wrt]
    for part in chunks:
        partial = delta * path_gradient_sum(model, x, delta, y, part, create_graph=True) / points
        surrogate = (sign * partial).flatten(1).sum(dim=1).mean()
        for acc, g in zip(grads, torch.autograd.grad(surrogate, wrt, allow_unused=True, materialize_grads=True),
                          strict=True):
            acc.add_(g)
    return ig.abs().flatten(1).sum(dim=1).mean(), grads


def ig_norm_attack(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int, step_size: float,
                   points: int, chunk: int) -> Tensor:
    """x' in the L-inf eps-ball (and [0, 1]) maximizing the `points`-point IG norm: PGD, random start."""
    x = x.detach()
    x_adv = uniform_start(x, eps, None)
    with eval_mode(model):
        for _ in range(steps):
            x_adv.requires_grad_(True)
            _, (grad,) = ig_norm_and_gradients(model, x, x_adv, y, points, chunk, [x_adv])
            x_adv = project_(x_adv.detach().add_(grad.sign_(), alpha=step_size), x, eps)
    return x_adv


@register_method(
    "ign", display="IGN",
    # the official Flower config (m 50, approx_factor 10, PGD eps 8/255, 7 steps of 2/255); path_chunk bounds
    # memory (path points per forward pass), it does not change the loss; penalty_samples None: x' and the IG
    # term on the whole batch
    hparams={"lambda": 0.1, "points": 50, "approx_factor": 10, "eps": 8 / 255, "steps": 7, "step_size": 2 / 255,
             "path_chunk": 5, "penalty_samples": None},
    search={"lambda": Range(1e-3, 1.0, log=True)},
    scaled={"quick": {"points": 2, "approx_factor": 2, "steps": 2, "step_size": 4 / 255, "path_chunk": 2,
                      "penalty_samples": 8}},
)
class IGNorm(Method):
    """mean CE(x) + lambda * mean_b ||IG_b(x, x')||_1 with x' from PGD on the approximate IG norm."""

    def __init__(self, model: nn.Module, hparams: dict, *, has_masks: bool = False) -> None:
        super().__init__(model, hparams, has_masks=has_masks)
        if hparams["points"] % hparams["approx_factor"]:
            raise ValueError(f"IG-NORM needs points ({hparams['points']}) divisible by approx_factor "
                             f"({hparams['approx_factor']})")

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        hp = self.hparams
        ce = F.cross_entropy(self.model(batch["x"]), batch["y"])
        n = len(batch["y"]) if hp["penalty_samples"] is None else int(hp["penalty_samples"])
        x, y = batch["x"][:n], batch["y"][:n]
        with dropout_off(self.model):
            x_adv = ig_norm_attack(self.model, x, y, eps=hp["eps"], steps=hp["steps"], step_size=hp["step_size"],
                                   points=hp["points"] // hp["approx_factor"], chunk=hp["path_chunk"])
            params = [p for p in self.model.parameters() if p.requires_grad]
            norm, grads = ig_norm_and_gradients(self.model, x, x_adv, y, hp["points"], hp["path_chunk"], params)
        # Zero-valued term whose parameter gradient is the IG norm's: the loop's backward applies it.
        surrogate = sum((p * g).sum() for p, g in zip(params, grads, strict=True))
        loss = ce + hp["lambda"] * (norm + surrogate - surrogate.detach())
        return loss, {"ce": ce.item(), "ig_norm": norm.item()}
