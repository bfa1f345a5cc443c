"""Comprehensiveness / Sufficiency on hand-built models whose answers are known."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from benchmark import faithfulness
from benchmark.faithfulness import comprehensiveness_sufficiency, pixel_ranks, removal_fill


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


def test_black_is_the_default_fill_and_blur_shows_the_blurred_image() -> None:
    """`fill="black"` is today's removal (the hand-computed example above). With blur, the removed top-k
    pixels (the k brightest = the last k in raster order) show the blurred image b instead:
    Comp = 100 mean_k [p(x) - p(x with its last k pixels from b)], Suff likewise with the first 100 - k."""
    x = (torch.arange(100, dtype=torch.float64) + 1).div(100).view(1, 1, 10, 10)
    model, y = _SumModel(), torch.tensor([0])
    default = comprehensiveness_sufficiency(model, x, y, x[:, 0])
    black = comprehensiveness_sufficiency(model, x, y, x[:, 0], fill="black")
    blur = comprehensiveness_sufficiency(model, x, y, x[:, 0], fill="blur")
    assert all(torch.equal(a, b) for a, b in zip(default, black, strict=True))
    assert black[0].item() == pytest.approx(21.899599, abs=1e-5)
    flat, blurred = x.flatten(), removal_fill(x, "blur").flatten()
    p = torch.sigmoid(0.1 * (flat.sum() - 25))
    comp = [p - torch.sigmoid(0.1 * (flat[:-k].sum() + blurred[-k:].sum() - 25)) for k in (1, 5, 10, 20, 50)]
    suff = [p - torch.sigmoid(0.1 * (blurred[:-k].sum() + flat[-k:].sum() - 25)) for k in (1, 5, 10, 20, 50)]
    assert blur[0].item() == pytest.approx(20 * sum(comp).item(), abs=1e-9)
    assert blur[1].item() == pytest.approx(20 * sum(suff).item(), abs=1e-9)
    assert abs(blur[0].item() - black[0].item()) > 10  # the fill matters: this is not the black number


def test_fill_equal_to_the_image_removes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comp = Suff = 0 when the fill is x itself: removal changes pixels only through the fill."""
    monkeypatch.setattr(faithfulness, "removal_fill", lambda x, fill: x.clone())
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 4))
    comp, suff = comprehensiveness_sufficiency(model, x, torch.tensor([0, 1, 3]), torch.rand(3, 2, 2), fill="blur")
    assert torch.equal(comp, torch.zeros(3)) and torch.equal(suff, torch.zeros(3))


def test_blur_of_a_constant_image_is_the_constant() -> None:
    x = torch.full((2, 3, 32, 32), 0.3, dtype=torch.float64)
    assert torch.allclose(removal_fill(x, "blur"), x, rtol=0, atol=1e-12)
    assert torch.equal(removal_fill(x, "black"), torch.zeros_like(x))


def test_blur_is_a_normalized_gaussian_with_sigma_an_eighth_of_the_side() -> None:
    """An impulse in the middle of a 64x64 image blurs to the sampled 2-D Gaussian of sigma 8 (no edge)."""
    x = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    x[0, 0, 32, 32] = 1.0
    blurred = removal_fill(x, "blur")[0, 0]
    offsets = torch.arange(-24, 25, dtype=torch.float64)
    gauss = torch.exp(-0.5 * (offsets / 8) ** 2)
    gauss /= gauss.sum()
    assert torch.allclose(blurred[8:57, 8:57], torch.outer(gauss, gauss), rtol=0, atol=1e-12)
    assert blurred[:8].abs().max() == 0 and blurred.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_unknown_fill_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="black, blur"):
        comprehensiveness_sufficiency(nn.Flatten(), torch.rand(1, 1, 2, 2), torch.tensor([0]), torch.rand(1, 2, 2),
                                      fill="grey")
