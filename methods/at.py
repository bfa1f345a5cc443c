"""AT: Madry et al. (ICLR 2018) PGD adversarial training, CE(f(x_adv), y); the reference the paper omits.

x_adv comes from the same training-time PGD as EGAT's (methods/egat.py: eps, steps, alpha, random
start, crafted in eval mode, method-owned generator), so AT and EGAT differ only in their objectives.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from benchmark.models import Classifier
from methods.base import Method, register_method
from methods.egat import TRAINING_PGD, MethodRandomness, TrainingPGD


@register_method("at", display="AT (Madry)", hparams=TRAINING_PGD)
class AT(Method):
    """Madry PGD-AT: the loss is CE on PGD examples only (hparams pgd_eps, pgd_steps, pgd_alpha_ratio)."""

    def __init__(self, model: Classifier, hparams: dict[str, Any], *, has_masks: bool = False) -> None:
        super().__init__(model, hparams, has_masks=has_masks)
        self.pgd = TrainingPGD.from_hparams(hparams)
        self.random = MethodRandomness()

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        x, y = batch["x"], batch["y"]
        x_adv = self.pgd(self.model, x, y, self.random.generator(x.device))
        loss = F.cross_entropy(self.model(x_adv), y)
        return loss, {"ce_adv": loss.item()}
