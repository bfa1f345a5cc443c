"""Classifiers split into `features(x)` (last conv block, the Grad-CAM layer) and `head(A)`.

Every model takes images in [0, 1] and normalizes inside (as RobustBench does), so attack budgets
are in pixel units. `forward(x) == head(features(x))` by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.registry import Registry, UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: a registered model: (num_classes, *, dropout) -> a Classifier from random weights (build_model loads pretrained ones)
ModelBuilder = Callable[..., "Classifier"]
MODELS: Registry[ModelBuilder] = Registry("model")


class Normalize(nn.Module):
    """Per-channel (x - mean) / std with constant buffers."""

    def __init__(self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """normalize -> backbone (features) -> global average pool -> dropout -> linear (head)."""

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.normalize = Normalize()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_features, num_classes)
        self.num_classes = num_classes

    def features(self, x: Tensor) -> Tensor:
        """Activations A (B, K, h, w) of the last convolutional block for images x in [0, 1]."""
        return self.backbone(self.normalize(x))

    def head(self, activations: Tensor) -> Tensor:
        """Logits from the last block's activations: pooling, dropout, linear layer."""
        return self.fc(self.dropout(activations.mean(dim=(2, 3))))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class SharedMaskDropout(nn.Module):
    """Dropout over `copies` equal blocks of rows (the same images, e.g. x and x_adv) with one mask per image.

    Independent masks would make two passes of the same image differ by dropout noise alone."""

    def __init__(self, p: float, copies: int) -> None:
        super().__init__()
        self.p, self.copies = p, copies

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if len(x) % self.copies:
            raise ValueError(f"{len(x)} rows cannot be {self.copies} equal blocks of the same images")
        mask = F.dropout(x.new_ones(len(x) // self.copies, *x.shape[1:]), self.p, training=True)
        return x * mask.repeat(self.copies, *([1] * (x.ndim - 1)))


@contextmanager
def shared_dropout_mask(model: Classifier, copies: int) -> Iterator[None]:
    """Within the block, `model.head` treats its input as `copies` blocks of the same images sharing one mask."""
    original = model.dropout
    model.dropout = SharedMaskDropout(original.p, copies).train(original.training)
    try:
        yield
    finally:
        model.dropout = original


@contextmanager
def dropout_off(model: nn.Module) -> Iterator[None]:
    """Switch the model's dropout layers to eval mode (BatchNorm untouched), restoring them afterwards."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for layer in layers:
        layer.eval()
    try:
        yield
    finally:
        for layer in layers:
            layer.train()


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _small_resnet(num_classes: int, width: int, dropout: float) -> Classifier:
    """The small cnn at `width` channels, from random weights."""
    backbone = nn.Sequential(
        nn.Conv2d(3, width, 3, 2, 1, bias=False),  # 32x32 -> 16x16 at once: most of the speed on a CPU
        nn.BatchNorm2d(width),
        nn.ReLU(),
        _ResidualBlock(width, width, 1),
        _ResidualBlock(width, 2 * width, 2),
    )
    return Classifier(backbone, 2 * width, num_classes, dropout)


@MODELS.register("cnn")
def small_cnn(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """Small ResNet-style net for 32x32 inputs (quick profile); its Grad-CAM layer is 8x8. Its pretrained
    backbone comes from benchmark/pretraining.py's synthetic corpus (the role of ImageNet weights)."""
    return _small_resnet(num_classes, 32, dropout)


@MODELS.register("cnn_small")
def half_width_cnn(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """`cnn` at half width: the quick profile's lighter backbone for Fig. 3 (the paper's MobileNetV2 role)."""
    return _small_resnet(num_classes, 16, dropout)


@MODELS.register("resnet20")
def resnet20(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """CIFAR-style ResNet-20 (He et al. 2016, Sec. 4.2): a 3x3 stem of 16 channels, then 3 stages of 3 basic blocks
    (16, 32, 64 channels; stride 2 at the second and third), at 32x32 inputs; its Grad-CAM layer is the last stage
    (8x8). Shortcuts that change the shape are 1x1 projections (the paper's option B; its CIFAR nets pad with zeros,
    option A), as in `cnn`. The verdict study's `resnet` setting (benchmark/config.py SETTINGS); pretrained on the
    cnn's synthetic corpus (benchmark/pretraining.py)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    width = 16
    for stage, channels in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(_ResidualBlock(width, channels, 2 if stage > 0 and block == 0 else 1))
            width = channels
    return Classifier(nn.Sequential(*layers), width, num_classes, dropout)


@dataclass(frozen=True)
class TorchvisionNet:
    """A torchvision classifier as a Classifier: its constructor and ImageNet weights (names in
    torchvision.models), and its feature layers and their width."""

    constructor: str
    weights: str
    features: Callable[[nn.Module], nn.Module]
    width: Callable[[nn.Module], int]

    def classifier(self, num_classes: int, dropout: float, *, imagenet: bool = False) -> Classifier:
        """The net from random weights (or `imagenet`: its ImageNet weights) with a fresh head for `num_classes`."""
        import torchvision.models

        net = getattr(torchvision.models, self.constructor)()
        if imagenet:
            net.load_state_dict(_imagenet_weights(getattr(torchvision.models, self.weights)))
        return Classifier(self.features(net), self.width(net), num_classes, dropout)


TORCHVISION = {
    "resnet50": TorchvisionNet(
        "resnet50", "ResNet50_Weights",
        lambda net: nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                  net.layer4),
        lambda net: net.fc.in_features),
    "mobilenet_v2": TorchvisionNet("mobilenet_v2", "MobileNet_V2_Weights", lambda net: net.features,
                                   lambda net: net.last_channel),
    "efficientnet_b0": TorchvisionNet("efficientnet_b0", "EfficientNet_B0_Weights", lambda net: net.features,
                                      lambda net: net.classifier[1].in_features),
}


def _imagenet_weights(weights_enum) -> dict[str, Tensor]:
    """ImageNet weights from the local torch hub cache; never downloads (clear error instead)."""
    weights = weights_enum.DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise UserError(
            f"ImageNet weights {weights} not found at {path}; download {weights.url} there "
            "(or run once with internet: torchvision fetches it), or train without pretrained weights"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


@MODELS.register("resnet50")
def resnet50(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """torchvision ResNet-50 (the paper's backbone); features = layer4 output (2048 x 7 x 7 at 224)."""
    return TORCHVISION["resnet50"].classifier(num_classes, dropout)


@MODELS.register("mobilenet_v2")
def mobilenet_v2(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """torchvision MobileNetV2 (Fig. 3's lighter backbone); features = its last 1280-channel block."""
    return TORCHVISION["mobilenet_v2"].classifier(num_classes, dropout)


@MODELS.register("efficientnet_b0")
def efficientnet_b0(num_classes: int, *, dropout: float = 0.0) -> Classifier:
    """torchvision EfficientNet-B0 (Fig. 3's lighter backbone); features = its last 1280-channel block."""
    return TORCHVISION["efficientnet_b0"].classifier(num_classes, dropout)


def without_head(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A model's state_dict without its `fc` head: a backbone state (each dataset re-initializes the head)."""
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def imagenet_backbone_state(name: str) -> dict[str, Tensor]:
    """The backbone state of torchvision model `name` from its ImageNet weights in the local torch hub cache."""
    if name not in TORCHVISION:
        raise UserError(f"model {name!r} has no ImageNet weights; torchvision models: {', '.join(TORCHVISION)}")
    with torch.random.fork_rng(devices=[]):  # the caller's random stream (the head it initializes) is left alone
        model = TORCHVISION[name].classifier(1, 0.0, imagenet=True)
    return without_head(model.state_dict())


def build_model(name: str, num_classes: int, *, dropout: float = 0.0,
                backbone_state: dict[str, Tensor] | None = None) -> Classifier:
    """Build a registered model from random weights, or from `backbone_state` (a pretrained backbone: every
    weight but the head's, which keeps its fresh initialization for these classes); unknown names raise
    UserError listing the choices. Never trains nor reads a file: the caller brings the pretrained weights."""
    model = MODELS.get(name)(num_classes, dropout=dropout)
    if backbone_state is not None:
        head = {k: v for k, v in model.state_dict().items() if k.startswith("fc.")}
        model.load_state_dict({**backbone_state, **head}, strict=True)
    return model
