"""Comprehensiveness / Sufficiency on hand-built models whose answers are known."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from benchmark.faithfulness import comprehensiveness_sufficiency, pixel_ranks


class _QuadrantModel(nn.Module):
    """Two classes; logit_1 = S - 8 with S the pixel sum of the top-left quadrant (other pixels ignored)."""

    def forward(self, x: Tensor) -> Tensor:
        half = x.shape[-1] // 2
        score = x[:, :, :half, :half].sum(dim=(1, 2, 3)) - 8
        return torch.stack([torch.zeros_like(score), score], dim=1)


class _SumModel(nn.Module):
    """Two classes; logit_0 = 0.1 (sum(x) - 25), logit_1 = 0: p_0 = sigmoid(0.1 (sum(x) - 25))."""

    def forward(self, x: Tensor) -> Tensor:
        score = 0.1 * (x.sum(dim=(1, 2, 3)) - 25)
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def _object_image() -> Tensor:
    """32x32 image: a bright 4x4 object at rows/cols 4-7 (in the top-left quadrant), zeros elsewhere in
    that quadrant, random pixels in the three other quadrants (which the model ignores)."""
    torch.manual_seed(0)
    x = torch.rand(1, 1, 32, 32)
    x[:, :, :16, :16] = 0.0
    x[:, :, 4:8, 4:8] = 1.0
    return x


def test_map_on_the_evidence_has_high_comp_and_low_suff() -> None:
    x, y = _object_image(), torch.tensor([1])
    on_object = torch.zeros(1, 8, 8)
    on_object[0, 1, 1] = 1.0  # the 8x8 cell over the object; bilinear upsampling keeps its 16 pixels on top
    assert set(pixel_ranks(on_object, (32, 32))[0, 4:8, 4:8].flatten().tolist()) == set(range(16))
    elsewhere = torch.zeros(1, 8, 8)
    elsewhere[0, 4:] = 1.0  # the bottom half: never touches the quadrant, even at 50 %
    model = _QuadrantModel()
    comp, suff = comprehensiveness_sufficiency(model, x, y, on_object)
    assert comp.shape == suff.shape == (1,)
    # top-1 % = 10 object pixels: Comp drop sigma(8) - sigma(-2), then sigma(8) - sigma(-8) for k >= 16 px;
    # Suff: sigma(8) - sigma(2) at 1 %, 0 once the whole object is kept.
    sigmoid = torch.sigmoid(torch.tensor([8.0, 2.0, -2.0, -8.0])).tolist()
    assert comp.item() == pytest.approx(
        100 * ((sigmoid[0] - sigmoid[2]) + 4 * (sigmoid[0] - sigmoid[3])) / 5, abs=1e-3
    )
    assert suff.item() == pytest.approx(100 * (sigmoid[0] - sigmoid[1]) / 5, abs=1e-3)
    assert comp.item() > 95 and suff.item() < 3
    comp, suff = comprehensiveness_sufficiency(model, x, y, elsewhere)
    assert comp.item() == 0.0 and suff.item() > 99


def test_hand_computed_example() -> None:
    """10x10 image with pixel i (raster order) = (i + 1) / 100 and the map = x: the top-k pixels are the k
    brightest. sum(x) = 50.5; the top 1, 5, 10, 20, 50 pixels sum to 1, 4.9, 9.55, 18.1, 37.75.
    p(x) = sigmoid(0.1 * 25.5); Comp = 100 mean_k [p(x) - sigmoid(0.1 (50.5 - top_k - 25))],
    Suff = 100 mean_k [p(x) - sigmoid(0.1 (top_k - 25))]."""
    x = (torch.arange(100, dtype=torch.float64) + 1).div(100).view(1, 1, 10, 10)
    comp, suff = comprehensiveness_sufficiency(_SumModel(), x, torch.tensor([0]), x[:, 0])
    assert comp.item() == pytest.approx(21.899599, abs=1e-5)
    assert suff.item() == pytest.approx(62.901955, abs=1e-5)


def test_ties_are_broken_in_raster_order() -> None:
    """A constant map ranks pixels row by row: the same numbers as a strictly decreasing raster map."""
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1])
    constant = torch.ones(2, 10, 10)
    decreasing = torch.linspace(1, 0, 100).view(1, 10, 10).expand(2, 10, 10)
    assert torch.equal(pixel_ranks(constant, (10, 10)), torch.arange(100).view(1, 10, 10).expand(2, 10, 10))
    model = nn.Sequential(nn.Flatten(), nn.Linear(300, 2))
    for a, b in zip(
        comprehensiveness_sufficiency(model, x, y, constant),
        comprehensiveness_sufficiency(model, x, y, decreasing),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_eval_mode_during_and_restored_after() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(48, 3)).train()
    x, y, maps = torch.rand(2, 3, 4, 4), torch.tensor([0, 2]), torch.rand(2, 2, 2)
    first = comprehensiveness_sufficiency(model, x, y, maps)
    second = comprehensiveness_sufficiency(model, x, y, maps)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))  # dropout was off
    assert model.training and model[1].training
    assert not first[0].requires_grad and model[2].weight.grad is None
    assert first[0].shape == first[1].shape == (2,)


def test_bad_fractions_are_rejected() -> None:
    with pytest.raises(ValueError, match="fractions"):
        comprehensiveness_sufficiency(
            nn.Flatten(), torch.rand(1, 1, 2, 2), torch.tensor([0]), torch.rand(1, 2, 2), ()
        )
