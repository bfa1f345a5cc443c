"""Faithfulness of saliency maps: Comprehensiveness and Sufficiency (paper Eq. 19-20, DeYoung et al. 2020).

ERASER-style AOPC: for each fraction k of the image's pixels (default 1, 5, 10, 20, 50 %), the top-k
pixels of the map are removed (Comp) or kept alone (Suff), "removed" meaning all channels set to 0 in
[0, 1] pixel space, and the drop of the true class's softmax probability is averaged over k, x100.
High Comp: the highlighted pixels matter. Low Suff: they alone keep the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks.base import eval_mode

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


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


def _true_class_prob(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return torch.softmax(model(x), dim=1).gather(1, y[:, None]).squeeze(1)


@torch.no_grad()
def comprehensiveness_sufficiency(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    maps: Tensor,
    fractions: Sequence[float] = FRACTIONS,
) -> tuple[Tensor, Tensor]:
    """Per-sample (Comp, Suff), each (B,) in percent; average them over the test set yourself.

    x: images (B, C, H, W) in [0, 1]; y: true labels (B,); maps: saliency (B, h, w), any resolution,
    upsampled bilinearly to (H, W). For each fraction f, the top max(1, round(f * H * W)) pixels count.
    Comp = mean_f [p_y(x) - p_y(x without top-f)], Suff = mean_f [p_y(x) - p_y(top-f of x only)],
    p_y = softmax probability of the true class. The model runs in eval mode (its mode is restored).
    """
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be a non-empty list of numbers in (0, 1], got {fractions!r}")
    batch, _, height, width = x.shape
    ranks = pixel_ranks(maps.to(x.dtype), (height, width))[:, None]
    comp = torch.zeros(batch, dtype=x.dtype, device=x.device)
    suff = torch.zeros_like(comp)
    with eval_mode(model):
        clean = _true_class_prob(model, x, y)
        for fraction in fractions:
            keep = (ranks < max(1, round(fraction * height * width))).to(x.dtype)
            probs = _true_class_prob(model, torch.cat([x * (1 - keep), x * keep]), torch.cat([y, y]))
            comp += clean - probs[:batch]
            suff += clean - probs[batch:]
    return comp * (100 / len(fractions)), suff * (100 / len(fractions))
