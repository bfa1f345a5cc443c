"""Explanation quality beyond Comp/Suff: localization, stability under attack, and a sanity check.

- Localization against the built-in datasets' exact object masks (Arras et al. 2022; Zhang et al. 2018):
  relevance mass accuracy, relevance rank accuracy, pointing game.
- Stability (Ghorbani et al. 2019): how much of the map of x survives on the map of a PGD example x_adv,
  as top-k intersection and Spearman rank correlation.
- Model-parameter randomization (Adebayo et al. 2018): maps that barely change when every weight is
  re-initialized cannot explain what the trained model learned.
- Calibration rows: random, mask and inverse-mask maps through Comp/Suff under both fills, so a reader
  sees which differences the faithfulness numbers can resolve at all.

Every metric is per sample ((B,) tensors). Maps (B, h, w) are upsampled bilinearly to the mask's (H, W)
(align_corners=False, as `faithfulness.pixel_ranks`); top-k selections break ties in raster order.
`explanation_metrics` is what the evaluator calls: one JSON-ready record.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor

from attacks.base import eval_mode
from benchmark.explain import EXPLAINERS
from benchmark.faithfulness import FILLS, comprehensiveness_sufficiency, pixel_ranks
from benchmark.models import Classifier

#: Share of the map's cells compared by `topk_intersection`. Ghorbani et al. keep the top 1000 of the
#: 224x224 = 50176 pixels (~2 %); our 8x8 CAMs have 64 cells, where 2 % is a single cell. 10 % = 6 cells
#: keeps the comparison about the map's peak region while not hinging on one cell's rank.
STABILITY_TOP_FRACTION = 0.1
#: Mean Spearman (trained vs randomized model maps) at or above which the explainer is flagged as
#: insensitive to the model. 0.5 is the conventional threshold of a "large" correlation (Cohen 1988),
#: fixed a priori: at that level the randomized model's maps keep most of the trained maps' ranking.
RANDOMIZATION_THRESHOLD = 0.5
#: Record keys of the faithfulness scores: Comp/Suff with the paper's black fill, then one pair per other fill.
FAITHFULNESS_KEYS = tuple(
    f"{score}{'' if fill == 'black' else '_' + fill}" for fill in FILLS for score in ("Comp", "Suff")
)

#: Mixed with the seed for `randomized_model`'s RNG, so its stream differs from training's `manual_seed(seed)`.
_RANDOMIZATION_TAG = 0xADEBA


def _as_masks(masks: Tensor) -> Tensor:
    """Masks (B, 1, H, W) or (B, H, W) as booleans (B, H, W)."""
    return (masks[:, 0] if masks.ndim == 4 else masks) > 0.5


def _upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Maps (B, h, w) bilinearly resized to `size` (align_corners=False); unchanged when already there."""
    if maps.shape[-2:] == size:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def relevance_mass_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of the map's positive mass inside the mask (Arras et al. 2022), (B,).

    0 for an all-zero map (it localizes nothing), NaN for an empty mask (as Quantus).
    """
    inside = _as_masks(masks)
    positive = torch.relu(_upsample(maps, inside.shape[-2:])).flatten(1)
    total = positive.sum(dim=1)
    within = (positive * inside.flatten(1)).sum(dim=1)
    score = torch.where(total > 0, within / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)
    return score.masked_fill(inside.flatten(1).sum(dim=1) == 0, math.nan)


def relevance_rank_accuracy(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of the map's k highest pixels inside the mask, k = the mask's area (Arras et al. 2022), (B,).

    Ties are broken in raster order (`pixel_ranks`); NaN for an empty mask (as Quantus).
    """
    inside = _as_masks(masks)
    area = inside.flatten(1).sum(dim=1)
    ranks = pixel_ranks(maps, inside.shape[-2:]).flatten(1)
    hits = ((ranks < area[:, None]) & inside.flatten(1)).sum(dim=1)
    return (hits / area).to(maps.dtype)


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """1.0 where the map's maximum lies in the mask, else 0.0 (Zhang et al. 2018), (B,).

    As Quantus' PointingGame (no tolerance, unweighted): with tied maxima, a hit if any of them is in the
    mask. A map without a positive value points nowhere: 0. NaN for an empty mask.
    """
    inside = _as_masks(masks)
    flat = _upsample(maps, inside.shape[-2:]).flatten(1)
    peak = flat.amax(dim=1, keepdim=True)
    hit = ((flat == peak) & inside.flatten(1)).any(dim=1) & (peak[:, 0] > 0)
    return hit.to(maps.dtype).masked_fill(inside.flatten(1).sum(dim=1) == 0, math.nan)


def topk_intersection(maps: Tensor, other: Tensor, fraction: float = STABILITY_TOP_FRACTION) -> Tensor:
    """Share of the top-k cells of `maps` also in the top-k of `other` (Ghorbani et al. 2019), (B,).

    Both (B, h, w) at their native resolution; k = max(1, round(fraction * h * w)); ties in raster order.
    """
    if maps.shape != other.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and other {tuple(other.shape)} must have the same shape")
    size = maps.shape[-2:]
    k = max(1, round(fraction * size[0] * size[1]))
    top = (pixel_ranks(maps, size) < k) & (pixel_ranks(other, size) < k)
    return top.flatten(1).sum(dim=1).to(maps.dtype) / k


def rank_correlation(maps: Tensor, other: Tensor) -> Tensor:
    """Spearman correlation per sample over the flattened maps (average ranks for ties), (B,) float64.

    Equals `scipy.stats.spearmanr` per sample; NaN where either map is constant (as scipy).
    """
    if maps.shape != other.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and other {tuple(other.shape)} must have the same shape")
    ranks = [stats.rankdata(m.detach().flatten(1).cpu().double().numpy(), axis=1) for m in (maps, other)]
    a, b = (r - r.mean(axis=1, keepdims=True) for r in ranks)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    defined = denominator > 0
    rho = np.full(len(a), np.nan)
    rho[defined] = (a * b).sum(axis=1)[defined] / denominator[defined]
    return torch.from_numpy(rho).to(maps.device)


def calibration_maps(masks: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
    """Reference maps (B, H, W) at mask resolution: "random" (U[0, 1) from `generator`), "mask", "inverse_mask".

    Through Comp/Suff they bracket what the numbers can show: the exact object should beat random, which
    should beat everything-but-the-object.
    """
    inside = _as_masks(masks).float()
    noise = torch.rand(inside.shape, generator=generator, device=generator.device).to(inside.device)
    return {"random": noise, "mask": inside, "inverse_mask": 1 - inside}


def randomized_model(model: Classifier, seed: int) -> Classifier:
    """A copy of `model` with every learnable layer re-initialized (Adebayo et al. 2018's full randomization).

    Every submodule with `reset_parameters` is reset (BatchNorm: weights and running statistics), on the
    CPU under a forked RNG, so the weights depend on the seed only, not on the device, and the global RNG
    is left as it was. The RNG is seeded from (seed, a fixed tag), not with the bare seed: training seeds
    torch with the bare seed before building the model (benchmark/train.py), and the copy must not be the
    trained model's own initialization. Raises if a parameter belongs to a module that cannot be reset,
    since a partial randomization would pass the check too easily. Returned in eval mode on model's device.
    """
    device = next(model.parameters()).device
    clone = copy.deepcopy(model).cpu()
    stream = np.random.SeedSequence([seed, _RANDOMIZATION_TAG]).generate_state(1, np.uint64)[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(stream))
        for name, module in clone.named_modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            elif any(True for _ in module.parameters(recurse=False)):
                raise ValueError(f"module {name!r} ({type(module).__name__}) has parameters but no reset_parameters")
    return clone.to(device).eval()


def _mean(values: Tensor) -> float | None:
    """Mean over the defined (non-NaN) values as a Python float; None when none is defined."""
    defined = values[~values.isnan()]
    return defined.double().mean().item() if len(defined) else None


def _faithfulness(model: Classifier, x: Tensor, y: Tensor, maps: Tensor) -> dict[str, Tensor]:
    """Per-sample Comp/Suff under every fill: keys Comp, Suff (black, the paper's), Comp_blur, Suff_blur."""
    scores = [comprehensiveness_sufficiency(model, x, y, maps, fill=fill) for fill in FILLS]
    return dict(zip(FAITHFULNESS_KEYS, (score for pair in scores for score in pair), strict=True))


def explanation_metrics(
    model: Classifier,
    batches: list[dict[str, Tensor]],
    *,
    limit: int,
    eps: float,
    adversarial: list[Tensor],
    seed: int,
    explainer: str = "gradcam",
) -> dict:
    """Faithfulness (both fills), calibration, localization, stability and randomization over the first
    `limit` test images of `batches` (batch dicts on one device), as a JSON-ready dict of Python floats.

    Maps are of the true class. Calibration and localization need the batches' "mask" and are omitted
    without it. Stability compares the maps of x and of its adversarial example under PGD at `eps` (`adversarial`: per
    batch, in order, at least up to `limit` images, the evaluation's table PGD examples: benchmark/evaluate.py);
    randomization compares them with `randomized_model(model, seed)`'s.
    Batches are processed one at a time, so memory does not grow with `limit`.
    """
    explain = EXPLAINERS.get(explainer)
    random_model = randomized_model(model, seed)
    device = batches[0]["x"].device
    calibration_generator = torch.Generator(device).manual_seed(seed)
    has_masks = all("mask" in batch for batch in batches)
    scores: dict[str, list[Tensor]] = {}

    def add(key: str, value: Tensor) -> None:
        scores.setdefault(key, []).append(value.detach().double().cpu())

    seen = 0
    with eval_mode(model):
        for batch, examples in zip(batches, adversarial, strict=False):
            x, y = batch["x"][: limit - seen], batch["y"][: limit - seen]
            if len(y) == 0:
                break
            seen += len(y)
            maps = explain(model, x, y)
            for key, value in _faithfulness(model, x, y, maps).items():
                add(key, value)
            if has_masks:
                masks = batch["mask"][: len(y)]
                for row, reference in calibration_maps(masks, calibration_generator).items():
                    for key, value in _faithfulness(model, x, y, reference).items():
                        add(f"calibration.{row}.{key}", value)
                add("localization.relevance_mass", relevance_mass_accuracy(maps, masks))
                add("localization.relevance_rank", relevance_rank_accuracy(maps, masks))
                add("localization.pointing_game", pointing_game(maps, masks))
            adv_maps = explain(model, examples[: len(y)], y)
            add("stability.topk_intersection", topk_intersection(maps, adv_maps))
            add("stability.spearman", rank_correlation(maps, adv_maps))
            add("randomization.spearman", rank_correlation(maps, explain(random_model, x, y)))
    if seen == 0:
        raise ValueError("explanation_metrics needs at least one test image")
    values = {key: torch.cat(parts) for key, parts in scores.items()}
    record: dict = {key: _mean(values[key]) for key in FAITHFULNESS_KEYS}
    if has_masks:
        record["calibration"] = {
            row: {key: _mean(values[f"calibration.{row}.{key}"]) for key in FAITHFULNESS_KEYS}
            for row in ("random", "mask", "inverse_mask")
        }
        record["localization"] = {
            key: _mean(values[f"localization.{key}"]) for key in ("relevance_mass", "relevance_rank", "pointing_game")
        }
    record["stability"] = {
        "eps": float(eps),
        "attack": "pgd",
        "topk_intersection": _mean(values["stability.topk_intersection"]),
        "spearman": _mean(values["stability.spearman"]),
        "spearman_n": int((~values["stability.spearman"].isnan()).sum()),
    }
    spearman = _mean(values["randomization.spearman"])
    record["randomization"] = {
        "spearman": spearman,
        "spearman_n": int((~values["randomization.spearman"].isnan()).sum()),
        "flagged": spearman is not None and spearman >= RANDOMIZATION_THRESHOLD,
        "threshold": RANDOMIZATION_THRESHOLD,
    }
    return record
