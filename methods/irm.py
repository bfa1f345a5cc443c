"""IRM (Arjovsky et al. 2019, "Invariant Risk Minimization"), the IRMv1 penalty as DomainBed implements it.

DomainBed (algorithms.IRM): one forward pass over all environments' images; per environment e the
mean CE and the split-batch penalty sum(dCE(logits[::2] s)/ds * dCE(logits[1::2] s)/ds) at s = 1;
loss = mean_e CE_e + w * mean_e penalty_e with w = 1 for the first `anneal_iters` updates and
`lambda` (1e2) afterwards (defaults: lambda 1e2, 500 anneal iterations; sweep ranges lambda
10^U(-1, 5), anneal 10^U(0, 4), as DomainBed's). The loop's steps count from 1, DomainBed's update
counter from 0, so the switch happens at loop step anneal_iters + 1, exactly DomainBed's update
anneal_iters.

Optimizer reset: DomainBed re-creates Adam at the switch ("Reset Adam, because it doesn't like the
sharp jump in gradient magnitudes that happens at this step"); the IRM paper does not. It is kept
because this module reproduces DomainBed's IRM, the implementation the DG literature reports, and
it only clears Adam's moment estimates (the learning rate is the run's).

Environments (methods/environments.py): the built-in benchmarks' training splits consist of two
environments whose spurious cue agrees with the class at different rates, IRM's setting; each batch
is split by them (B images, two environments of about B/2). A folder dataset without environments
falls back to the batch and a photometrically shifted copy of it (2B images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.models import Classifier
from methods.base import Method, Range, register_method
from methods.environments import environments


def irm_penalty(logits: Tensor, y: Tensor) -> Tensor:
    """DomainBed's unbiased IRMv1 penalty: product of the dummy-scale gradients of the two half-batches."""
    scale = torch.tensor(1.0, device=logits.device, requires_grad=True)
    loss_1 = F.cross_entropy(logits[::2] * scale, y[::2])
    loss_2 = F.cross_entropy(logits[1::2] * scale, y[1::2])
    grad_1 = torch.autograd.grad(loss_1, [scale], create_graph=True)[0]
    grad_2 = torch.autograd.grad(loss_2, [scale], create_graph=True)[0]
    return torch.sum(grad_1 * grad_2)


@register_method(
    "irm", display="IRM",
    # DomainBed's defaults (irm_lambda 1e2, irm_penalty_anneal_iters 500) and its search ranges
    # (lambda 10^U(-1, 5), anneal 10^U(0, 4))
    hparams={"lambda": 1e2, "anneal_iters": 500, "shift_strength": 0.3},
    search={"lambda": Range(1e-1, 1e5, log=True), "anneal_iters": Range(1, 1e4, log=True, integer=True)},
    # the quick run is 400 steps, DomainBed's 5000: the same shares of the run (500 -> 40; 10^U(0, 4) -> [1, 800])
    scaled={"quick": {"anneal_iters": 40}},
    scaled_search={"quick": {"anneal_iters": Range(1, 800, log=True, integer=True)}},
)
class IRM(Method):
    """IRMv1: mean environment CE + w * mean environment penalty, w = 1 then lambda after the anneal."""

    def __init__(self, model: Classifier, hparams: dict, *, has_masks: bool = False) -> None:
        super().__init__(model, hparams, has_masks=has_masks)
        self.reset_optimizer_at = int(hparams["anneal_iters"]) + 1

    def penalty_weight(self, step: int) -> float:
        """1 during the anneal, lambda from DomainBed's update `anneal_iters` (loop step anneal_iters + 1)."""
        return float(self.hparams["lambda"]) if step - 1 >= self.hparams["anneal_iters"] else 1.0

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        envs = environments(batch, self.hparams["shift_strength"])
        all_logits = self.model(torch.cat([env.x for env in envs]))
        nll = penalty = all_logits.new_zeros(())
        start = 0
        for env in envs:
            logits = all_logits[start : start + len(env.y)]
            start += len(env.y)
            nll = nll + F.cross_entropy(logits, env.y)
            penalty = penalty + irm_penalty(logits, env.y)
        nll, penalty = nll / len(envs), penalty / len(envs)
        weight = self.penalty_weight(step)
        loss = nll + weight * penalty
        return loss, {"ce": nll.item(), "penalty": penalty.item(), "penalty_weight": weight}
