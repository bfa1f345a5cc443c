"""Attacks: identical to torchattacks, budget and range invariants, mode restoration, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torchattacks
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from attacks import ATTACKS, fgsm, mifgsm, pgd
from benchmark.models import build_model
from benchmark.registry import UserError

EPS = 0.03


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(0)
    model = build_model("cnn", 5, dropout=0.2)
    x = torch.rand(4, 3, 32, 32)
    x[0, :, :4, :4] = 0.0  # pixels at the [0, 1] border exercise the clamp
    x[1, :, :4, :4] = 1.0
    return model, x, torch.tensor([0, 1, 2, 4])


def _assert_identical(ours: Tensor, theirs: Tensor) -> None:
    assert not torch.isnan(theirs).any()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert (ours != theirs).float().mean() < 1e-3  # in practice bit-identical


def test_registry_order() -> None:
    assert ATTACKS.names() == ["fgsm", "mifgsm", "pgd", "sca", "apgd-ce", "apgd-t", "square", "aa"]


def test_fgsm_identical_to_torchattacks(setup) -> None:
    model, x, y = setup
    _assert_identical(fgsm.fgsm(model, x, y, EPS), torchattacks.FGSM(model, eps=EPS)(x, y))


def test_mifgsm_identical_to_torchattacks(setup) -> None:
    model, x, y = setup
    theirs = torchattacks.MIFGSM(model, eps=EPS, alpha=EPS / 4, steps=10, decay=1.0)(x, y)
    _assert_identical(mifgsm.mifgsm(model, x, y, EPS), theirs)


def test_pgd_identical_to_torchattacks_with_the_same_random_start(setup) -> None:
    model, x, y = setup
    torch.manual_seed(11)
    theirs = torchattacks.PGD(model, eps=EPS, alpha=EPS / 4, steps=10, random_start=True)(x, y)
    ours = pgd.pgd(model, x, y, EPS, generator=torch.Generator().manual_seed(11))
    _assert_identical(ours, theirs)
    torch.manual_seed(11)  # generator=None draws from the global RNG, exactly as torchattacks
    _assert_identical(pgd.pgd(model, x, y, EPS), theirs)
    other = pgd.pgd(model, x, y, EPS, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(other, theirs)


@pytest.mark.parametrize("name", ["fgsm", "mifgsm", "pgd"])
def test_eps_zero_returns_x_exactly(setup, name: str) -> None:
    model, x, y = setup
    out = ATTACKS.get(name)(model, x, y, 0.0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(["fgsm", "mifgsm", "pgd"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_outputs_stay_in_range_and_in_budget(name: str, eps: float, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    x = torch.rand(5, 3, 4, 4)
    x[:, 0] = x[:, 0].round()  # many pixels exactly on the borders 0 and 1
    y = torch.randint(0, 3, (5,))
    kwargs = {} if name == "fgsm" else {"steps": steps}
    out = ATTACKS.get(name)(model, x, y, eps, generator=torch.Generator().manual_seed(seed), **kwargs)
    assert out.shape == x.shape and not out.requires_grad
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().max() <= eps * (1 + 1e-6) + 1e-7


class _SaturatingModel(nn.Module):
    """logit_1 = 5 min(mean(x), cap): the input gradient is exactly zero once mean(x) >= cap."""

    def __init__(self, cap: float) -> None:
        super().__init__()
        self.cap = cap
        self.scale = nn.Parameter(torch.tensor(5.0))

    def forward(self, x: Tensor) -> Tensor:
        score = self.scale * x.flatten(1).mean(dim=1).clamp(max=self.cap)
        return torch.stack([torch.zeros_like(score), score], dim=1)


def test_mifgsm_zero_gradient_gives_no_nan() -> None:
    x, y = torch.full((2, 3, 4, 4), 0.5), torch.tensor([0, 0])
    # Gradient zero from the start (cap below mean x): nothing moves, nothing is NaN.
    assert torch.equal(mifgsm.mifgsm(_SaturatingModel(cap=0.4), x, y, EPS), x)
    # Zero from step 3 on: torchattacks' 0/0 momentum is NaN and sign(NaN) = 0 freezes the sample
    # after 2 steps; here the momentum keeps pushing to the budget's edge.
    model = _SaturatingModel(cap=0.5 + 1.5 * EPS / 4)
    ours = mifgsm.mifgsm(model, x, y, EPS)
    theirs = torchattacks.MIFGSM(model, eps=EPS, alpha=EPS / 4)(x, y)
    torch.testing.assert_close(ours - x, torch.full_like(x, EPS))
    torch.testing.assert_close(theirs - x, torch.full_like(x, 2 * EPS / 4))


@pytest.mark.parametrize("name", ["fgsm", "mifgsm", "pgd"])
def test_model_mode_is_restored(setup, name: str) -> None:
    model, x, y = setup
    model.train()
    model.backbone[1].eval()  # a mixed state (e.g. frozen BatchNorm) comes back as it was
    before = [m.training for m in model.modules()]
    seen = []
    handle = model.register_forward_hook(lambda module, args, out: seen.append(module.training))
    try:
        ATTACKS.get(name)(model, x, y, EPS, steps=2) if name != "fgsm" else fgsm.fgsm(model, x, y, EPS)
        with pytest.raises(ValueError):  # restored on errors too (labels of the wrong shape)
            ATTACKS.get(name)(model, x, y[:2], EPS)
    finally:
        handle.remove()
    assert seen and not any(seen)  # the attack itself ran in eval mode
    assert [m.training for m in model.modules()] == before
    model.eval()


@pytest.mark.parametrize("name", ["fgsm", "mifgsm", "pgd"])
@pytest.mark.parametrize("eps", [-0.01, math.nan, math.inf])
def test_bad_eps_is_a_user_error(setup, name: str, eps: float) -> None:
    model, x, y = setup
    with pytest.raises(UserError, match="eps"):
        ATTACKS.get(name)(model, x, y, eps)


@pytest.mark.parametrize("name", ["mifgsm", "pgd"])
def test_bad_steps_and_alpha_are_user_errors(setup, name: str) -> None:
    model, x, y = setup
    with pytest.raises(UserError, match="steps"):
        ATTACKS.get(name)(model, x, y, EPS, steps=0)
    with pytest.raises(UserError, match="alpha"):
        ATTACKS.get(name)(model, x, y, EPS, alpha=-1.0)


def test_normalized_inputs_are_rejected(setup) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd.pgd(model, x * 2 - 1, y, EPS)
