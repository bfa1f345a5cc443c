"""Square Attack (Andriushchenko et al. 2020), L-inf: score-based random search, no gradients.

From vertical stripes (x + eps * s, one random sign s per column and channel), each iteration draws
for every point still robust one square of side round(sqrt(p h w)) at a random place, with one
random sign per channel, moves its pixels to x +- eps, and keeps the change if it lowers the margin
z_y - max_{j != y} z_j. The square's area p h w shrinks on AutoAttack's schedule: p_init = 0.8,
halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 iterations, rescaled to
`n_queries`. A point stops once misclassified; restarts run on the points still robust. The output is
the misclassifying point found, x where none was.

Unlike AutoAttack's and torchattacks' code, which draw one square (place and signs) per iteration for
the whole batch, each image gets its own, as in the paper's algorithm: a point's search then does not
depend on which other images share its batch. So the comparison with torchattacks.Square is
statistical (tests/test_worst_case.py). Cost: one forward pass per query and still-robust image, up to
n_queries + 1 per image and restart; the standard version (AutoAttack's) is 5000 queries, 1 restart.
Declared cost 200 x PGD-10: measured 206-242 (random 5-class cnn, 32 images of 32x32, eps 0.02, one CPU
thread, no point broken, so every image used all 5000 queries); a point it breaks early costs less.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from attacks.base import register_attack
from attacks.common import check_count, uniform
from benchmark.registry import UserError

#: iterations (of 10,000) after which the square's area fraction p halves, AutoAttack's schedule
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(i: int, n_queries: int, p_init: float) -> float:
    """The fraction p of the image a square covers at iteration i (0-based) of n_queries."""
    at = int(i / n_queries * 10000)
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def margin(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """z_y - max_{j != y} z_j per sample: > 0 while x is classified as y."""
    logits = model(x)
    true = logits.gather(1, y[:, None]).squeeze(1)
    return true - logits.scatter(1, y[:, None], -math.inf).amax(dim=1)


def random_signs(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Independent -1 / +1 of `shape`, each with probability 1/2."""
    return torch.where(uniform(shape, like, generator) < 0.5, -1.0, 1.0).to(like.dtype)


def square_run(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, n_queries: int, p_init: float,
               generator: torch.Generator | None) -> Tensor:
    """One random search of `n_queries` iterations; returns the last accepted point of each image."""
    n, c, h, w = x.shape
    lower, upper = x - eps, x + eps
    x_best = (x + eps * random_signs((n, c, 1, w), x, generator)).clamp_(0, 1)
    best = margin(model, x_best, y)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    for i in range(n_queries):
        idx = (best > 0).nonzero().flatten()
        if len(idx) == 0:
            break
        side = min(max(round(math.sqrt(square_fraction(i, n_queries, p_init) * h * w)), 1), h, w)
        top = (uniform((len(idx),), x, generator) * (h - side)).long()[:, None]
        left = (uniform((len(idx),), x, generator) * (w - side)).long()[:, None]
        inside = (((rows >= top) & (rows < top + side))[:, None, :, None]
                  & ((cols >= left) & (cols < left + side))[:, None, None, :])
        delta = inside * (2 * eps) * random_signs((len(idx), c, 1, 1), x, generator)
        x_new = torch.clamp(x_best[idx] + delta, lower[idx], upper[idx]).clamp_(0, 1)
        new = margin(model, x_new, y[idx])
        better = new < best[idx]
        x_best[idx[better]], best[idx[better]] = x_new[better], new[better]
    return x_best


def _validate(eps: float, params: dict[str, Any]) -> None:
    check_count("square", params, "n_queries", "n_restarts")
    p_init = params["p_init"]
    if isinstance(p_init, bool) or not isinstance(p_init, int | float) or not 0 < p_init <= 1:
        raise UserError(f"square p_init must be a number in (0, 1], got {p_init!r}")


@register_attack("square", display="Square", cost=200.0, validate=_validate, chained=True)
def square(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    n_queries: int = 5000,
    n_restarts: int = 1,
    p_init: float = 0.8,
) -> Tensor:
    """Square Attack with `n_queries` random-search iterations per restart on the margin loss (no gradients)."""
    x_adv = x.clone()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
        for _ in range(n_restarts):
            idx = robust.nonzero().flatten()
            if len(idx) == 0:
                break
            found = square_run(model, x[idx], y[idx], eps, n_queries=n_queries, p_init=float(p_init),
                               generator=generator)
            broken = model(found).argmax(1) != y[idx]
            x_adv[idx[broken]] = found[broken]
            robust[idx[broken]] = False
    return x_adv
