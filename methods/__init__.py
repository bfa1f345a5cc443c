"""Training methods: each defines a loss on a batch; the one training loop lives in benchmark/train.py.

A method is constructed as `Method(model, hparams, has_masks=...)` and provides
`loss(batch, step) -> (loss, logs)`; a batch is a dict with `x` (B,3,H,W in [0,1]), `y`, `domain`,
and `mask` (B,1,H,W object masks) when the dataset has them. Hyperparameters (including the
explainer a method uses, where it uses one) come from benchmark/config.py. Extra trainable modules
(e.g. a domain discriminator) go in `self.extra` so the loop's optimizer includes them.
Registration order is the tables' row order.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from benchmark.models import Classifier
from benchmark.registry import Registry


class Method:
    """Base class of training objectives."""

    #: step at which the loop re-creates the optimizer (IRM's anneal switch), or None
    reset_optimizer_at: int | None = None

    def __init__(self, model: Classifier, hparams: dict, *, has_masks: bool = False) -> None:
        self.model = model
        self.hparams = hparams
        self.has_masks = has_masks
        self.extra = nn.ModuleDict()

    def parameters(self) -> Iterator[nn.Parameter]:
        """Everything the optimizer updates: the model and any extra modules."""
        yield from self.model.parameters()
        yield from self.extra.parameters()

    def train(self) -> None:
        """Put the model and extra modules in training mode."""
        self.model.train()
        self.extra.train()

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        """The training loss on one batch and the scalars worth logging."""
        raise NotImplementedError


METHODS: Registry[type[Method]] = Registry("method")

# Registration side effects, in table row order.
from methods import erm, igr, ign, dmada, irm, dre, sgdrop, egat, at, egat_variants  # noqa: E402,F401,I001
