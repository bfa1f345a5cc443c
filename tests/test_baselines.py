"""Baselines (IGR, IG-NORM, IRM, DRE, SGDrop, DM-ADA): their terms against formulas and reference code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from benchmark.config import PROFILES
from benchmark.data import ArrayDataset
from benchmark.models import build_model
from benchmark.train import seed_everything, train
from methods import METHODS, method_hparams
from methods.dmada import grad_reverse, grl_coefficient, mix_ratio
from methods.dre import dre_terms
from methods.environments import environments
from methods.ign import IGNorm, ig_norm_and_gradients, ig_norm_attack, integrated_loss_gradients
from methods.igr import input_gradient_penalty, lambda_for_inputs
from methods.irm import IRM, irm_penalty
from methods.sgdrop import saliency_drop_mask

BASELINES = ["igr", "ign", "dmada", "irm", "dre", "sgdrop"]


def _tiny_dataset(n: int = 24, size: int = 16, classes: int = 3, domain: int = 0, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return ArrayDataset(images, torch.arange(n) % classes, domain)


def _smooth_net(inputs: int = 48, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, 16), nn.Tanh(), nn.Linear(16, classes))


# ---------------------------------------------------------------- IGR


def test_igr_penalty_is_the_analytic_input_gradient_norm_of_a_linear_model():
    torch.manual_seed(0)
    linear = nn.Linear(12, 4)
    model = nn.Sequential(nn.Flatten(), linear)
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 3, 1])
    ce, penalty = input_gradient_penalty(model, x, y)
    # d CE_b / d x_b = W^T (softmax(W x_b + c) - onehot(y_b))
    probs = torch.softmax(linear(x.flatten(1)), dim=1)
    grads = (probs - F.one_hot(y, 4)) @ linear.weight
    analytic = grads.pow(2).sum(dim=1).mean()
    torch.testing.assert_close(penalty, analytic)
    torch.testing.assert_close(ce, F.cross_entropy(linear(x.flatten(1)), y))
    # double backprop: the penalty's parameter gradient is the analytic expression's
    ours = torch.autograd.grad(penalty, linear.weight)[0]
    torch.testing.assert_close(ours, torch.autograd.grad(analytic, linear.weight)[0])


def test_igr_loss_at_the_lambda_derived_for_pixel_inputs():
    """The declared lambda is the SVHN weight per sample, rescaled from unit-std inputs to [0, 1] pixels of std
    0.225: 1e4 / (2 * 256) * 0.225^2; IGR's loss on a linear model is CE + that lambda * the analytic norm."""
    derived = 1e4 / (2 * 256) * 0.225**2
    for profile in ("quick", "paper"):
        assert method_hparams("igr", PROFILES.get(profile))["lambda"] == pytest.approx(derived, rel=1e-12)
    assert derived == pytest.approx(0.98877, abs=1e-5)
    # the same penalty on std-s inputs x = s x' as on the standardized x': lambda scales with s^2
    assert lambda_for_inputs(1e4, 256, 1.0, 0.5) == pytest.approx(1e4 / 512 * 0.25)
    torch.manual_seed(0)
    linear = nn.Linear(12, 4)
    model = nn.Sequential(nn.Flatten(), linear)
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 3, 1])
    method = METHODS.get("igr")(model, method_hparams("igr", PROFILES.get("quick")))
    loss, logs = method.loss({"x": x, "y": y}, step=1)
    probs = torch.softmax(linear(x.flatten(1)), dim=1)
    analytic = ((probs - F.one_hot(y, 4)) @ linear.weight).pow(2).sum(dim=1).mean()
    torch.testing.assert_close(loss, F.cross_entropy(linear(x.flatten(1)), y) + derived * analytic)


# ---------------------------------------------------------------- IG-NORM


def test_ig_of_the_loss_satisfies_completeness():
    model = _smooth_net()
    x, y = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    x_end = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    ig = integrated_loss_gradients(model, x, x_end, y, points=300)
    gap = F.cross_entropy(model(x_end), y, reduction="none") - F.cross_entropy(model(x), y, reduction="none")
    torch.testing.assert_close(ig.flatten(1).sum(dim=1), gap.detach(), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("chunk", [2, 6])
def test_ig_norm_gradients_match_direct_double_backprop(chunk: int):
    model = _smooth_net()
    x, y = torch.rand(3, 3, 4, 4), torch.tensor([2, 1, 0])
    x_end = (x + 0.05 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    params = list(model.parameters())
    value, grads = ig_norm_and_gradients(model, x, x_end, y, 6, chunk, [x_end, *params])
    direct = integrated_loss_gradients(model, x, x_end, y, 6, create_graph=True).abs().flatten(1).sum(1).mean()
    torch.testing.assert_close(value, direct.detach())
    for ours, theirs in zip(grads, torch.autograd.grad(direct, [x_end, *params]), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_ig_norm_attack_stays_in_the_ball_and_raises_the_norm():
    model = _smooth_net()
    x, y = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    eps = 0.1
    torch.manual_seed(1)
    x_adv = ig_norm_attack(model, x, y, eps=eps, steps=5, step_size=eps / 4, points=4, chunk=4)
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    torch.manual_seed(1)
    start = ig_norm_attack(model, x, y, eps=eps, steps=0, step_size=eps / 4, points=4, chunk=4)

    def norm(end: torch.Tensor) -> float:
        return integrated_loss_gradients(model, x, end, y, 4).abs().sum().item()

    assert norm(x_adv) > norm(start)


def test_ign_loss_gradient_is_ce_plus_lambda_ig_norm():
    hparams = {**METHODS.get("ign").hparams, "points": 4, "approx_factor": 2, "steps": 2, "path_chunk": 2}
    torch.manual_seed(0)
    model = build_model("cnn", 3, dropout=0.0).eval()  # eval: BatchNorm identical across forward passes
    method = IGNorm(model, hparams)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(5)
    loss, logs = method.loss({"x": x, "y": y, "domain": torch.zeros(4, dtype=torch.long)}, 1)
    ours = torch.autograd.grad(loss, list(model.parameters()))
    torch.manual_seed(5)
    x_adv = ig_norm_attack(model, x, y, eps=hparams["eps"], steps=2, step_size=hparams["step_size"], points=2,
                           chunk=2)
    ig = integrated_loss_gradients(model, x, x_adv, y, 4, create_graph=True)
    reference = F.cross_entropy(model(x), y) + hparams["lambda"] * ig.abs().flatten(1).sum(1).mean()
    torch.testing.assert_close(loss.detach(), reference.detach())
    assert logs["ig_norm"] > 0
    for a, b in zip(ours, torch.autograd.grad(reference, list(model.parameters())), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- IRM


def test_irm_penalty_is_domainbeds_split_batch_formula():
    torch.manual_seed(0)
    logits, y = torch.randn(7, 4), torch.tensor([0, 3, 1, 1, 2, 0, 3])

    def scale_gradient(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # d/ds mean_b CE(s z_b, t_b) at s = 1 = mean_b (sum_k softmax(z_b)_k z_bk - z_b,t_b)
        return ((torch.softmax(z, 1) * z).sum(1) - z.gather(1, t[:, None]).squeeze(1)).mean()

    expected = scale_gradient(logits[::2], y[::2]) * scale_gradient(logits[1::2], y[1::2])
    torch.testing.assert_close(irm_penalty(logits, y), expected)


def test_irm_loss_weights_and_anneal_switch():
    method = IRM(build_model("cnn", 3).eval(), {"lambda": 100.0, "anneal_iters": 3, "shift_strength": 0.3})
    assert method.reset_optimizer_at == 4
    assert [method.penalty_weight(s) for s in (1, 3, 4, 9)] == [1.0, 1.0, 100.0, 100.0]
    x, y = torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    batch = {"x": x, "y": y, "domain": torch.zeros(6, dtype=torch.long)}
    torch.manual_seed(3)
    loss, logs = method.loss(batch, 4)
    torch.manual_seed(3)
    envs = environments(batch, 0.3)
    nll = sum(F.cross_entropy(method.model(e.x), e.y) for e in envs) / 2
    penalty = sum(irm_penalty(method.model(e.x), e.y) for e in envs) / 2
    torch.testing.assert_close(loss, nll + 100.0 * penalty)
    assert logs["penalty_weight"] == 100.0


def test_environments_are_domains_or_the_batch_and_a_shifted_copy():
    x, y = torch.rand(6, 3, 8, 8), torch.arange(6)
    mixed = environments({"x": x, "y": y, "domain": torch.tensor([2, 0, 2, 0, 0, 2])}, 0.3)
    assert [e.env_id for e in mixed] == [0, 2]
    assert mixed[0].y.tolist() == [1, 3, 4] and mixed[1].y.tolist() == [0, 2, 5]
    original, shifted = environments({"x": x, "y": y, "domain": torch.zeros(6, dtype=torch.long)}, 0.3)
    assert (original.env_id, shifted.env_id) == (0, 1) and original.x is x and torch.equal(shifted.y, y)
    assert shifted.x.shape == x.shape and shifted.x.min() >= 0 and shifted.x.max() <= 1
    assert not torch.allclose(shifted.x, x)


class _RecordingAdam(torch.optim.Adam):
    instances: list[_RecordingAdam] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0
        _RecordingAdam.instances.append(self)

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def test_training_loop_recreates_adam_at_irms_anneal_step(monkeypatch):
    monkeypatch.setattr(torch.optim, "Adam", _RecordingAdam)
    _RecordingAdam.instances = []
    data = _tiny_dataset()
    seed_everything(0)
    method = IRM(build_model("cnn", 3), {"lambda": 100.0, "anneal_iters": 3, "shift_strength": 0.3})
    result = train(method, data, data, steps=6, batch_size=8, lr=1e-3, eval_every=3, seed=0, progress=False)
    assert [opt.steps for opt in _RecordingAdam.instances] == [3, 3]  # a fresh Adam from step 4 on
    fresh = _RecordingAdam.instances[1]
    assert all(state["step"] == 3 for state in fresh.state.values())
    assert [p["penalty_weight"] for p in result.curve] == [1.0, 100.0]


# ---------------------------------------------------------------- DRE


def _dre_reference(model, x, y, partner, lam):
    """The official MixupLoss loop (one captum LayerGradCam pass per class), with given pairs and ratios."""
    def norm(a):  # dre/mixuploss.py's min-max normalization
        flat = a.reshape(a.shape[0], -1)
        low, high = flat.min(dim=-1, keepdim=True)[0], flat.max(dim=-1, keepdim=True)[0]
        return (a - low[:, :, None, None]) / (high[:, :, None, None] - low[:, :, None, None])

    layer_gc = LayerGradCam(model, model.backbone)
    exp = sparse = mix_ce = 0.0
    for c in range(model.num_classes):
        members = torch.nonzero(y == c).squeeze(1)
        if len(members) == 0:
            continue
        indexes = torch.searchsorted(members, partner[members])
        inp = x[members]
        attr_norm = norm(layer_gc.attribute(inp, target=c))
        mix_lambda = lam[members].view(-1, 1, 1, 1)
        mixup = mix_lambda * inp + (1 - mix_lambda) * inp[indexes]
        attr_mixup = mix_lambda * attr_norm + (1 - mix_lambda) * attr_norm[indexes]
        attr_mix_norm = norm(layer_gc.attribute(mixup, target=c))
        exp += nn.L1Loss()(attr_mix_norm, attr_mixup)
        sparse += (torch.mean(torch.linalg.norm(attr_norm, dim=(1, 2), ord=1))
                   + torch.mean(torch.linalg.norm(attr_mix_norm, dim=(1, 2), ord=1))) / 2
        mix_ce += F.cross_entropy(model(mixup), y[members])
    return exp / model.num_classes, sparse / model.num_classes, mix_ce / model.num_classes


def test_dre_terms_match_the_official_per_class_loop():
    torch.manual_seed(0)
    model = build_model("cnn", 4).eval()  # eval: per-class and whole-batch passes see the same BatchNorm
    x, y = torch.rand(7, 3, 16, 16), torch.tensor([0, 1, 0, 2, 1, 0, 2])  # class 3 absent: still divides by 4
    partner = torch.tensor([5, 4, 0, 6, 1, 2, 3])
    lam = torch.distributions.Beta(0.2, 0.2).sample((7,))
    ce, *ours = dre_terms(model, x, y, partner, lam)
    theirs = _dre_reference(model, x, y, partner, lam)
    torch.testing.assert_close(ce, F.cross_entropy(model(x), y))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # differentiable the way captum's maps are: through the activations only
    params = list(model.parameters())
    for a, b in zip(torch.autograd.grad(sum(ours), params), torch.autograd.grad(sum(theirs), params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------- SGDrop


def test_sgdrop_mask_zeros_exactly_the_top_rho_fraction_per_sample():
    torch.manual_seed(0)
    attribution = torch.rand(3, 4, 5, 5, requires_grad=True)  # 100 entries per sample
    mask = saliency_drop_mask(attribution, 0.1)
    assert not mask.requires_grad and mask.grad_fn is None
    for a, m in zip(attribution.detach(), mask, strict=True):
        dropped, kept = a[m == 0], a[m == 1]
        assert len(dropped) == 10 and dropped.min() > kept.max()


def test_sgdrop_loss_is_ce_of_masked_features_and_the_mask_is_constant():
    torch.manual_seed(0)
    model = build_model("cnn", 3).eval()
    method = METHODS.get("sgdrop")(model, {"rho": 0.1})
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 1])
    loss, _ = method.loss({"x": x, "y": y, "domain": torch.zeros(4, dtype=torch.long)}, 1)
    z = model.features(x).detach().requires_grad_(True)
    grad = torch.autograd.grad(model.head(z).gather(1, y[:, None]).sum(), z)[0]
    mask = saliency_drop_mask(torch.relu(grad * z), 0.1)
    reference = F.cross_entropy(model.head(z * mask), y)
    torch.testing.assert_close(loss, reference)
    (dz,) = torch.autograd.grad(reference, z)
    assert torch.all(dz[mask == 0] == 0)  # the mask is a constant factor: no gradient through it


# ---------------------------------------------------------------- DM-ADA


def test_dmada_mix_ratio_stays_away_from_one_half():
    torch.manual_seed(0)
    ratios = torch.tensor([mix_ratio(2.0, 0.1) for _ in range(2000)], dtype=torch.float64)
    assert ((ratios - 0.5).abs() >= 0.1 - 1e-9).all() and ((ratios >= 0) & (ratios <= 1)).all()
    assert torch.allclose(ratios, (ratios * 100).round() / 100)
    assert (ratios == 0.6).any() and (ratios == 0.4).any()


def test_gradient_reversal_flips_the_gradient_reaching_the_features():
    torch.manual_seed(0)
    discriminator = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    features, target = torch.randn(4, 6, requires_grad=True), torch.tensor([0, 1, 1, 0])
    plain = F.cross_entropy(discriminator(features), target)
    reversed_ = F.cross_entropy(discriminator(grad_reverse(features, 0.7)), target)
    torch.testing.assert_close(reversed_, plain)
    params = [features, *discriminator.parameters()]
    g_plain, g_rev = torch.autograd.grad(plain, params), torch.autograd.grad(reversed_, params)
    torch.testing.assert_close(g_rev[0], -0.7 * g_plain[0])
    for a, b in zip(g_rev[1:], g_plain[1:], strict=True):
        torch.testing.assert_close(a, b)  # the discriminator itself still descends its loss
    assert grl_coefficient(0, 100) == 0.0 and grl_coefficient(100, 100) == pytest.approx(1.0, abs=1e-4)


def test_dmada_discriminator_is_trained_by_the_loop():
    method = METHODS.get("dmada")(build_model("cnn", 3), method_hparams("dmada", PROFILES.get("quick")))
    optimized = {id(p) for p in method.parameters()}
    assert all(id(p) in optimized for p in method.extra["discriminator"].parameters())


# ---------------------------------------------------------------- all baselines


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_trains_a_few_steps_reproducibly_with_finite_loss(name: str):
    hparams = method_hparams(name, PROFILES.get("quick"))
    data = _tiny_dataset()
    weights = []
    for _ in range(2):
        seed_everything(0)
        method = METHODS.get(name)(build_model("cnn", 3, dropout=0.1), hparams)
        before = [p.detach().clone() for p in method.model.parameters()]
        result = train(method, data, data, steps=3, batch_size=8, lr=1e-3, eval_every=3, seed=0, progress=False)
        point = result.curve[-1]
        assert all(torch.isfinite(torch.tensor(v)) for v in point.values()), point
        assert any(not torch.equal(a, b) for a, b in zip(before, method.model.parameters(), strict=True))
        weights.append([p.detach().clone() for p in method.model.parameters()])
    for a, b in zip(*weights, strict=True):
        assert torch.equal(a, b)
