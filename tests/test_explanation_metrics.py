"""Localization, stability and randomization metrics against Quantus and scipy, and on hand-built cases.

Quantus is called with precomputed attributions (a_batch) and masks (s_batch), model=None, and
abs=False, normalise=False: our maps are non-negative, so abs changes nothing, and Quantus' default
normalise_by_max rescales by a constant, which none of the three scores depends on; switched off,
Quantus scores exactly the arrays we pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import quantus
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from attacks.pgd import pgd
from benchmark.explanation_metrics import (
    FAITHFULNESS_KEYS,
    RANDOMIZATION_THRESHOLD,
    calibration_maps,
    explanation_metrics,
    pointing_game,
    randomized_model,
    rank_correlation,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    topk_intersection,
)
from benchmark.models import build_model


def _masks(batch: int, size: int, generator: torch.Generator) -> Tensor:
    """(B, 1, size, size) 0/1 masks: one random axis-aligned rectangle per sample."""
    masks = torch.zeros(batch, 1, size, size)
    for i in range(batch):
        top, left = torch.randint(0, size // 2, (2,), generator=generator).tolist()
        height, width = torch.randint(2, size // 2, (2,), generator=generator).tolist()
        masks[i, 0, top : top + height, left : left + width] = 1.0
    return masks


def _quantus(metric: type, maps: Tensor, masks: Tensor) -> np.ndarray:
    """Quantus' per-sample scores for maps (B, H, W) at the masks' (B, 1, H, W) resolution."""
    a_batch = maps[:, None].double().numpy()
    s_batch = masks.numpy()
    scorer = metric(abs=False, normalise=False, disable_warnings=True)
    scores = scorer(model=None, x_batch=s_batch, y_batch=np.zeros(len(maps), dtype=int), a_batch=a_batch,
                    s_batch=s_batch, device="cpu")
    return np.asarray(scores, dtype=np.float64)


@pytest.fixture
def cams_and_masks() -> tuple[Tensor, Tensor, Tensor]:
    """Random continuous 8x8 maps (no ties), 32x32 rectangle masks, and the maps upsampled to 32x32.
    The first half of the masks also cover a 5x5 patch around the upsampled map's peak, so every score
    takes different values across samples (random rectangles alone rarely catch the peak)."""
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(12, 8, 8, generator=generator, dtype=torch.float64)
    masks = _masks(12, 32, generator)
    upsampled = F.interpolate(maps[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    for i in range(6):
        row, col = divmod(upsampled[i].argmax().item(), 32)
        masks[i, 0, max(0, row - 2) : row + 3, max(0, col - 2) : col + 3] = 1.0
    return maps, masks, upsampled


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (relevance_mass_accuracy, quantus.RelevanceMassAccuracy),
        (relevance_rank_accuracy, quantus.RelevanceRankAccuracy),
        (pointing_game, quantus.PointingGame),
    ],
)
def test_localization_matches_quantus(ours, theirs, cams_and_masks: tuple[Tensor, Tensor, Tensor]) -> None:
    """Ours on 8x8 maps (upsampled inside) = Quantus on the same maps upsampled by hand, per sample."""
    maps, masks, upsampled = cams_and_masks
    expected = _quantus(theirs, upsampled, masks)
    scores = ours(maps, masks)
    assert scores.shape == (12,)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=0, atol=1e-6)
    assert len(set(np.round(expected, 6))) > 1  # the samples differ: the check compares something
    np.testing.assert_allclose(ours(maps, masks[:, 0]).numpy(), expected, rtol=0, atol=1e-6)  # (B, H, W) masks


def test_pointing_game_counts_a_tied_maximum_in_the_mask_as_a_hit_like_quantus() -> None:
    masks = torch.zeros(3, 1, 4, 4)
    masks[:, 0, 3, :2] = 1.0
    maps = torch.zeros(3, 4, 4)
    maps[0, 0, 3] = maps[0, 3, 1] = 1.0  # tied maxima, the later one (raster order) in the mask
    maps[1, 0, 0] = maps[1, 2, 2] = 1.0  # tied maxima, none in the mask
    maps[2, 3, 0], maps[2, 3, 2] = 0.5, 1.0  # the single maximum just outside
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(_quantus(quantus.PointingGame, maps, masks), [1.0, 0.0, 0.0])


def test_known_answers_for_the_mask_its_inverse_and_an_empty_map() -> None:
    masks = _masks(4, 16, torch.Generator().manual_seed(1))
    exact, inverse, empty = masks[:, 0], 1 - masks[:, 0], torch.zeros(4, 16, 16)
    ones = torch.ones(4)
    assert torch.equal(relevance_mass_accuracy(exact, masks), ones)
    assert torch.equal(relevance_rank_accuracy(exact, masks), ones)
    assert torch.equal(pointing_game(exact, masks), ones)
    assert torch.equal(relevance_mass_accuracy(inverse, masks), torch.zeros(4))
    assert torch.equal(relevance_rank_accuracy(inverse, masks), torch.zeros(4))
    assert torch.equal(pointing_game(inverse, masks), torch.zeros(4))
    # an all-zero map localizes nothing (Quantus would give NaN mass and a pointing hit)
    assert torch.equal(relevance_mass_accuracy(empty, masks), torch.zeros(4))
    assert torch.equal(pointing_game(empty, masks), torch.zeros(4))
    # only the positive part is mass: negative relevance outside the mask does not count against it
    signed = exact - 3 * inverse
    assert torch.equal(relevance_mass_accuracy(signed, masks), ones)
    # a mask with no pixel leaves every score undefined
    nothing = torch.zeros(1, 1, 16, 16)
    for metric in (relevance_mass_accuracy, relevance_rank_accuracy, pointing_game):
        assert math.isnan(metric(exact[:1], nothing).item())


def test_rank_accuracy_breaks_ties_in_raster_order() -> None:
    """A constant map ranks row by row: k = 4 mask pixels, the first row holds 2 of them -> 0.5."""
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, 0, 2:] = masks[0, 0, 1, 2:] = 1.0
    assert relevance_rank_accuracy(torch.ones(1, 4, 4), masks).item() == 0.5


def test_rank_correlation_matches_scipy_with_ties_and_constant_maps() -> None:
    generator = torch.Generator().manual_seed(3)
    maps = torch.rand(6, 8, 8, generator=generator)
    other = torch.rand(6, 8, 8, generator=generator)
    maps[2:4] = (maps[2:4] * 4).floor()  # heavy ties
    other[3] = (other[3] * 3).floor()
    other[1] = maps[1] + 0.1 * other[1]  # strongly correlated
    maps[4] = 0.7  # constant: undefined
    rho = rank_correlation(maps, other)
    assert rho.dtype == torch.float64 and rho.shape == (6,)
    for i in range(6):
        if i == 4:
            with pytest.warns(stats.ConstantInputWarning):
                expected = stats.spearmanr(maps[i].flatten().numpy(), other[i].flatten().numpy()).statistic
            assert math.isnan(expected) and math.isnan(rho[i].item())
        else:
            expected = stats.spearmanr(maps[i].flatten().numpy(), other[i].flatten().numpy()).statistic
            assert rho[i].item() == pytest.approx(expected, abs=1e-12)
    assert rho[1] > 0.8
    assert torch.equal(rank_correlation(other, other), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(rank_correlation(other, -other), -torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)


def test_topk_intersection_known_answers() -> None:
    """8x8 maps: k = round(0.1 * 64) = 6 cells."""
    maps = torch.arange(64.0).view(1, 8, 8)  # top 6 = cells 58..63
    assert topk_intersection(maps, maps).item() == 1.0
    assert topk_intersection(maps, -maps).item() == 0.0
    shifted = maps.clone()
    shifted.view(-1)[[58, 59, 60]] = -1.0  # three of the top six drop out, cells 55..57 come in
    assert topk_intersection(maps, shifted).item() == 0.5
    # ties in raster order: a constant map's top 6 are cells 0..5, the top 6 of a decreasing raster map
    decreasing = -maps
    assert topk_intersection(torch.ones(1, 8, 8), decreasing).item() == 1.0
    assert topk_intersection(maps, maps, fraction=0.001).item() == 1.0  # k is at least 1
    with pytest.raises(ValueError, match="same shape"):
        topk_intersection(maps, torch.zeros(1, 4, 4))


def test_calibration_maps() -> None:
    masks = _masks(3, 16, torch.Generator().manual_seed(4))
    maps = calibration_maps(masks, torch.Generator().manual_seed(5))
    again = calibration_maps(masks, torch.Generator().manual_seed(5))
    assert set(maps) == {"random", "mask", "inverse_mask"}
    assert all(m.shape == (3, 16, 16) for m in maps.values())
    assert torch.equal(maps["random"], again["random"])
    assert torch.equal(maps["random"], torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(maps["mask"], masks[:, 0]) and torch.equal(maps["inverse_mask"], 1 - masks[:, 0])


def test_randomized_model_resets_every_layer_reproducibly_and_leaves_the_rng_alone() -> None:
    model = build_model("cnn", 5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(0.123)  # no value any initializer produces everywhere
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.fill_(0.5)
                module.running_var.fill_(2.0)
    model.train()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    randomized = randomized_model(model, 7)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items()) and model.training
    assert not any(m.training for m in randomized.modules())
    for (name, before), after in zip(model.named_parameters(), randomized.parameters(), strict=True):
        assert not torch.equal(before, after), name
    for module in randomized.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
    same = randomized_model(model, 7).state_dict()
    assert all(torch.equal(v, same[k]) for k, v in randomized.state_dict().items())
    other = randomized_model(model, 8).state_dict()
    assert not torch.equal(other["fc.weight"], same["fc.weight"])
    torch.manual_seed(7)  # the training run's initialization from the same seed is not what comes back
    assert not torch.equal(build_model("cnn", 5).fc.weight, same["fc.weight"])


def test_randomized_model_refuses_parameters_it_cannot_reset() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    with pytest.raises(ValueError, match="reset_parameters"):
        randomized_model(nn.Sequential(nn.Linear(2, 2), Scaled()), 0)


def _batches(with_masks: bool) -> list[dict[str, Tensor]]:
    """Two batches of 8 random 32x32 images with rectangle masks (16 images)."""
    generator = torch.Generator().manual_seed(6)
    batches = []
    for _ in range(2):
        x, y = torch.rand(8, 3, 32, 32, generator=generator), torch.randint(0, 5, (8,), generator=generator)
        batch = {"x": x, "y": y}
        if with_masks:
            batch["mask"] = _masks(8, 32, generator)
        batches.append(batch)
    return batches


def _pgd_examples(model: nn.Module, batches: list[dict[str, Tensor]], eps: float, steps: int) -> list[Tensor]:
    """PGD's adversarial examples of each batch, from a generator seeded 0 (the evaluation passes its table PGD's)."""
    generator = torch.Generator().manual_seed(0)
    return [pgd(model, b["x"], b["y"], eps, generator=generator, steps=steps) for b in batches]


def test_explanation_metrics_record_layout_and_ranges() -> None:
    torch.manual_seed(0)
    model = build_model("cnn", 5).train()
    adversarial = _pgd_examples(model, _batches(True), 8 / 255, 2)
    rng = torch.get_rng_state()
    record = explanation_metrics(model, _batches(True), limit=12, eps=8 / 255, adversarial=adversarial, seed=0)
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert set(record) == {*FAITHFULNESS_KEYS, "calibration", "localization", "stability", "randomization"}
    assert FAITHFULNESS_KEYS == ("Comp", "Suff", "Comp_blur", "Suff_blur")
    for scores in (record, *record["calibration"].values()):
        assert all(isinstance(scores[k], float) and -100 <= scores[k] <= 100 for k in FAITHFULNESS_KEYS)
    assert set(record["calibration"]) == {"random", "mask", "inverse_mask"}
    assert set(record["localization"]) == {"relevance_mass", "relevance_rank", "pointing_game"}
    assert all(0 <= v <= 1 for v in record["localization"].values())
    stability = record["stability"]
    assert set(stability) == {"eps", "attack", "topk_intersection", "spearman", "spearman_n"}
    assert stability["eps"] == 8 / 255 and stability["attack"] == "pgd"
    assert 0 <= stability["topk_intersection"] <= 1 and 0 < stability["spearman_n"] <= 12
    assert -1 <= stability["spearman"] <= 1
    randomization = record["randomization"]
    assert set(randomization) == {"spearman", "spearman_n", "flagged", "threshold"}
    assert randomization["threshold"] == RANDOMIZATION_THRESHOLD and 0 < randomization["spearman_n"] <= 12
    assert randomization["flagged"] == (randomization["spearman"] >= RANDOMIZATION_THRESHOLD)
    # only the first 12 images count: a third batch changes nothing, the 12-image record is reproducible
    again = explanation_metrics(model, [*_batches(True), *_batches(True)], limit=12, eps=8 / 255,
                                adversarial=[*adversarial, *adversarial], seed=0)
    assert again == record


def test_explanation_metrics_without_masks_omits_calibration_and_localization() -> None:
    torch.manual_seed(0)
    model = build_model("cnn", 5)
    record = explanation_metrics(model, _batches(False), limit=16, eps=0.0,
                                 adversarial=_pgd_examples(model, _batches(False), 0.0, 1), seed=0)
    assert set(record) == {*FAITHFULNESS_KEYS, "stability", "randomization"}
    # eps = 0: x_adv = x, so the maps are unchanged wherever defined
    assert record["stability"]["topk_intersection"] == 1.0
    assert record["stability"]["spearman"] in (None, pytest.approx(1.0))
