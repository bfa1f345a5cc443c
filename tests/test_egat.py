"""EGAT and AT: each loss term against its formula, ablations, same-class mixup, guides, registry, training."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from attacks.pgd import pgd
from benchmark.config import PROFILES
from benchmark.explain import gradcam
from benchmark.models import Classifier, build_model
from benchmark.registry import UserError
from methods import METHODS, method_hparams
from methods.egat import EGAT, frozen_batchnorm_stats, same_class_partners
from methods.guides import build_guide, luminance, resize_guide

EGAT_NAMES = ("egat", "egat-advce", "egat-noegl", "egat-noat", "egat-sg", "egat-ig", "egat-finercam", "egat-noise0.01",
              "egat-noise0.5", "egat-golden")
#: settings that keep the tests fast (the formulas do not depend on them)
FAST = {"pgd_steps": 2, "explainer_samples": 2, "explainer_steps": 2}


def _model(seed: int = 0, dropout: float = 0.0) -> Classifier:
    torch.manual_seed(seed)
    return build_model("cnn", 5, dropout=dropout).train()


def _batch(seed: int = 1) -> dict[str, torch.Tensor]:
    """8 random 32x32 images; classes 0-2 twice, 3 and 4 alone (singletons)."""
    generator = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(8, 3, 32, 32, generator=generator), "y": torch.tensor([0, 1, 2, 3, 0, 1, 4, 2]),
            "domain": torch.zeros(8, dtype=torch.long),
            "mask": (torch.rand(8, 1, 32, 32, generator=generator) > 0.5).float()}


def _method(name: str, model: Classifier, *, seed: int = 0, has_masks: bool = True, **overrides):
    """METHODS[name] with the paper profile's hyperparameters; `seed` fixes its random draws."""
    hparams = method_hparams(name, PROFILES.get("paper"))
    hparams.update({**{k: v for k, v in FAST.items() if k in hparams}, **overrides})
    torch.manual_seed(seed)
    return METHODS.get(name)(model, hparams, has_masks=has_masks)


def _grads(model: Classifier, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters()), retain_graph=True, materialize_grads=True))


def test_registry_and_paper_hyperparameters():
    assert [n for n in METHODS.names() if n == "at" or n.startswith("egat")] == ["egat", "at", *EGAT_NAMES[1:]]
    egat = METHODS.get("egat").hparams
    assert (egat["lambda_adv"], egat["lambda_egl"], egat["lambda_reg"], egat["lambda_map"]) == (0.5, 1, 1, 0.2)
    assert (egat["pgd_eps"], egat["pgd_steps"], egat["pgd_alpha_ratio"], egat["mixup_alpha"]) == (0.02, 10, 0.25, 0.2)
    expected = {"egat-advce": {"classification_input": "adversarial"}, "egat-noegl": {"lambda_egl": 0.0},
                "egat-noat": {"lambda_adv": 0.0},
                "egat-sg": {"explainer": "smoothgrad"}, "egat-ig": {"explainer": "ig"},
                "egat-finercam": {"explainer": "finercam"},
                "egat-noise0.01": {"guide": "gray+noise", "guide_sigma": 0.01},
                "egat-noise0.5": {"guide": "gray+noise", "guide_sigma": 0.5}, "egat-golden": {"guide": "golden"}}
    for name, differences in expected.items():
        changed = {k: v for k, v in METHODS.get(name).hparams.items()
                   if egat.get(k) != v and not k.startswith("explainer_")}
        assert changed == differences, name
    for name in (*EGAT_NAMES, "at"):
        method = _method(name, _model())
        assert isinstance(method, EGAT) == (name != "at")
    at = _method("at", _model(), pgd_steps=10).pgd
    assert (at.eps, at.steps, at.alpha) == (0.02, 10, 0.005)
    with pytest.raises(UserError, match="unknown hyperparameter"):
        method_hparams("egat", PROFILES.get("quick"), {"lambda_5": 1})
    with pytest.raises(UserError, match="lambda_egl must be >= 0"):
        _method("egat", _model(), lambda_egl=-1.0)
    with pytest.raises(UserError, match="explainer_samples"):
        _method("egat", _model(), explainer="gradcam", explainer_samples=4)


def test_each_term_equals_its_formula():
    """In train mode without dropout: each of x, x_adv, x~ is its own BatchNorm batch, so a separate
    forward of each gives exactly the method's numbers."""
    model, batch = _model(), _batch()
    x, y = batch["x"], batch["y"]
    method = _method("egat", model)
    x_adv = pgd(model, x, y, 0.02, generator=torch.Generator().manual_seed(0), steps=2)
    partner, lam = same_class_partners(y, torch.Generator().manual_seed(0)), 0.3
    guide = luminance(x)
    terms = method.terms(x, y, x_adv=x_adv, partner=partner, lam=lam, guide=guide)

    x_mix = lam * x + (1 - lam) * x[partner]
    maps, maps_adv, maps_mix = (gradcam(model, v, y) for v in (x, x_adv, x_mix))
    p, q = F.softmax(model(x), dim=1), F.softmax(model(x_adv), dim=1)
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    target = gray.view(8, 8, 4, 8, 4).mean(dim=(2, 4))  # 32x32 -> the CAM's 8x8 by 4x4 area averages
    phi = maps.clamp(1e-4, 1 - 1e-4)
    expected = {
        "ce": F.cross_entropy(model(x), y),
        "kl": (p * (p.log() - q.log())).sum(dim=1).mean(),
        "map_l2": ((maps - maps_adv) ** 2).sum(dim=(1, 2)).sqrt().mean(),
        "egl": -(target * phi.log() + (1 - target) * (1 - phi).log()).mean(),
        "reg_ce": F.cross_entropy(model(x_mix), y),
        "reg_l1": (lam * maps + (1 - lam) * maps[partner] - maps_mix).abs().mean(),
        "reg_sparsity": maps_mix.abs().mean(),
    }
    assert list(terms) == list(expected)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6, msg=name)
        assert terms[name] > 1e-4, name  # non-trivial values: the comparison tests something
    reverse = (q * (q.log() - p.log())).sum(dim=1).mean()
    assert not torch.allclose(terms["kl"], reverse, rtol=1e-3)  # KL(p_x || p_adv), not the reverse


def test_loss_is_the_weighted_sum_of_the_logged_terms():
    method = _method("egat", _model(dropout=0.1))
    loss, logs = method.loss(_batch(), step=1)
    l1, l2, l3, l4 = 0.5, 1.0, 1.0, 0.2
    total = (logs["ce"] + l1 * (logs["kl"] + l4 * logs["map_l2"]) + l2 * logs["egl"]
             + l3 * (logs["reg_ce"] + logs["reg_l1"] + logs["reg_sparsity"]))
    assert loss.item() == pytest.approx(total, rel=1e-5) and logs["loss"] == pytest.approx(loss.item())


@pytest.mark.parametrize("name, terms", [("lambda_adv", ("kl", "map_l2")), ("lambda_egl", ("egl",)),
                                         ("lambda_reg", ("reg_ce", "reg_l1", "reg_sparsity")),
                                         ("lambda_map", ("map_l2",))])
def test_zero_lambda_removes_exactly_its_terms_gradient(name: str, terms: tuple[str, ...]):
    model, batch = _model(), _batch()
    full = _method("egat", copy.deepcopy(model))
    inputs = full.sample(batch)
    values = full.terms(batch["x"], batch["y"], **inputs)
    weights = full.weights()
    total = sum(weights[k] * v for k, v in values.items())
    removed = sum(weights[k] * values[k] for k in terms)
    expected = [a - b for a, b in zip(_grads(full.model, total), _grads(full.model, removed), strict=True)]

    ablated = _method("egat", copy.deepcopy(model), **{name: 0.0})
    ablated_loss, logs = ablated.loss(batch, step=1)
    assert (name == "lambda_adv") == (ablated.sample(batch)["x_adv"] is None)  # no attack without L_adv
    if name != "lambda_map":
        assert not set(terms) & set(logs)
    assert any(g.abs().max() > 1e-3 for g in _grads(full.model, removed))  # the removed part mattered
    for got, want in zip(_grads(ablated.model, ablated_loss), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_mixup_pairs_only_same_class_images():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = torch.randint(0, 10, (32,), generator=generator)
        partner = same_class_partners(y, generator)
        assert torch.equal(y[partner], y)
        assert torch.equal(partner.sort().values, torch.arange(32))  # each image is a partner once
        counts = torch.bincount(y, minlength=10)[y]
        assert torch.equal(partner == torch.arange(32), counts == 1)  # only singletons pair with themselves
    batch = _batch()
    method = _method("egat", _model())
    partner = method.sample(batch)["partner"]
    assert torch.equal(batch["y"][partner], batch["y"])
    assert torch.equal(partner[[3, 6]], torch.tensor([3, 6]))


def test_adversarial_terms_vanish_when_x_adv_is_x():
    model, batch = _model(), _batch()
    method = _method("egat", model, pgd_eps=0.0)
    inputs = method.sample(batch)
    assert torch.equal(inputs["x_adv"], batch["x"])
    terms = method.terms(batch["x"], batch["y"], **inputs)
    assert terms["kl"].abs() < 1e-6 and terms["map_l2"] < 1e-6
    loss, _ = method.loss(batch, step=1)
    assert all(torch.isfinite(g).all() for g in _grads(model, loss))


def test_branches_share_one_dropout_mask_so_x_adv_equal_to_x_costs_nothing():
    """In train mode with dropout on, the clean, adversarial and mixed rows of an image share one mask: with
    x_adv = x, L_adv's KL and map distance are exactly 0 (independent masks gave about 0.2 / 0.6)."""
    model, batch = _model(dropout=0.5), _batch()
    method = _method("egat", model)
    method.train()
    inputs = {**method.sample(batch), "x_adv": batch["x"].clone()}
    terms = method.terms(batch["x"], batch["y"], **inputs)
    assert terms["kl"].item() == 0.0 and terms["map_l2"].item() == 0.0
    # the mask is still random per image and per step: two calls differ, so dropout is really on
    again = method.terms(batch["x"], batch["y"], **inputs)
    assert not torch.equal(again["ce"], terms["ce"])


def test_egat_advce_classifies_x_adv_and_keeps_every_other_term():
    """egat-advce's loss = CE(f(x_adv), y) + the literal EGAT's other weighted terms, on the same inputs."""
    batch = _batch()
    literal, advce = _method("egat", _model()), _method("egat-advce", _model())
    inputs = literal.sample(batch)
    x, y = batch["x"], batch["y"]
    ours, reference = advce.terms(x, y, **inputs), literal.terms(x, y, **inputs)
    assert list(ours) == list(reference)
    with frozen_batchnorm_stats(advce.model):  # train-mode BatchNorm on x_adv alone, as its own pass does
        expected_ce = F.cross_entropy(advce.model(inputs["x_adv"]), y)
    torch.testing.assert_close(ours["ce"], expected_ce)
    torch.testing.assert_close(reference["ce"], F.cross_entropy(literal.model(x), y))
    for name in ours.keys() - {"ce"}:
        torch.testing.assert_close(ours[name], reference[name])
    weights = advce.weights()
    loss = sum(weights[k] * v for k, v in ours.items())
    torch.testing.assert_close(loss, expected_ce + sum(weights[k] * reference[k] for k in reference if k != "ce"))
    with pytest.raises(UserError, match="classification_input must be one of clean, adversarial"):
        _method("egat", _model(), classification_input="x_adv")


def test_guides():
    batch = _batch()
    gray = build_guide("gray")(batch, None)
    x = batch["x"]
    torch.testing.assert_close(gray[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    noisy = build_guide("gray+noise", sigma=0.5)(batch, torch.Generator().manual_seed(0))
    assert noisy.min() == 0 and noisy.max() == 1 and 0.2 < (noisy - gray).abs().mean() < 0.5
    slight = build_guide("gray+noise", sigma=0.01)(batch, torch.Generator().manual_seed(0))
    assert 0.003 < (slight - gray).abs().mean() < 0.01
    assert build_guide("golden", has_masks=True)(batch, None) is batch["mask"]
    assert resize_guide(gray, (8, 8)).shape == (8, 8, 8) and resize_guide(gray, (32, 32)).shape == (8, 32, 32)
    with pytest.raises(UserError, match="gray\\+noise"):
        build_guide("gray", sigma=0.1)
    with pytest.raises(UserError, match="unknown guide"):
        build_guide("grey")


def test_golden_guide_without_masks_is_a_clear_error():
    with pytest.raises(UserError, match="guide 'golden' needs object masks and this dataset has none"):
        _method("egat-golden", _model(), has_masks=False)
    method = _method("egat-golden", _model(), has_masks=True)
    batch = _batch()
    assert method.sample(batch)["guide"] is batch["mask"]


class _CountBackward(torch.autograd.Function):
    """Identity that counts the backward passes through it (placed after the backbone's first conv)."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        _CountBackward.calls += 1
        return grad


class _Counter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.forwards = {True: 0, False: 0}

    def forward(self, x):
        self.forwards[self.training] += 1
        return _CountBackward.apply(x)


def test_grad_cam_needs_no_backward_through_the_backbone():
    """Besides the attack: one training forward per part; the backbone's backward runs in loss.backward()."""
    model, batch = _model(dropout=0.1), _batch()
    counter = _Counter()
    model.backbone[0] = torch.nn.Sequential(model.backbone[0], counter)
    method = _method("egat", model, pgd_steps=3)
    _CountBackward.calls = 0
    loss, _ = method.loss(batch, step=1)
    assert counter.forwards == {False: 3, True: 3} and _CountBackward.calls == 3  # the attack's 3 steps
    loss.backward()
    assert _CountBackward.calls == 6  # one backward of each part, nothing for the maps


def test_input_resolution_explainers_compare_the_guide_at_input_resolution():
    model, batch = _model(), _batch()
    for name in ("egat-sg", "egat-ig"):
        method = _method(name, model)
        maps, logits = method.explain([batch["x"]], batch["y"])
        assert maps.shape == (8, 32, 32) and logits.shape == (8, 5) and maps.requires_grad
        assert torch.isfinite(method.loss(batch, step=1)[0])
    norm = model.backbone[1]
    before = norm.running_mean.clone(), norm.num_batches_tracked.clone(), norm.momentum
    with frozen_batchnorm_stats(model):
        model(batch["x"] * 0.1)
    assert torch.equal(norm.running_mean, before[0]) and torch.equal(norm.num_batches_tracked, before[1])
    assert norm.momentum == before[2]


def test_at_is_cross_entropy_on_pgd_examples():
    model, batch = _model(), _batch()
    reference = copy.deepcopy(model)
    method = _method("at", model, pgd_steps=3)
    x_adv = pgd(reference, batch["x"], batch["y"], 0.02, steps=3, alpha=0.005,
                generator=torch.Generator().manual_seed(method.random.seed))
    loss, logs = method.loss(batch, step=1)
    torch.testing.assert_close(loss, F.cross_entropy(reference(x_adv), batch["y"]))
    assert logs == {"ce_adv": pytest.approx(loss.item())}


def _train_steps(name: str, seed: int, steps: int = 2) -> tuple[Classifier, list[float]]:
    model = _model(seed, dropout=0.1)
    method = _method(name, model, seed=seed)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    losses = []
    for step in range(1, steps + 1):
        method.train()
        loss, _ = method.loss(_batch(step), step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("name", [*EGAT_NAMES, "at"])
def test_a_few_training_steps_give_finite_losses(name: str):
    _, losses = _train_steps(name, seed=0)
    assert all(torch.isfinite(torch.tensor(losses)))


def test_same_seed_gives_identical_weights():
    (a, _), (b, _), (c, _) = (_train_steps("egat", seed) for seed in (0, 0, 1))
    for (key, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), key
    assert not torch.equal(a.fc.weight, c.fc.weight)
