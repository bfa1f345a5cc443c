"""`aa`: the per-sample worst case over apgd-ce, apgd-t and square, counted as AutoAttack counts it.

AutoAttack's standard flow (Croce & Hein 2020) without FAB-T: the members run in turn, each only on
the points that every earlier member left robust, so a point is robust only if all three fail on it.
Each point's output is the first member's output that misclassifies it, else the last member's (x
for a point misclassified already). Standard version: 100 iterations, 9 targets, 5000 queries and 1
restart per member; pass smaller `n_iter`, `n_targets`, `n_queries` for a reduced one. None is named
`steps`, so the evaluator does not pass the profile's PGD step count (attacks/apgd.py). The members
share the generator, in turn, so a seeded run is reproducible.

Declared cost 140 x PGD-10: measured 131-155 on a random 5-class cnn (32 images of 32x32, eps 0.02, one
CPU thread: apgd-ce left 75% robust, apgd-t 56%, square ran its 5000 queries on those); 226 when no
member breaks anything (eps 0.005), about 17 for n_iter=10, n_targets=3, n_queries=500.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from attacks.apgd import apgd_ce, apgd_t
from attacks.base import register_attack
from attacks.common import check_count
from attacks.square import square


def _validate(eps: float, params: dict[str, Any]) -> None:
    check_count("aa", params, "n_iter", "n_targets", "n_queries", "n_restarts")


@register_attack("aa", display="AA worst case", cost=140.0, validate=_validate)
def aa(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    generator: torch.Generator | None = None,
    n_iter: int = 100,
    n_targets: int = 9,
    n_queries: int = 5000,
    n_restarts: int = 1,
) -> Tensor:
    """apgd-ce, then apgd-t, then square, each on the points still robust (cost: theirs on those points)."""
    members = ((apgd_ce, {"n_iter": n_iter}), (apgd_t, {"n_iter": n_iter, "n_targets": n_targets}),
               (square, {"n_queries": n_queries}))
    x_adv = x.clone()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    for member, params in members:
        idx = robust.nonzero().flatten()
        if len(idx) == 0:
            break
        out = member(model, x[idx], y[idx], eps, generator=generator, n_restarts=n_restarts, **params)
        x_adv[idx] = out
        with torch.no_grad():
            robust[idx[model(out).argmax(1) != y[idx]]] = False
    return x_adv
