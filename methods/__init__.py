"""Training methods: the contract and registry (methods/base.py) and the built-in methods, one file each.

A batch is a dict with `x` (B,3,H,W in [0,1]), `y`, `domain`, and `mask` (B,1,H,W object masks)
when the dataset has them. Extra trainable modules (e.g. a domain discriminator) go in
`self.extra` so the loop's optimizer includes them. Registration order is the tables' row order.
"""

from methods.base import METHODS, Method, MethodSpec, Range, method_hparams, register_method, register_variant

__all__ = ["METHODS", "Method", "MethodSpec", "Range", "method_hparams", "register_method", "register_variant"]

# The built-in methods register themselves on import, in table row order.
from methods import erm, igr, ign, dmada, irm, dre, sgdrop, egat, at, egat_variants  # noqa: E402,F401,I001
