"""Models: forward == head(features(x)), [0,1] inputs with normalization inside, offline ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.models import MODELS, build_model, imagenet_backbone_state
from benchmark.registry import UserError


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_is_head_of_features(name):
    torch.manual_seed(0)
    model = build_model(name, 7, dropout=0.5).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        activations = model.features(x)
        assert activations.dim() == 4
        torch.testing.assert_close(model(x), model.head(activations), rtol=0, atol=0)
    assert model(x).shape == (2, 7)


def test_normalization_is_inside_the_model():
    model = build_model("cnn", 3).eval()
    x = torch.rand(1, 3, 32, 32)
    expected = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(model.normalize(x), expected)


def test_cnn_gradcam_layer_is_8x8_on_32x32():
    assert build_model("cnn", 5).features(torch.rand(1, 3, 32, 32)).shape[-2:] == (8, 8)


def test_missing_imagenet_weights_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not found at .*checkpoints"):
        imagenet_backbone_state("mobilenet_v2")
    with pytest.raises(UserError, match="no ImageNet weights"):
        imagenet_backbone_state("cnn")


def test_imagenet_weights_load_from_the_local_torch_cache(tmp_path, monkeypatch):
    """A weights file in the torch hub cache (as torchvision would have downloaded it) is used."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = mobilenet_v2()
    path = tmp_path / "hub" / "checkpoints" / Path(MobileNet_V2_Weights.DEFAULT.url).name
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", 5, backbone_state=imagenet_backbone_state("mobilenet_v2"))
    torch.manual_seed(0)
    scratch = build_model("mobilenet_v2", 5)
    torch.testing.assert_close(model.backbone[0][0].weight, reference.features[0][0].weight, rtol=0, atol=0)
    torch.testing.assert_close(model.fc.weight, scratch.fc.weight, rtol=0, atol=0)  # the head: a fresh one
