"""Saliency maps for EGAT and the evaluation: Grad-CAM, Finer-CAM, SmoothGrad, Integrated Gradients.

Every explainer has the signature `explain(model, x, target, *, create_graph=False) -> (B, h, w)` and
returns maps ReLU'd and divided per sample by their max (+1e-8), so they lie in [0, 1]. With
`create_graph=True` the maps stay differentiable w.r.t. the model parameters (EGAT backpropagates a loss
on them), also when called under `torch.no_grad()`; otherwise they are detached. SmoothGrad and IG
treat x as a constant. Explainers leave the model's train/eval mode alone: callers choose it (train
mode for training maps, eval mode for evaluation).

The CAMs are at the resolution of `model.features` (h, w). SmoothGrad and IG are at the input
resolution: their (B, C, H, W) signed attribution is summed over channels before the ReLU. The raw
attribution functions are public so tests can compare them with captum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from benchmark.models import Classifier
from benchmark.registry import Registry

Explainer = Callable[..., Tensor]
EXPLAINERS: Registry[Explainer] = Registry("explainer")

#: Added to the per-sample max when normalizing maps, so all-zero maps stay zero (not NaN).
NORMALIZE_EPS = 1e-8


def normalize_maps(raw: Tensor) -> Tensor:
    """ReLU, then divide each sample (dim 0) by its max + 1e-8: maps in [0, 1], differentiable."""
    positive = torch.relu(raw)
    peak = positive.flatten(1).amax(dim=1).view(-1, *([1] * (raw.ndim - 1)))
    return positive / (peak + NORMALIZE_EPS)


def _as_leaf(activations: Tensor, create_graph: bool) -> Tensor:
    """The activations to differentiate against: kept in the graph only when the map must be."""
    if create_graph and activations.requires_grad:
        return activations
    return activations.detach().requires_grad_(True)


def _cam(activations: Tensor, score: Tensor, create_graph: bool) -> Tensor:
    """sum_k alpha_k A_k with alpha_k the spatial mean of d score / d A_k (before the ReLU).

    The gradient is taken w.r.t. A only, so autograd runs the head's backward and never the backbone's.
    """
    (grads,) = torch.autograd.grad(score.sum(), activations, create_graph=create_graph)
    return (grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)


def _cam_from_activations(
    model: Classifier, activations: Tensor, score_fn: Callable[[Tensor], Tensor], create_graph: bool
) -> tuple[Tensor, Tensor]:
    """Normalized CAM of `score_fn(logits)` (B,) and the logits `model.head(activations)`."""
    with torch.enable_grad():
        leaf = _as_leaf(activations, create_graph)
        logits = model.head(leaf)
        maps = normalize_maps(_cam(leaf, score_fn(logits), create_graph))
    if not create_graph:
        return maps.detach(), logits.detach()
    return maps, logits


def gradcam_from_activations(
    model: Classifier, activations: Tensor, target: Tensor, *, create_graph: bool = False
) -> tuple[Tensor, Tensor]:
    """Grad-CAM (Selvaraju et al. 2017) from precomputed `activations = model.features(x)`.

    Returns (maps (B, h, w), logits = model.head(activations)), so a training method reuses both its
    forward pass and the logits. With `create_graph=True` both keep their graph (through A into the
    backbone if A has one); with `create_graph=False` both are detached.
    """
    return _cam_from_activations(
        model, activations, lambda logits: logits.gather(1, target[:, None]).squeeze(1), create_graph
    )


def finercam_target(logits: Tensor, target: Tensor, num_compare: int = 3) -> Tensor:
    """Finer-CAM's score T (B,) for class c = target: a probability-weighted logit difference.

    T = sum_j p_j (y_c - y_j) / sum_j p_j over the `num_compare` classes j != c whose logits are closest
    to y_c (smallest |y_j - y_c|, ties to the lower class index; all other classes if there are fewer).
    As in the authors' implementation (pytorch-grad-cam's FinerWeightedTarget, alpha = 1), p is NOT
    detached: the gradient also flows through the weights. p_j / sum_j p_j is computed as a softmax over
    the selected logits, which is the same number without underflow when y_c dominates.
    """
    if logits.shape[1] < 2:
        raise ValueError("Finer-CAM needs at least two classes")
    own = logits.gather(1, target[:, None])
    distance = (logits.detach() - own.detach()).abs().scatter_(1, target[:, None], float("inf"))
    count = min(num_compare, logits.shape[1] - 1)
    closest = torch.sort(distance, dim=1, stable=True).indices[:, :count]
    others = logits.gather(1, closest)
    return (torch.softmax(others, dim=1) * (own - others)).sum(dim=1)


def finercam_from_activations(
    model: Classifier,
    activations: Tensor,
    target: Tensor,
    *,
    create_graph: bool = False,
    num_compare: int = 3,
) -> tuple[Tensor, Tensor]:
    """Finer-CAM (Zhang et al. CVPR 2025): Grad-CAM of `finercam_target`; returns (maps, logits)."""
    return _cam_from_activations(
        model, activations, lambda logits: finercam_target(logits, target, num_compare), create_graph
    )


def _features(model: Classifier, x: Tensor, create_graph: bool) -> Tensor:
    """model.features(x), without a backbone graph when the map will be detached anyway."""
    with torch.set_grad_enabled(create_graph):
        return model.features(x)


@EXPLAINERS.register("gradcam")
def gradcam(model: Classifier, x: Tensor, target: Tensor, *, create_graph: bool = False) -> Tensor:
    """Grad-CAM maps (B, h, w) of class `target` at `model.features` resolution."""
    return gradcam_from_activations(
        model, _features(model, x, create_graph), target, create_graph=create_graph
    )[0]


@EXPLAINERS.register("finercam")
def finercam(
    model: Classifier, x: Tensor, target: Tensor, *, create_graph: bool = False, num_compare: int = 3
) -> Tensor:
    """Finer-CAM maps (B, h, w): Grad-CAM of the target class against its `num_compare` closest classes."""
    activations = _features(model, x, create_graph)
    return finercam_from_activations(
        model, activations, target, create_graph=create_graph, num_compare=num_compare
    )[0]


def _target_gradient(model: Classifier, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
    """d logit_target / d x for each sample (x is a fresh leaf)."""
    x.requires_grad_(True)
    score = model(x).gather(1, target[:, None]).sum()
    return torch.autograd.grad(score, x, create_graph=create_graph)[0]


@torch.enable_grad()
def smoothgrad_attribution(
    model: Classifier,
    x: Tensor,
    target: Tensor,
    *,
    samples: int = 16,
    sigma: float = 0.15,
    generator: torch.Generator | None = None,
    create_graph: bool = False,
) -> Tensor:
    """SmoothGrad (Smilkov et al. 2017): mean over `samples` noisy copies of d logit_target / d x.

    The noise is N(0, (sigma * (max x_b - min x_b))^2) per sample b, i.e. sigma is a fraction of each
    image's value range as in the paper. It is drawn from `generator` (global RNG when None), on the
    generator's device, as one (B * samples, C, H, W) tensor ordered sample-major like captum's
    NoiseTunnel (`x.repeat_interleave(samples, 0) + noise`), so seeding both identically gives the same
    noise. The copies go through the model one batch of B at a time. Returns (B, C, H, W), signed.
    """
    if samples < 1:
        raise ValueError(f"SmoothGrad needs samples >= 1, got {samples}")
    x = x.detach()
    batch = x.shape[0]
    sample_dims = tuple(range(1, x.ndim))
    spread = sigma * (x.amax(dim=sample_dims) - x.amin(dim=sample_dims))
    device = x.device if generator is None else generator.device
    noise = torch.randn((batch * samples, *x.shape[1:]), generator=generator, device=device, dtype=x.dtype)
    noise = noise.to(x.device).view(batch, samples, *x.shape[1:])
    noise *= spread.view(batch, 1, *([1] * len(sample_dims)))
    total = torch.zeros_like(x)
    for i in range(samples):
        noisy = (x + noise[:, i]).requires_grad_(True)
        total = total + _target_gradient(model, noisy, target, create_graph)
    return total / samples


def quadrature(method: str, steps: int) -> tuple[list[float], list[float]]:
    """(step sizes, alphas) on [0, 1] for IG's path integral, exactly as captum computes them.

    `gausslegendre` (captum's default) or `riemann_{left,right,middle,trapezoid}`.
    """
    if method == "gausslegendre":
        if steps < 1:
            raise ValueError(f"Gauss-Legendre needs steps >= 1, got {steps}")
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (0.5 * weights).tolist(), (0.5 * (1 + nodes)).tolist()
    rules = {
        "riemann_left": (0.0, 1 - 1 / steps),
        "riemann_right": (1 / steps, 1.0),
        "riemann_middle": (1 / (2 * steps), 1 - 1 / (2 * steps)),
        "riemann_trapezoid": (0.0, 1.0),
    }
    if method not in rules:
        raise ValueError(f"unknown integration method {method!r}; valid: gausslegendre, {', '.join(rules)}")
    if steps < 2:
        raise ValueError(f"Riemann rules need steps >= 2, got {steps}")
    sizes = [1 / steps] * steps
    if method == "riemann_trapezoid":
        sizes[0] /= 2
        sizes[-1] /= 2
    return sizes, torch.linspace(*rules[method], steps).tolist()


@torch.enable_grad()
def integrated_gradients_attribution(
    model: Classifier,
    x: Tensor,
    target: Tensor,
    *,
    steps: int = 32,
    method: str = "gausslegendre",
    create_graph: bool = False,
) -> Tensor:
    """Integrated Gradients (Sundararajan et al. 2017) from the black (all-zero) image, (B, C, H, W).

    IG = x * sum_i w_i d logit_target / d x (alpha_i x), with captum's quadrature; one batch of B per
    path point, so memory does not grow with `steps` unless `create_graph` keeps the graphs.
    """
    sizes, alphas = quadrature(method, steps)
    x = x.detach()
    total = torch.zeros_like(x)
    for size, alpha in zip(sizes, alphas, strict=True):
        point = (alpha * x).requires_grad_(True)
        total = total + _target_gradient(model, point, target, create_graph) * size
    return total * x


@EXPLAINERS.register("smoothgrad")
@torch.enable_grad()
def smoothgrad(
    model: Classifier,
    x: Tensor,
    target: Tensor,
    *,
    create_graph: bool = False,
    samples: int = 16,
    sigma: float = 0.15,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SmoothGrad maps (B, H, W): the channel sum of `smoothgrad_attribution`, ReLU'd and normalized."""
    attribution = smoothgrad_attribution(
        model, x, target, samples=samples, sigma=sigma, generator=generator, create_graph=create_graph
    )
    return normalize_maps(attribution.sum(dim=1))


@EXPLAINERS.register("ig")
@torch.enable_grad()
def integrated_gradients(
    model: Classifier,
    x: Tensor,
    target: Tensor,
    *,
    create_graph: bool = False,
    steps: int = 32,
    method: str = "gausslegendre",
) -> Tensor:
    """IG maps (B, H, W): the channel sum of `integrated_gradients_attribution`, ReLU'd and normalized."""
    attribution = integrated_gradients_attribution(
        model, x, target, steps=steps, method=method, create_graph=create_graph
    )
    return normalize_maps(attribution.sum(dim=1))
