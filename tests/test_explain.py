"""Explainers: agreement with captum, Finer-CAM's target, differentiability, head-only backprop."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, LayerGradCam, NoiseTunnel, Saliency
from torch import nn

from benchmark import explain
from benchmark.models import Classifier, build_model


def _resnet18(num_classes: int) -> Classifier:
    """torchvision ResNet-18 split like the registered torchvision backbones (layer4 = Grad-CAM layer)."""
    from torchvision.models import resnet18

    net = resnet18()
    backbone = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    return Classifier(backbone, net.fc.in_features, num_classes, dropout=0.0)


def _model_and_batch(name: str, seed: int = 0) -> tuple[Classifier, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    if name == "cnn":
        model, size = build_model("cnn", 5), 32
    else:
        model, size = _resnet18(5), 96  # layer4 gives 3x3 maps
    x = torch.rand(3, 3, size, size)
    return model.eval(), x, torch.tensor([0, 3, 4])


@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_gradcam_matches_captum_layergradcam(name: str) -> None:
    model, x, target = _model_and_batch(name)
    ours = explain.gradcam(model, x, target)
    theirs = LayerGradCam(model, model.backbone).attribute(x, target=target).detach()
    assert ours.shape == theirs[:, 0].shape == model.features(x).shape[:1] + model.features(x).shape[2:]
    torch.testing.assert_close(ours, explain.normalize_maps(theirs[:, 0]), rtol=0, atol=1e-5)
    assert ours.max() > 0.99  # a non-trivial map: the test compares something


def test_gradcam_from_activations_reuses_the_forward_pass() -> None:
    model, x, target = _model_and_batch("cnn")
    maps, logits = explain.gradcam_from_activations(model, model.features(x), target)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(maps, explain.gradcam(model, x, target))
    assert not maps.requires_grad and not logits.requires_grad


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_matches_captum(method: str) -> None:
    model, x, target = _model_and_batch("cnn")
    ours = explain.integrated_gradients_attribution(model, x, target, steps=8, method=method)
    theirs = IntegratedGradients(model).attribute(x, target=target, n_steps=8, method=method)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())
    maps = explain.integrated_gradients(model, x, target, steps=8, method=method)
    torch.testing.assert_close(maps, explain.normalize_maps(theirs.sum(dim=1)), rtol=0, atol=1e-5)


def test_smoothgrad_matches_captum_noisetunnel_with_the_same_noise() -> None:
    model, x, target = _model_and_batch("cnn")
    x[:, 0, 0, 0], x[:, 0, 0, 1] = 0.0, 1.0  # value range exactly 1, so our stdev = sigma, captum's stdevs
    ours = explain.smoothgrad_attribution(
        model, x, target, samples=4, sigma=0.2, generator=torch.Generator().manual_seed(7)
    )
    torch.manual_seed(7)  # captum draws its noise from the global RNG; a seeded CPU Generator matches it
    theirs = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=4, stdevs=0.2, target=target, abs=False
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())


def test_smoothgrad_noise_is_reproducible_from_the_generator() -> None:
    model, x, target = _model_and_batch("cnn")
    first, second, other = (
        explain.smoothgrad(model, x, target, samples=2, generator=torch.Generator().manual_seed(seed))
        for seed in (1, 1, 2)
    )
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_finercam_target_matches_its_formula() -> None:
    logits = torch.tensor([[2.0, 1.5, -1.0, 2.4, 0.0, 5.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    target = torch.tensor([0, 5])
    # sample 0, y_c = 2: |y_j - y_c| = 0.5, 3, 0.4, 2, 3 -> classes 3, 1, 4; sample 1: classes 4, 3, 2
    p = torch.softmax(logits, dim=1)
    expected = []
    for b, closest in enumerate(([3, 1, 4], [4, 3, 2])):
        y_c = logits[b, target[b]]
        weights = p[b, closest]
        expected.append((weights * (y_c - logits[b, closest])).sum() / weights.sum())
    torch.testing.assert_close(explain.finercam_target(logits, target), torch.stack(expected))


def test_finercam_map_on_a_hand_built_linear_head() -> None:
    """head(A) = W mean(A) + b: the CAM weights are W^T dT/dy / (h w), with dT/dy by hand."""
    torch.manual_seed(0)
    model = Classifier(nn.Identity(), num_features=4, num_classes=5, dropout=0.0)
    activations = torch.rand(2, 4, 3, 3)
    target = torch.tensor([1, 4])
    maps, logits = explain.finercam_from_activations(model, activations, target)
    expected = []
    for b in range(2):
        y, c = logits[b], int(target[b])
        others = [j for j in range(5) if j != c]
        closest = sorted(others, key=lambda j: abs(y[j] - y[c]).item())[:3]
        q = torch.softmax(y[closest], dim=0)
        score = (q * (y[c] - y[closest])).sum()
        d_score = torch.zeros(5)
        d_score[c] = 1.0  # sum_j q_j
        d_score[closest] = -q + q * ((y[c] - y[closest]) - score)  # -q_j + (d q / d y_j) terms
        weights = model.fc.weight.detach().T @ d_score / 9
        expected.append(torch.einsum("k,khw->hw", weights, activations[b]))
    torch.testing.assert_close(maps, explain.normalize_maps(torch.stack(expected)))


def test_every_explainer_gives_normalized_maps() -> None:
    model, x, target = _model_and_batch("cnn")
    sizes = {"gradcam": (8, 8), "finercam": (8, 8), "smoothgrad": (32, 32), "ig": (32, 32)}
    assert explain.EXPLAINERS.names() == list(sizes)
    for name in explain.EXPLAINERS:
        kwargs = {"steps": 4} if name == "ig" else {"samples": 2} if name == "smoothgrad" else {}
        maps = explain.EXPLAINERS.get(name)(model, x, target, **kwargs)
        assert maps.shape == (3, *sizes[name]), name
        assert maps.min() >= 0 and maps.max() <= 1 and (maps.amax(dim=(1, 2)) > 0.99).all(), name
        assert not maps.requires_grad, name


@pytest.mark.parametrize("name", ["gradcam", "finercam", "smoothgrad", "ig"])
def test_create_graph_gives_parameter_gradients(name: str) -> None:
    model, x, target = _model_and_batch("cnn")
    model.train()
    kwargs = {"steps": 2} if name == "ig" else {"samples": 2} if name == "smoothgrad" else {}
    with torch.no_grad():  # create_graph must work even inside no_grad (it re-enables grad)
        maps = explain.EXPLAINERS.get(name)(model, x, target, create_graph=True, **kwargs)
    maps.square().mean().backward()
    first_conv = model.backbone[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0
    assert model.fc.weight.grad.abs().sum() > 0


def test_gradcam_gradient_matches_finite_differences() -> None:
    """d/d theta of a loss on the map, along a random direction of all parameters (double precision)."""
    torch.manual_seed(0)
    model = build_model("cnn", 3).double().eval()
    x, target = torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.tensor([0, 2])
    weights = torch.rand(2, 4, 4, dtype=torch.float64)
    params = list(model.parameters())
    direction = [torch.randn_like(p) for p in params]

    def loss() -> torch.Tensor:
        return (explain.gradcam(model, x, target, create_graph=True) * weights).sum()

    grads = torch.autograd.grad(loss(), params, materialize_grads=True)  # fc.bias: zero
    analytic = sum((g * d).sum() for g, d in zip(grads, direction, strict=True))
    step = 1e-6
    with torch.no_grad():
        values = []
        for sign in (1, -1):
            for p, d in zip(params, direction, strict=True):
                p.add_(sign * step * d)
            values.append(loss().item())
            for p, d in zip(params, direction, strict=True):
                p.sub_(sign * step * d)
    numeric = (values[0] - values[1]) / (2 * step)
    assert abs(analytic.item()) > 1e-3
    assert abs(analytic.item() - numeric) <= 1e-6 * max(1.0, abs(numeric))
    assert grads[0].abs().sum() > 0  # the first convolution is reached through A


@pytest.mark.parametrize("create_graph", [False, True])
def test_gradcam_backpropagates_through_the_head_only(create_graph: bool) -> None:
    model, x, target = _model_and_batch("cnn")
    calls = []
    handle = model.backbone[0].register_full_backward_hook(lambda *args: calls.append(1))
    try:
        maps = explain.gradcam(model, x, target, create_graph=create_graph)
        assert calls == []
        model(x.requires_grad_(True)).sum().backward()  # positive control: the hook does fire
        assert calls
    finally:
        handle.remove()
    assert maps.requires_grad == create_graph
