"""ERM: plain cross-entropy (Vapnik 1998), the reference every table starts from."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, register_method


@register_method("erm", display="ERM")
class ERM(Method):
    """Empirical risk minimization: CE(f(x), y)."""

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        logits = self.model(batch["x"])
        loss = F.cross_entropy(logits, batch["y"])
        return loss, {"ce": loss.item()}
