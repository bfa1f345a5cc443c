"""A synthetic pretraining for the quick profile's small cnns: the role of the paper's ImageNet weights.

The paper fine-tunes an ImageNet-pretrained ResNet-50. The quick profile's `cnn` and `cnn_small` have
no such weights, so they are pretrained here on a synthetic corpus whose classes are disjoint from
the built-in benchmarks' (benchmark/pretrain_corpus.py).

The pretrained backbone (everything but the `fc` head, which each dataset re-initializes for its
classes) is cached once per (model, image size, PretrainConfig, PRETRAIN_VERSION) as
`cache_dir()/pretrained/<model>-<key>.pt`, written atomically under a lock file so that parallel jobs
pretrain once, with a JSON sidecar of the cost and the corpus accuracy. Bump PRETRAIN_VERSION when
the corpus or the pretraining changes what it produces. `starting_backbone` is where a job's model
gets its pretrained weights (this pretraining's or ImageNet's); `build_model` only loads them.

    python -m benchmark.pretrain [--model cnn]      # pretrain (or find) the cached backbone
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm import tqdm

from benchmark.data.base import cache_dir
from benchmark.models import build_model, imagenet_backbone_state, without_head
from benchmark.numerics import job_numerics
from benchmark.pretrain_corpus import CLASSES, make_corpus
from benchmark.registry import UserError
from benchmark.store import atomic_write_bytes, content_key, locked

if TYPE_CHECKING:
    from benchmark.config import Profile

PRETRAIN_VERSION = 1

#: the models this module can pretrain (the quick profile's small cnns, and the verdict study's ResNet-20)
PRETRAINABLE = ("cnn", "cnn_small", "resnet20")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pretrained backbone besides the model and image size (its cache key)."""

    steps: int = 5000
    batch_size: int = 64
    lr: float = 2e-3
    #: the first `classes` classes of CLASSES
    classes: int = len(CLASSES)
    #: training images of the corpus (a fixed set, balanced over the classes)
    images: int = 32000
    #: held-out images (another seed) on which the accuracy is reported
    held_out: int = 2000
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


#: the default pretraining, measured with one torch thread on a shared 2-core machine: cnn 160 s (+10 s corpus),
#: 97% train / 90% held-out accuracy on the corpus; cnn_small 75 s, 86% / 80%
DEFAULT_CONFIG = PretrainConfig()


# --- pretraining ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pretrained:
    """A pretrained model with the cost of its corpus and training and its accuracy on the corpus."""

    model: nn.Module
    corpus_time_s: float
    train_time_s: float
    train_acc: float
    held_out_acc: float


def _to_float(x: np.ndarray) -> Tensor:
    return torch.from_numpy(x).float().div_(255)


@torch.no_grad()
def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent of `model` (eval mode) on uint8 images x."""
    correct = 0
    for start in range(0, len(x), 500):
        logits = model(_to_float(x[start : start + 500]))
        correct += int((logits.argmax(1).numpy() == y[start : start + 500]).sum())
    return 100 * correct / len(x)


@torch.enable_grad()  # the model may be built (and so pretrained) under no_grad
def pretrain(model: str, config: PretrainConfig, *, image_size: int = 32, progress: bool = True) -> Pretrained:
    """Train `model` from seeded random weights on the corpus with Adam (cosine-decayed learning rate);
    the global RNGs are left as they were."""
    if config.images < config.batch_size:
        raise UserError(f"pretraining corpus of {config.images} images is smaller than the batch {config.batch_size}")
    start = time.perf_counter()
    x, y = make_corpus(config.images, classes=config.classes, image_size=image_size, seed=config.seed)
    held_x, held_y = make_corpus(config.held_out, classes=config.classes, image_size=image_size,
                                 seed=[config.seed, 1])
    corpus_time = time.perf_counter() - start
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(config.seed)
        net = build_model(model, num_classes=config.classes, dropout=0.0)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    generator = torch.Generator().manual_seed(config.seed)
    labels = torch.from_numpy(y)
    order = torch.randperm(len(x), generator=generator)
    position = 0
    recent: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc=f"pretrain {model}", disable=not progress, leave=False, dynamic_ncols=True)
    for _ in bar:
        if position + config.batch_size > len(x):  # a new epoch: reshuffle, drop the incomplete batch
            order, position = torch.randperm(len(x), generator=generator), 0
        batch = order[position : position + config.batch_size]
        position += config.batch_size
        loss = F.cross_entropy(net(_to_float(x[batch.numpy()])), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        recent = (recent + [loss.item()])[-50:]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
    train_time = time.perf_counter() - start
    net.eval()
    sample = min(len(x), config.held_out)
    return Pretrained(net, corpus_time, train_time, _accuracy(net, x[:sample], y[:sample]),
                      _accuracy(net, held_x, held_y))


# --- cache ------------------------------------------------------------------------------------------------

def uses_synthetic_pretraining(profile: Profile) -> bool:
    """Whether the profile's models start from this module's pretraining (pretrained, and a pretrainable model;
    torchvision backbones take ImageNet weights instead)."""
    return profile.pretrained and profile.model in PRETRAINABLE


def pretrain_identity(model: str, *, image_size: int = 32, config: PretrainConfig | None = None) -> dict:
    """What determines the pretrained backbone: part of the cache key, and of the keys of jobs that start from it."""
    config = config or DEFAULT_CONFIG
    return {"model": model, "image_size": image_size, "pretrain": config.as_dict(), "version": PRETRAIN_VERSION}


def pretrained_path(model: str, *, image_size: int = 32, config: PretrainConfig | None = None) -> Path:
    """Where the pretrained backbone of `model` is cached (the name carries its content key)."""
    identity = pretrain_identity(model, image_size=image_size, config=config)
    return cache_dir() / "pretrained" / f"{model}-{content_key(identity)}.pt"


def pretrained_backbone_state(model: str, *, image_size: int = 32, progress: bool = True,
                              config: PretrainConfig | None = None) -> dict[str, Tensor]:
    """The pretrained state_dict of `model` without its `fc` head (fine-tuning re-initializes it for the
    dataset's classes), pretrained first (with a progress bar) and cached if missing."""
    if model not in PRETRAINABLE:
        raise UserError(f"model {model!r} has no synthetic pretraining; pretrainable: {', '.join(PRETRAINABLE)}")
    config = config or DEFAULT_CONFIG
    path = pretrained_path(model, image_size=image_size, config=config)
    with locked(path.with_suffix(".lock")):
        if not path.is_file():
            print(f"pretraining {model} on the synthetic corpus (once; cached as {path})", file=sys.stderr)
            with job_numerics():  # the jobs' numeric settings: the same weights whoever pretrains them first
                result = pretrain(model, config, image_size=image_size, progress=progress)
            state = without_head(result.model.state_dict())
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(path, buffer.getvalue())
            info = {"model": model, "image_size": image_size, "config": config.as_dict(),
                    "classes": list(CLASSES[: config.classes]), "corpus_time_s": round(result.corpus_time_s, 1),
                    "train_time_s": round(result.train_time_s, 1), "train_acc": round(result.train_acc, 2),
                    "held_out_acc": round(result.held_out_acc, 2), "threads": torch.get_num_threads(),
                    "version": PRETRAIN_VERSION}
            atomic_write_bytes(path.with_suffix(".json"), (json.dumps(info, indent=1) + "\n").encode())
            print(f"pretrained in {result.train_time_s:.0f} s (+{result.corpus_time_s:.0f} s corpus): accuracy "
                  f"{result.train_acc:.1f}% train, {result.held_out_acc:.1f}% held out", file=sys.stderr)
    return torch.load(path, map_location="cpu", weights_only=True)


def starting_backbone(profile: Profile) -> dict[str, Tensor] | None:
    """The backbone state a job's model of `profile` starts from, for `build_model`: None (random weights) unless
    the profile is pretrained; this module's pretraining for the small cnns (pretrained first and cached if
    missing), ImageNet's for torchvision models (benchmark/models.py)."""
    if not profile.pretrained:
        return None
    if uses_synthetic_pretraining(profile):
        return pretrained_backbone_state(profile.model)
    return imagenet_backbone_state(profile.model)
