"""Training methods: each defines a loss on a batch; the one training loop lives in benchmark/train.py.

A method is constructed as `Method(model, hparams, explainer)` and provides
`loss(batch, step) -> (loss, logs)`. Extra trainable modules (e.g. a domain discriminator) go in
`self.extra` so the loop's optimizer includes them. Registration order is the tables' row order.
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

    def __init__(self, model: Classifier, hparams: dict, explainer: str = "gradcam") -> None:
        self.model = model
        self.hparams = hparams
        self.explainer = explainer
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
from methods import erm  # noqa: E402,F401
