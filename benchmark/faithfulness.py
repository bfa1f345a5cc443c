"""Faithfulness of saliency maps: Comprehensiveness and Sufficiency (paper Eq. 19-20, DeYoung et al. 2020).

ERASER-style AOPC: for each fraction k of the image's pixels (default 1, 5, 10, 20, 50 %), the top-k
pixels of the map are removed (Comp) or kept alone (Suff), and the drop of the true class's softmax
probability is averaged over k, x100. High Comp: the highlighted pixels matter. Low Suff: they alone keep
the prediction.

"Removed" means replaced by a fill image (`removal_fill`). `black` (all channels 0 in [0, 1] pixel space)
is the paper's and ERASER's. Black patches are out of distribution, so a drop may measure the model's
reaction to the patch rather than to the missing evidence; `blur` (a Gaussian-blurred copy of the image,
Fong & Vedaldi 2017) removes detail while keeping colours and coarse layout. A map that is faithful under
both fills does not owe its score to one choice of fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import eval_mode

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)
#: Valid `fill` values of `removal_fill` / `comprehensiveness_sufficiency`.
FILLS = ("black", "blur")
#: Blur sigma as a fraction of the image's longer side (see `gaussian_blur`).
BLUR_SIGMA_FRACTION = 1 / 8


def pixel_ranks(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Rank (0 = most salient) of each pixel, (B, H, W), after bilinear upsampling of the maps to `size`.

    Ties are broken by raster order (row-major pixel index, lower first), so equal scores give a
    deterministic, device-independent order.
    """
    if maps.shape[-2:] != size:
        maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    scores = maps.flatten(1)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions).view(-1, *size)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, kernel radius ceil(3 sigma), reflect padding.

    The kernel is normalized to sum 1 and reflect padding adds no foreign values, so a constant image
    stays that constant. The radius is capped at side - 1, the most reflect padding allows.
    """
    radius = min(math.ceil(3 * sigma), x.shape[-2] - 1, x.shape[-1] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, -1)
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel[..., None], groups=x.shape[1])
    return F.conv2d(rows, kernel[:, :, None], groups=x.shape[1])


def removal_fill(x: Tensor, fill: str) -> Tensor:
    """The image shown where pixels are removed: zeros (`black`) or x blurred (`blur`), same shape as x.

    `blur` follows Fong & Vedaldi 2017's blur perturbation with sigma = max(H, W) / 8, fixed a priori from
    the image size and never from model scores: 4 px on 32x32 images, one cell of the 8x8 Grad-CAM grid,
    so a removed cell keeps its mean colour but loses the structure inside it; on 224x224 images it is
    28 px, about one cell of a 7x7 ResNet-50 grid. (Fong & Vedaldi's 10 px on 224 px images, scaled to
    32 px, is 1.4 px: a third of a cell, which would leave most of a removed cell's structure in place.)
    """
    if fill == "black":
        return torch.zeros_like(x)
    if fill == "blur":
        return gaussian_blur(x, BLUR_SIGMA_FRACTION * max(x.shape[-2:]))
    raise ValueError(f"unknown fill {fill!r}; valid: {', '.join(FILLS)}")


def _true_class_prob(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return torch.softmax(model(x), dim=1).gather(1, y[:, None]).squeeze(1)


@torch.no_grad()
def comprehensiveness_sufficiency(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    maps: Tensor,
    fractions: Sequence[float] = FRACTIONS,
    *,
    fill: str = "black",
) -> tuple[Tensor, Tensor]:
    """Per-sample (Comp, Suff), each (B,) in percent; average them over the test set yourself.

    x: images (B, C, H, W) in [0, 1]; y: true labels (B,); maps: saliency (B, h, w), any resolution,
    upsampled bilinearly to (H, W). For each fraction f, the top max(1, round(f * H * W)) pixels count.
    Comp = mean_f [p_y(x) - p_y(x without top-f)], Suff = mean_f [p_y(x) - p_y(top-f of x only)],
    p_y = softmax probability of the true class; removed pixels show `removal_fill(x, fill)`.
    The model runs in eval mode (its mode is restored).
    """
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be a non-empty list of numbers in (0, 1], got {fractions!r}")
    background = removal_fill(x, fill)
    batch, _, height, width = x.shape
    ranks = pixel_ranks(maps.to(x.dtype), (height, width))[:, None]
    comp = torch.zeros(batch, dtype=x.dtype, device=x.device)
    suff = torch.zeros_like(comp)
    with eval_mode(model):
        clean = _true_class_prob(model, x, y)
        for fraction in fractions:
            keep = ranks < max(1, round(fraction * height * width))
            removed = torch.where(keep, background, x), torch.where(keep, x, background)
            probs = _true_class_prob(model, torch.cat(removed), torch.cat([y, y]))
            comp += clean - probs[:batch]
            suff += clean - probs[batch:]
    return comp * (100 / len(fractions)), suff * (100 / len(fractions))
