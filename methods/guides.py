"""Guide maps M(x) for explanation-guided losses (EGAT's L_egl, paper Sec. IV-A3 and Table III).

A guide is built once per method as `build_guide(name, sigma=..., has_masks=...)`, which checks its
settings (so a bad combination fails before training starts), and is then called per batch as
`guide(batch, generator) -> (B, 1, H, W)` in [0, 1] at the input resolution; `resize_guide` brings it
to an explanation map's resolution by area averaging.

- `gray`: the paper's choice, luminance 0.299R + 0.587G + 0.114B.
- `gray+noise`: gray + N(0, sigma^2) per pixel, clipped to [0, 1] (Table III: sigma 0.01 and 0.5). The
  noise is drawn afresh every batch from the method's generator.
- `golden`: the dataset's object masks (Table III's oracle); a UserError where the dataset has none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.registry import Registry, UserError

#: ITU-R BT.601 luma weights of R, G, B.
LUMINANCE = (0.299, 0.587, 0.114)

GuideMap = Callable[[dict[str, Tensor], torch.Generator | None], Tensor]
GuideFactory = Callable[..., GuideMap]
GUIDES: Registry[GuideFactory] = Registry("guide")


def luminance(x: Tensor) -> Tensor:
    """Grayscale 0.299R + 0.587G + 0.114B of images x (B, 3, H, W) in [0, 1], as (B, 1, H, W)."""
    return torch.einsum("bchw,c->bhw", x, x.new_tensor(LUMINANCE)).unsqueeze(1)


def _no_noise(name: str, sigma: float) -> None:
    if sigma != 0:
        raise UserError(f"guide {name!r} takes no noise (guide_sigma={sigma}); use 'gray+noise' for a noisy guide")


@GUIDES.register("gray")
def gray(*, sigma: float, has_masks: bool) -> GuideMap:
    """The grayscale image itself (paper Sec. IV-A3)."""
    _no_noise("gray", sigma)
    return lambda batch, generator: luminance(batch["x"])


@GUIDES.register("gray+noise")
def gray_noise(*, sigma: float, has_masks: bool) -> GuideMap:
    """Grayscale plus Gaussian noise of standard deviation `sigma`, clipped to [0, 1] (Table III)."""
    if not sigma >= 0:
        raise UserError(f"guide 'gray+noise' needs guide_sigma >= 0, got {sigma}")

    def guide(batch: dict[str, Tensor], generator: torch.Generator | None) -> Tensor:
        clean = luminance(batch["x"])
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        return clean.add_(noise, alpha=sigma).clamp_(0, 1)

    return guide


@GUIDES.register("golden")
def golden(*, sigma: float, has_masks: bool) -> GuideMap:
    """The dataset's object masks (Table III's human-labeled "golden" guide)."""
    _no_noise("golden", sigma)
    if not has_masks:
        raise UserError("guide 'golden' needs object masks and this dataset has none (e.g. egat-golden); "
                        "use a dataset with masks (the built-in shapes and digits) or guide 'gray'")
    return lambda batch, generator: batch["mask"]


def build_guide(name: str, *, sigma: float = 0.0, has_masks: bool = False) -> GuideMap:
    """The registered guide `name`, checked against its noise level and the dataset (UserError if unusable)."""
    return GUIDES.get(name)(sigma=float(sigma), has_masks=has_masks)


def resize_guide(guide: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-average a (B, 1, H, W) guide to an explanation map's size: (B, h, w) (a copy-free no-op if equal)."""
    if tuple(guide.shape[-2:]) != tuple(size):
        guide = F.adaptive_avg_pool2d(guide, size)
    return guide[:, 0]
