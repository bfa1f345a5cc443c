"""Training environments for IRM and DM-ADA: the data's own, or two pseudo-environments for one domain.

Both methods need several environments in a batch. The built-in benchmarks' training splits are made
of two environments whose spurious cue agrees with the class at different rates (the batch's `env`):
each environment in the batch is one, in increasing id. Otherwise, when a batch mixes several domains
(`batch["domain"]` takes several values), each domain is an environment, labelled by its domain id.
A folder dataset's batch has one domain and no environments; then the environments are the batch
itself (environment 0) and a photometrically shifted copy of it (environment 1): per image,
brightness, contrast and saturation factors drawn uniformly from [1 - s, 1 + s] and applied in that
order, each result clamped to [0, 1] (torchvision's ColorJitter formulas without the hue term, in a
fixed order; s = 0.3 is DomainBed's augmentation strength).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


class Environment(NamedTuple):
    """Images, labels and the environment's id (its domain id, or 0 / 1 for the pseudo-environments)."""

    x: Tensor
    y: Tensor
    env_id: int


def luminance(x: Tensor) -> Tensor:
    """Grayscale (B, 1, H, W) of RGB images x (B, 3, H, W)."""
    weights = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def photometric_shift(x: Tensor, strength: float) -> Tensor:
    """Per-image random brightness, contrast and saturation change of images in [0, 1] (global RNG)."""
    factors = 1 + strength * (2 * torch.rand(3, x.shape[0], 1, 1, 1, dtype=x.dtype).to(x.device) - 1)
    brightness, contrast, saturation = factors
    out = (x * brightness).clamp(0, 1)
    mean = luminance(out).mean(dim=(2, 3), keepdim=True)
    out = (mean + contrast * (out - mean)).clamp(0, 1)
    gray = luminance(out)
    return (gray + saturation * (out - gray)).clamp(0, 1)


def environments(batch: dict[str, Tensor], shift_strength: float) -> list[Environment]:
    """The data's environments in the batch, else one per domain, else the batch and its shifted copy."""
    x, y = batch["x"], batch["y"]
    for key in ("env", "domain"):
        labels = batch.get(key)
        if labels is not None and len(ids := torch.unique(labels).tolist()) > 1:
            return [Environment(x[labels == i], y[labels == i], i) for i in ids]
    return [Environment(x, y, 0), Environment(photometric_shift(x, shift_strength), y, 1)]
