"""DM-ADA: domain mixup for adversarial domain adaptation (Xu, Zhang, Ni, Li, Wang, Tian, Zhang; AAAI 2020).

Official code: ChrisAllenMing/Mixup_for_UDA (DM-ADA/trainer_mixed.py, a VAE-GAN for unsupervised
domain adaptation; Mixup_RevGrad/RevGrad_mixup.py, its DANN form). What is kept: one mixing ratio
per batch, l ~ Beta(2, 2) rounded to 2 decimals and pushed out of (0.5 - t, 0.5 + t) (t = clip_thr
0.1: [0.5, 0.6) -> 0.6, (0.4, 0.5) -> 0.4); pixel mixup x_m = l x_i + (1 - l) x_j and feature mixup
e_m = l e_i + (1 - l) e_j between two domains; a domain discriminator (RevGrad's: linear, BatchNorm,
ReLU, linear) fed through a gradient reversal layer whose coefficient follows DANN's schedule
2 / (1 + exp(-10 p)) - 1, p = step / grl_steps (capped at 1), trained with hard domain labels on
pure samples and soft ones (l on domain i, 1 - l on domain j) on both kinds of mixes; adversarial
weight 0.1 and mixed samples' domain terms weighted 0.3 relative to the pure ones (DM-ADA's
adv_weight and delta).

Deviations (DM-ADA is an unsupervised adaptation method; this is its domain-generalization form):
- the VAE-GAN (encoder mean/std, decoder, triplet term) is dropped, and the discriminator works on
  the pooled last-block features e = mean_hw features(x) through the reversal layer instead of on
  images / generated images;
- both domains are labelled, so pixel mixes get soft class labels: l CE(f(x_m), y_i) + (1 - l)
  CE(f(x_m), y_j), weight 1, added to the mean CE of the pure domains (partners: a random
  permutation of domain j's samples);
- domains are the batch's domains when it has several (consecutive pairs in a random order of
  them, truncated to the smaller size); with one training domain, the usual case here, they are the
  batch and a photometrically shifted copy (methods/environments.py);
- the discriminator has `max_domains` outputs, indexed by domain id (0 and 1 for the pseudo-pair).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.models import Classifier
from methods.base import Method, Range, register_method
from methods.environments import Environment, environments


class GradReverse(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by -coef (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: Tensor, coef: float) -> Tensor:
        ctx.coef = coef
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output.neg() * ctx.coef, None


def grad_reverse(x: Tensor, coef: float) -> Tensor:
    """x, with the gradient flowing back through it multiplied by -coef."""
    return GradReverse.apply(x, coef)


def grl_coefficient(step: int, horizon: int) -> float:
    """DANN's schedule 2 / (1 + exp(-10 p)) - 1 with p = step / horizon, capped at 1."""
    p = min(step / horizon, 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def mix_ratio(alpha: float, clip_thr: float) -> float:
    """l ~ Beta(alpha, alpha) (global torch RNG), rounded to 2 decimals and kept clip_thr away from 0.5."""
    lam = round(float(torch.distributions.Beta(alpha, alpha).sample()), 2)
    if 0.5 <= lam < 0.5 + clip_thr:
        lam = 0.5 + clip_thr
    if 0.5 - clip_thr < lam < 0.5:
        lam = 0.5 - clip_thr
    return lam


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean over samples of -sum_k target_k log softmax(logits)_k."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class Pair(NamedTuple):
    """Domain a's rows mixed with domain b's partner rows (indices into the environments' batches)."""

    a: int
    b: int
    rows: Tensor
    partners: Tensor


def random_pairs(envs: list[Environment]) -> list[Pair]:
    """Consecutive domains in a random order (one pair for two domains); partners drawn at random."""
    order = torch.randperm(len(envs)).tolist()
    pairs = []
    for a, b in zip(order[:-1], order[1:], strict=True):
        n = min(len(envs[a].y), len(envs[b].y))
        device = envs[a].y.device
        pairs.append(Pair(a, b, torch.arange(n, device=device), torch.randperm(len(envs[b].y))[:n].to(device)))
    return pairs


@register_method(
    "dmada", display="DMADA",
    # Beta(2, 2) clipped 0.1 from 0.5, adv_weight 0.1, mixed-sample weight 0.3 (delta), RevGrad discriminator
    # width 100, DANN schedule over the run's steps; pseudo-environment shift strength 0.3
    hparams={"alpha": 2.0, "clip_thr": 0.1, "adv_weight": 0.1, "mix_weight": 0.3, "grl_steps": 5000, "hidden": 100,
             "max_domains": 4, "shift_strength": 0.3},
    search={"adv_weight": Range(1e-2, 1.0, log=True), "mix_weight": Range(0.1, 1.0, log=True)},
    scaled={"quick": {"grl_steps": 400}},  # the schedule spans the quick profile's 400 steps
)
class DMADA(Method):
    """Pure + soft-label pixel-mixup CE, plus a reversed-gradient domain discriminator with soft mix labels."""

    def __init__(self, model: Classifier, hparams: dict, *, has_masks: bool = False) -> None:
        super().__init__(model, hparams, has_masks=has_masks)
        width = int(hparams["hidden"])
        self.extra["discriminator"] = nn.Sequential(
            nn.Linear(model.fc.in_features, width), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, int(hparams["max_domains"])),
        )

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        hp = self.hparams
        envs = environments(batch, hp["shift_strength"])
        if max(env.env_id for env in envs) >= hp["max_domains"]:
            raise ValueError(f"DM-ADA's discriminator has {hp['max_domains']} outputs; domain ids "
                             f"{[env.env_id for env in envs]} need more (raise max_domains)")
        lam = mix_ratio(hp["alpha"], hp["clip_thr"])
        pairs = random_pairs(envs)
        mixes = [lam * envs[p.a].x[p.rows] + (1 - lam) * envs[p.b].x[p.partners] for p in pairs]

        # One pass over pure and pixel-mixed images; e = pooled last-block features (the head's input).
        activations = self.model.features(torch.cat([env.x for env in envs] + mixes))
        sizes = [len(env.y) for env in envs] + [len(m) for m in mixes]
        logits = self.model.head(activations).split(sizes)
        embeddings = activations.mean(dim=(2, 3)).split(sizes)
        pure_emb, pixel_mix_emb = embeddings[: len(envs)], embeddings[len(envs) :]

        ce = sum(F.cross_entropy(lg, env.y) for lg, env in zip(logits[: len(envs)], envs, strict=True)) / len(envs)
        mix_ce = sum(
            lam * F.cross_entropy(lg, envs[p.a].y[p.rows]) + (1 - lam) * F.cross_entropy(lg, envs[p.b].y[p.partners])
            for lg, p in zip(logits[len(envs) :], pairs, strict=True)
        ) / len(pairs)

        outputs = int(hp["max_domains"])
        pure_targets = [F.one_hot(torch.full_like(env.y, env.env_id), outputs).float() for env in envs]
        mix_inputs, mix_targets = [], []
        for p, pixel_emb in zip(pairs, pixel_mix_emb, strict=True):
            soft = torch.zeros(len(p.rows), outputs, device=pixel_emb.device)
            soft[:, envs[p.a].env_id] = lam
            soft[:, envs[p.b].env_id] += 1 - lam
            feature_mix = lam * pure_emb[p.a][p.rows] + (1 - lam) * pure_emb[p.b][p.partners]
            mix_inputs += [pixel_emb, feature_mix]
            mix_targets += [soft, soft]
        coef = grl_coefficient(step, int(hp["grl_steps"]))
        domain_logits = self.extra["discriminator"](grad_reverse(torch.cat([*pure_emb, *mix_inputs]), coef))
        n_pure = sum(len(env.y) for env in envs)
        domain_pure = soft_cross_entropy(domain_logits[:n_pure], torch.cat(pure_targets))
        domain_mix = soft_cross_entropy(domain_logits[n_pure:], torch.cat(mix_targets))
        domain = domain_pure + hp["mix_weight"] * domain_mix
        loss = ce + mix_ce + hp["adv_weight"] * domain
        return loss, {"ce": ce.item(), "mix_ce": mix_ce.item(), "domain": domain.item(), "lambda": lam,
                      "grl_coef": coef}
