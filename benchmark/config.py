"""Profiles (quick, paper) and per-method hyperparameters.

`quick` runs everything on a 2-core CPU with the built-in benchmarks; `paper` is the paper's
Sec. V-A setting (ResNet-50, ImageNet weights, 224x224, Adam 1e-4, batch 32, 5000 steps, PGD-10 at
eps 0.02, dropout, best-validation checkpoint). Where quick differs it says so in `notes`, which
every table prints.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.registry import Registry, UserError


@dataclass(frozen=True)
class Profile:
    """Budgets and settings shared by every job of a run."""

    name: str
    datasets: tuple[str, ...]
    model: str
    pretrained: bool
    image_size: int | None  # None: the dataset's native size
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    dropout: float
    eval_batch_size: int
    eps_grid: tuple[float, ...]
    table_eps: float
    attack_steps: int
    faithfulness_images: int
    notes: str
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def train_settings(self) -> dict[str, Any]:
        """The settings that change what training produces (part of every train job's key)."""
        keys = ("model", "pretrained", "image_size", "steps", "batch_size", "lr", "eval_every", "dropout")
        return {k: v for k, v in asdict(self).items() if k in keys}


PROFILES: Registry[Profile] = Registry("profile")

PROFILES.add("quick", Profile(
    name="quick",
    datasets=("shapes", "digits"),
    model="cnn",
    pretrained=False,
    image_size=None,
    steps=400,
    batch_size=32,
    lr=2e-3,
    eval_every=50,
    dropout=0.1,
    eval_batch_size=256,
    eps_grid=(0.0, 0.01, 0.02, 0.03, 0.04),
    table_eps=0.02,
    attack_steps=10,
    faithfulness_images=200,
    notes=("quick profile: built-in synthetic benchmarks (32x32), small cnn trained from scratch, "
           "400 Adam steps (lr 2e-3, batch 32), training-time PGD shortened as stated per method; "
           "evaluation attacks are the paper's (10 steps, alpha eps/4). Not the paper's numbers."),
    method_overrides={},
))

PROFILES.add("paper", Profile(
    name="paper",
    datasets=("vlcs", "terra_incognita"),
    model="resnet50",
    pretrained=True,
    image_size=224,
    steps=5000,
    batch_size=32,
    lr=1e-4,
    eval_every=100,
    dropout=0.5,
    eval_batch_size=64,
    eps_grid=(0.0, 0.01, 0.02, 0.03, 0.04),
    table_eps=0.02,
    attack_steps=10,
    faithfulness_images=500,
    notes=("paper profile: ResNet-50 (ImageNet weights), 224x224, Adam 1e-4, batch 32, 5000 steps, "
           "best-validation checkpoint, PGD-10 eps 0.02 (paper Sec. V-A)."),
))


# Per-method hyperparameters (the paper profile's values); profiles may override entries.
METHOD_HPARAMS: dict[str, dict[str, Any]] = {
    "erm": {},
}


def method_hparams(method: str, profile: Profile, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hyperparameters of `method` under `profile`, with user overrides applied last."""
    hparams = copy.deepcopy(METHOD_HPARAMS.get(method, {}))
    hparams.update(profile.method_overrides.get(method, {}))
    for key, value in (overrides or {}).items():
        if key not in hparams:
            valid = ", ".join(hparams) or "none"
            raise UserError(f"unknown hyperparameter {key!r} for method {method}; valid choices: {valid}")
        hparams[key] = type(hparams[key])(value) if hparams[key] is not None else value
    return hparams
