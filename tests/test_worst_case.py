"""The AutoAttack family (apgd-ce, apgd-t, square, aa): agreement with torchattacks, the worst case's
bookkeeping, budget and range invariants, eps 0 and bad parameters. Small on purpose: a random cnn and a
tiny conv net on a few dozen 32x32 images, reduced iteration and query counts."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchattacks
from torch import Tensor, nn

from attacks import ATTACKS
from attacks.apgd import apgd_ce, apgd_t, checkpoints
from attacks.autoattack import MEMBERS, aa, worst_case_stages
from attacks.square import square
from benchmark.models import build_model
from benchmark.registry import UserError

EPS = 0.02  # the profiles' table eps: on the random cnn some points break and some do not
FAMILY = ["apgd-ce", "apgd-t", "square", "aa"]
#: reduced versions, so that each test stays small
REDUCED = {"apgd-ce": {"n_iter": 10}, "apgd-t": {"n_iter": 10, "n_targets": 2}, "square": {"n_queries": 30},
           "aa": {"n_iter": 10, "n_targets": 2, "n_queries": 30}}


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item() * 100


@pytest.fixture(scope="module")
def cnn() -> tuple[nn.Module, Tensor, Tensor]:
    """The random 5-class cnn, 32 images labelled with its predictions except 4 (misclassified from the start)."""
    torch.manual_seed(0)
    model = build_model("cnn", 5, dropout=0.0).eval()
    x = torch.rand(32, 3, 32, 32)
    x[0, :, :4, :4] = 0.0  # pixels at the [0, 1] border exercise the clamps
    x[1, :, :4, :4] = 1.0
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % 5
    return model, x, y


@pytest.fixture(scope="module")
def tiny() -> tuple[nn.Module, Tensor, Tensor]:
    """A random conv net cheap enough for hundreds of queries, on 48 images labelled with its predictions."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 5)).eval()
    x = torch.rand(48, 3, 32, 32)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_registered_after_the_others_without_the_profiles_steps() -> None:
    assert ATTACKS.names()[-4:] == FAMILY
    assert not any(ATTACKS.get(name).takes_steps for name in FAMILY)  # own iteration counts, not PGD's 10


def test_checkpoints_are_autoattacks() -> None:
    """p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 of 100 iterations (the paper's p_j)."""
    assert checkpoints(100) == {21: 22, 40: 19, 56: 16, 69: 13, 79: 10, 86: 7, 92: 6, 98: 6}
    assert checkpoints(1) == {0: 1}


def test_apgd_ce_identical_to_torchattacks(cnn) -> None:
    """Same seed, so the same random starts: x_adv bit-identical, over 2 restarts and 15 step-size checkpoints
    (with this seed both of the halving conditions decide some)."""
    model, x, y = cnn
    theirs = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=30, n_restarts=2, seed=3, loss="ce")(x, y)
    ours = apgd_ce(model, x, y, EPS, generator=torch.Generator().manual_seed(3), n_iter=30, n_restarts=2,
                   early_exit=False)
    assert torch.equal(ours, theirs)
    assert 0 < _accuracy(model, ours, y) < _accuracy(model, x, y)  # some points break, some do not
    theirs = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=5, seed=4, loss="ce")(x, y)
    torch.manual_seed(4)  # generator=None draws from the global RNG, which torchattacks seeds with `seed`
    assert torch.equal(apgd_ce(model, x, y, EPS, n_iter=5, early_exit=False), theirs)


def test_apgd_t_identical_to_torchattacks(cnn) -> None:
    """The default 9 targets are capped at 4 on 5 classes: torchattacks.APGDT with n_classes=5, bit-identical."""
    model, x, y = cnn
    theirs = torchattacks.APGDT(model, norm="Linf", eps=EPS, steps=10, n_restarts=1, seed=3, n_classes=5)(x, y)
    ours = apgd_t(model, x, y, EPS, generator=torch.Generator().manual_seed(3), n_iter=10, early_exit=False)
    assert torch.equal(ours, theirs)
    assert 0 < _accuracy(model, ours, y) < _accuracy(model, x, y)


@pytest.mark.parametrize("name", ["apgd-ce", "apgd-t", "aa"])
def test_early_exit_keeps_the_robust_set_bit_for_bit(cnn, name: str) -> None:
    """A point leaving the working batch at the iterate that breaks it changes no other point's trajectory: the
    robust masks (and aa's stages) with and without early exit are equal bit for bit, on a model where points break
    at different iterations (some at the start, some late, some never), and every output stays a break."""
    model, x, y = cnn
    params = {"apgd-ce": {"n_iter": 30, "n_restarts": 2}, "apgd-t": {"n_iter": 20, "n_targets": 3},
              "aa": {"n_iter": 20, "n_targets": 3, "n_queries": 20}}[name]
    masks, stages = {}, {}
    for early_exit in (True, False):
        stages[early_exit] = {}
        extra = {"stages": stages[early_exit]} if name == "aa" else {}
        out = ATTACKS.get(name)(model, x, y, EPS, generator=torch.Generator().manual_seed(5), early_exit=early_exit,
                                **params, **extra)
        with torch.no_grad():
            masks[early_exit] = model(out).argmax(1) == y
    assert torch.equal(masks[True], masks[False])
    assert all(torch.equal(stages[True][k], stages[False][k]) for k in stages[False])
    assert 4 < (~masks[True]).sum() < len(y)  # breaks beyond the 4 misclassified from the start, and survivors


def test_apgd_t_needs_four_classes() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    with pytest.raises(UserError, match="at least 4 classes"):
        apgd_t(model, torch.rand(2, 3, 4, 4), torch.tensor([0, 1]), EPS, n_iter=2)


def test_square_agrees_with_torchattacks(tiny) -> None:
    """Random search with different draws (one square per image here, one per batch there): the robust accuracy
    over 4 seeds agrees within 5 points (seen: within 1.5; its per-seed spread is about 2 images of 48), well
    below the accuracy after one query (92%)."""
    model, x, y = tiny
    eps, queries, seeds = 0.03, 200, range(4)
    ours = [_accuracy(model, square(model, x, y, eps, generator=torch.Generator().manual_seed(s), n_queries=queries),
                      y) for s in seeds]
    theirs = [_accuracy(model, torchattacks.Square(model, eps=eps, n_queries=queries, seed=s)(x, y), y) for s in seeds]
    start = _accuracy(model, square(model, x, y, eps, generator=torch.Generator().manual_seed(0), n_queries=1), y)
    assert abs(sum(ours) / 4 - sum(theirs) / 4) <= 5
    assert sum(ours) / 4 < start - 25, (ours, start)


def test_square_uses_no_gradients(tiny) -> None:
    model, x, y = tiny
    calls = []
    handle = model.register_forward_hook(
        lambda module, args, out: calls.append(torch.is_grad_enabled() or args[0].requires_grad))
    try:
        square(model, x, y, 0.03, generator=torch.Generator().manual_seed(0), n_queries=20)
    finally:
        handle.remove()
    assert calls and not any(calls)
    assert all(p.grad is None for p in model.parameters())


def test_aa_is_the_worst_case_of_its_members(cnn) -> None:
    """aa runs apgd-ce first with the fresh generator, so on the points apgd-ce alone breaks (same seed) it returns
    apgd-ce's output, and it is at least as strong; the later members run on fewer points with other draws, so
    for them `<=` is what this seed gives (AutoAttack's flow), not a theorem."""
    model, x, y = cnn
    params = REDUCED["aa"]
    out = aa(model, x, y, EPS, generator=torch.Generator().manual_seed(0), **params)
    alone = {name: ATTACKS.get(name)(model, x, y, EPS, generator=torch.Generator().manual_seed(0), **REDUCED[name])
             for name in FAMILY[:3]}
    broken = torch.no_grad()(lambda: model(alone["apgd-ce"]).argmax(1) != y)()
    assert torch.equal(out[broken], alone["apgd-ce"][broken])
    worst = _accuracy(model, out, y)
    assert all(worst <= _accuracy(model, x_adv, y) for x_adv in alone.values()), worst
    assert worst < _accuracy(model, alone["apgd-ce"], y)  # apgd-t adds breaks here


def test_stages_are_aas_cumulative_robust_masks(cnn) -> None:
    """worst_case_stages returns aa's output bit for bit (same seed), the apgd-ce stage is apgd-ce's own robust mask
    (it runs first, with the fresh generator), each stage keeps a subset of the previous one's points, and the last
    is the robust mask of the output."""
    model, x, y = cnn
    params = REDUCED["aa"]
    x_adv, stages = worst_case_stages(model, x, y, EPS, generator=torch.Generator().manual_seed(0), **params)
    assert torch.equal(x_adv, aa(model, x, y, EPS, generator=torch.Generator().manual_seed(0), **params))
    assert list(stages) == list(MEMBERS) and all(m.dtype == torch.bool and m.shape == y.shape for m in stages.values())
    alone = apgd_ce(model, x, y, EPS, generator=torch.Generator().manual_seed(0), n_iter=params["n_iter"])
    with torch.no_grad():
        assert torch.equal(stages["apgd-ce"], model(alone).argmax(1) == y)
        assert torch.equal(stages["square"], model(x_adv).argmax(1) == y)
    for before, after in itertools.pairwise(MEMBERS):
        assert not (stages[after] & ~stages[before]).any()
    assert stages["apgd-t"].sum() < stages["apgd-ce"].sum()  # apgd-t adds breaks here


def test_stages_follow_the_attack_contract(cnn) -> None:
    """eps 0 returns x and the clean-correct mask at every stage; bad parameters are UserErrors, also at eps 0."""
    model, x, y = cnn
    x_adv, stages = worst_case_stages(model, x, y, 0.0)
    assert torch.equal(x_adv, x) and x_adv.data_ptr() != x.data_ptr()
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    assert not clean.all() and all(torch.equal(mask, clean) for mask in stages.values())
    for eps in (0.0, EPS):
        with pytest.raises(UserError, match="aa n_queries"):
            worst_case_stages(model, x, y, eps, n_queries=0)
    with pytest.raises(UserError, match="eps"):
        worst_case_stages(model, x, y, -0.1)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("eps", [0.01, 0.3])
def test_outputs_stay_in_range_and_in_budget(tiny, name: str, eps: float) -> None:
    model, x, y = tiny
    x = x[:16].clone()
    x[:, 0] = x[:, 0].round()  # many pixels exactly on the borders 0 and 1
    out = ATTACKS.get(name)(model, x, y[:16], eps, generator=torch.Generator().manual_seed(0), **REDUCED[name])
    assert out.shape == x.shape and not out.requires_grad
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().max() <= eps * (1 + 1e-6) + 1e-7


@pytest.mark.parametrize("name", FAMILY)
def test_eps_zero_returns_x_exactly(tiny, name: str) -> None:
    model, x, y = tiny
    out = ATTACKS.get(name)(model, x, y, 0.0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize(("name", "param", "value", "message"), [
    ("apgd-ce", "n_iter", 0, ">= 1"), ("apgd-ce", "n_iter", 2.5, ">= 1"), ("apgd-ce", "n_restarts", True, ">= 1"),
    ("apgd-t", "n_targets", 0, ">= 1"), ("apgd-t", "n_iter", -3, ">= 1"),
    ("square", "n_queries", 0, ">= 1"), ("square", "p_init", 0.0, r"\(0, 1\]"), ("square", "p_init", 1.5, r"\(0, 1\]"),
    ("aa", "n_iter", 0, ">= 1"), ("aa", "n_targets", 0, ">= 1"), ("aa", "n_queries", 0, ">= 1"),
    ("aa", "n_restarts", 0, ">= 1"),
])
def test_bad_params_are_user_errors(tiny, name: str, param: str, value: object, message: str) -> None:
    model, x, y = tiny
    for eps in (0.0, EPS):  # checked before anything runs, also at eps 0
        with pytest.raises(UserError, match=rf"{name} {param} .*{message}"):
            ATTACKS.get(name)(model, x, y, eps, **{param: value})
