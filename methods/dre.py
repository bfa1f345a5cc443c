"""DRE: distributionally robust explanations (Li, Qiao, Wang, Lian, Zhu; CVPR 2023), as in its official code.

Official code (tangli-udel/DRE, dre/train.py and dre/mixuploss.py):
  loss = CE(f(x), y) + 1.0 * exp + 0.5 * sparse + 0.1 * mix_ce, where for each class c in the batch,
  with the class's images paired by a random permutation and l ~ Beta(0.2, 0.2) per image:
    x_mix = l x + (1 - l) x_perm,  Phi = min-max normalized Grad-CAM of class c (captum LayerGradCam on
    the last block, not ReLU'd, not upsampled),
    exp_c    = L1Loss(Phi(x_mix), l Phi(x) + (1 - l) Phi(x_perm))   (mean over pixels and images),
    sparse_c = (mean_n |Phi(x)_n|_s + mean_n |Phi(x_mix)_n|_s) / 2,
    mix_ce_c = CE(f(x_mix), c),
  and each term is the sum over present classes divided by the number of classes.
  |.|_s is what torch.linalg.norm(Phi, dim=(1, 2), ord=1) gives on the (N, 1, h, w) maps: for each
  column w the max over h, then averaged over columns by the mean. It is not a true L1 norm; it is
  kept as written so the 0.5 weight means what it meant there.
  Captum computes the Grad-CAM weights (spatial means of d logit_c / dA) without a graph, so the map
  is differentiable through the activations A only; the same here.

Deviations: the maps of a batch come from one features() pass over all its images (and one over
all mixes) instead of one captum pass per class: identical values, since the class loop only selects
images. Min-max normalization divides by (max - min + 1e-8), so a constant map gives 0, not NaN.
Official training details (Adam 5e-5, frozen BatchNorm, batch 16 per domain, augmentation on every
split) are replaced by the profile's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.models import Classifier
from methods.base import Method, Range, register_method

#: Added to max - min in the min-max normalization (the official code has none and gives NaN on flat maps).
MINMAX_EPS = 1e-8


def minmax_normalize(maps: Tensor) -> Tensor:
    """Per-sample (dim 0) min-max normalization to [0, 1], as DRE's `norm`."""
    flat = maps.flatten(1)
    low = flat.amin(dim=1).view(-1, *([1] * (maps.ndim - 1)))
    high = flat.amax(dim=1).view(-1, *([1] * (maps.ndim - 1)))
    return (maps - low) / (high - low + MINMAX_EPS)


def captum_gradcam(activations: Tensor, logits: Tensor, target: Tensor) -> Tensor:
    """Raw Grad-CAM (B, h, w) as captum's LayerGradCam: weights detached, differentiable through A."""
    score = logits.gather(1, target[:, None]).sum()
    (grads,) = torch.autograd.grad(score, activations, retain_graph=True)
    return (grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)


def column_max_norm(maps: Tensor) -> Tensor:
    """Per sample, the mean over columns of the column max of nonnegative maps (B, h, w): DRE's `linalg.norm`."""
    return maps.abs().amax(dim=1).mean(dim=1)


def same_class_permutation(y: Tensor) -> Tensor:
    """Indices pairing every sample with a random sample of its own class (possibly itself)."""
    perm = torch.arange(len(y), device=y.device)
    for c in torch.unique(y):
        members = torch.nonzero(y == c).squeeze(1)
        perm[members] = members[torch.randperm(len(members)).to(y.device)]
    return perm


def per_class_sum(values: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """sum over classes present of the class mean of per-sample `values`, divided by num_classes."""
    sums = torch.zeros(num_classes, device=values.device, dtype=values.dtype).index_add(0, y, values)
    counts = torch.bincount(y, minlength=num_classes).to(values.dtype)
    return (sums / counts.clamp(min=1)).sum() / num_classes


def dre_terms(model: Classifier, x: Tensor, y: Tensor, partner: Tensor, lam: Tensor
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(CE, exp, sparse, mix_ce) for images x paired with x[partner] (same class) at per-image ratios lam (B,)."""
    num_classes = model.num_classes
    activations = model.features(x)
    logits = model.head(activations)
    ce = F.cross_entropy(logits, y)
    maps = minmax_normalize(captum_gradcam(activations, logits, y))
    mix_weight = lam.view(-1, 1, 1, 1)
    x_mix = mix_weight * x + (1 - mix_weight) * x[partner]
    target_maps = lam.view(-1, 1, 1) * maps + (1 - lam.view(-1, 1, 1)) * maps[partner]
    mix_activations = model.features(x_mix)
    mix_logits = model.head(mix_activations)
    mix_maps = minmax_normalize(captum_gradcam(mix_activations, mix_logits, y))
    exp = per_class_sum((mix_maps - target_maps).abs().flatten(1).mean(dim=1), y, num_classes)
    sparse = per_class_sum((column_max_norm(maps) + column_max_norm(mix_maps)) / 2, y, num_classes)
    mix_ce = per_class_sum(F.cross_entropy(mix_logits, y, reduction="none"), y, num_classes)
    return ce, exp, sparse, mix_ce


@register_method(
    "dre", display="DRE",
    # the official code's weights (exp 1.0, sparse 0.5, mix CE 0.1) and mixup Beta(0.2, 0.2)
    hparams={"alpha": 0.2, "exp_weight": 1.0, "sparse_weight": 0.5, "mix_ce_weight": 0.1},
    search={"exp_weight": Range(0.1, 10.0, log=True), "sparse_weight": Range(0.05, 5.0, log=True),
            "mix_ce_weight": Range(0.01, 1.0, log=True)},
)
class DRE(Method):
    """CE + explanation-mixup consistency + sparsity + mixed-input CE, all with within-class pairs."""

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        hp = self.hparams
        x, y = batch["x"], batch["y"]
        partner = same_class_permutation(y)
        alpha = torch.tensor(float(hp["alpha"]))
        lam = torch.distributions.Beta(alpha, alpha).rsample((len(y),)).to(x.device)
        ce, exp, sparse, mix_ce = dre_terms(self.model, x, y, partner, lam)
        loss = ce + hp["exp_weight"] * exp + hp["sparse_weight"] * sparse + hp["mix_ce_weight"] * mix_ce
        return loss, {"ce": ce.item(), "exp": exp.item(), "sparse": sparse.item(), "mix_ce": mix_ce.item()}
