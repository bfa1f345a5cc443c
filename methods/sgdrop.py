"""SGDrop: saliency-guided dropout on the feature map (Bertoin, Zimmer, Rachelson, Gauffriau; 2024, arXiv 2409.17370).

With z = features(x) and psi = head: A = ReLU(d psi_y(z) / dz * z) elementwise (y the true label);
the top `rho` fraction of A's entries (over channels and positions) of each sample is zeroed:
loss = CE(psi(z * M), y), M = 0 on those entries and 1 elsewhere, M detached. Inference is unchanged.

Choices: no official code was found; rho = 0.1 (exactly round(rho * K h w) entries, ties broken by
torch.topk) comes from the unofficial replication barkinadiguzel/OverfocusCNN-Replication, the
paper's value being unknown; the paper's EMA-smoothed quantile variant is not used (the threshold is
each sample's own top-k); the attribution's head pass shares the training head's dropout mode; no
clean-input CE is added (the masked features replace the clean ones, as dropout does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Method, Range, register_method


def saliency_drop_mask(attribution: Tensor, rho: float) -> Tensor:
    """0 on the round(rho * n) largest entries of each sample's attribution, 1 elsewhere (detached)."""
    flat = attribution.detach().flatten(1)
    k = round(rho * flat.shape[1])
    mask = torch.ones_like(flat)
    if k > 0:
        mask.scatter_(1, flat.topk(k, dim=1).indices, 0.0)
    return mask.view_as(attribution)


@register_method(
    "sgdrop", display="SGDrop",
    # rho from the unofficial replication (the paper's value is not known)
    hparams={"rho": 0.1},
    search={"rho": Range(0.02, 0.4)},
)
class SGDrop(Method):
    """CE on the head of the features with their most salient rho fraction dropped."""

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        x, y = batch["x"], batch["y"]
        z = self.model.features(x)
        score = self.model.head(z).gather(1, y[:, None]).sum()
        (grad,) = torch.autograd.grad(score, z, retain_graph=True)
        mask = saliency_drop_mask(torch.relu(grad * z.detach()), self.hparams["rho"])
        loss = F.cross_entropy(self.model.head(z * mask), y)
        return loss, {"ce": loss.item()}
