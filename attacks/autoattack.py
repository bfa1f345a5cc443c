"""`aa`: the per-sample worst case over apgd-ce, apgd-t and square, counted as AutoAttack counts it.

AutoAttack's standard flow (Croce & Hein 2020) without FAB-T: the members run in turn, each only on
the points that every earlier member left robust, so a point is robust only if all three fail on it.
Each point's output is the first member's output that misclassifies it, else the last member's (x
for a point misclassified already). Standard version: 100 iterations, 9 targets, 5000 queries and 1
restart per member; pass smaller `n_iter`, `n_targets`, `n_queries` for a reduced one. None is named
`steps`, so the evaluator does not pass the profile's PGD step count (attacks/apgd.py). `early_exit` (default on)
lets the APGD members drop a point at the iterate that breaks it, an exact saving (Square always does). Called on a
batch, the members share the generator, in turn, so a seeded run is reproducible. The evaluator instead runs each
member over all of aa's images before the next (AutoAttack's own order), each from a generator seeded by the job's
seed, from `member_params` (declared with the attack), so that aa's apgd-ce stage is the run of `apgd-ce` alone and
is computed once (benchmark/evaluate.py). `worst_case_stages` also returns the mask of
the points still robust after each member (AutoAttack's acc_dict), for the check that Square, a
black-box attack, does not beat the white-box members (benchmark/masking.py).

Declared cost 140 x PGD-10: measured 131-155 on a random 5-class cnn (32 images of 32x32, eps 0.02, one
CPU thread: apgd-ce left 75% robust, apgd-t 56%, square ran its 5000 queries on those); 226 when no
member breaks anything (eps 0.005), about 17 for n_iter=10, n_targets=3, n_queries=500. On 256 shapes
test twins at eps 0.02 (perf/worst_case_cost.py, one thread): standard 13 x PGD-10 on a quick ERM cnn (PGD-10
leaves 4%), 59 x on a quick AT cnn (clean 34%, aa 21.5%); n_iter=10, n_targets=1, n_queries=100 costs 1.1 and
1.6 x there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from attacks.apgd import apgd_ce, apgd_t
from attacks.base import eval_mode, register_attack
from attacks.common import check_count, check_switch
from attacks.square import square

#: the members by name, the registered attacks
_MEMBER_ATTACKS = {"apgd-ce": apgd_ce, "apgd-t": apgd_t, "square": square}

#: the members in the order they run, by their registered names (the keys of worst_case_stages' masks)
MEMBERS = ("apgd-ce", "apgd-t", "square")


def _validate(eps: float, params: dict[str, Any]) -> None:
    check_count("aa", params, "n_iter", "n_targets", "n_queries", "n_restarts")
    check_switch("aa", params, "early_exit")


def member_params(*, n_iter: int, n_targets: int, n_queries: int, n_restarts: int, early_exit: bool, **_: Any
                  ) -> dict[str, dict[str, Any]]:
    """Each member's parameters (MEMBERS order) from aa's: the one mapping `aa` and the evaluator, which runs the
    members one after the other over all of aa's images (AutoAttack's order), both use."""
    return {"apgd-ce": {"n_iter": n_iter, "n_restarts": n_restarts, "early_exit": early_exit},
            "apgd-t": {"n_iter": n_iter, "n_restarts": n_restarts, "n_targets": n_targets, "early_exit": early_exit},
            "square": {"n_queries": n_queries, "n_restarts": n_restarts}}


@register_attack("aa", display="AA worst case", cost=140.0, validate=_validate, stages=MEMBERS, chained=True,
                 member_params=member_params)
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
    early_exit: bool = True,
    stages: dict[str, Tensor] | None = None,
) -> Tensor:
    """apgd-ce, then apgd-t, then square, each on the points still robust (cost: theirs on those points).

    When `stages` is given, it receives per member (MEMBERS) the (B,) mask of the points still robust after it
    (AutoAttack's acc_dict, the declared `stages`); the evaluator and worst_case_stages read it, so that the stages
    come from this one implementation."""
    params = member_params(n_iter=n_iter, n_targets=n_targets, n_queries=n_queries, n_restarts=n_restarts,
                           early_exit=early_exit)
    x_adv = x.clone()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    for name in MEMBERS:
        idx = robust.nonzero().flatten()
        if len(idx) > 0:
            out = _MEMBER_ATTACKS[name](model, x[idx], y[idx], eps, generator=generator, **params[name])
            x_adv[idx] = out
            with torch.no_grad():
                robust[idx[model(out).argmax(1) != y[idx]]] = False
        if stages is not None:
            stages[name] = robust.clone()
    return x_adv


def worst_case_stages(model: nn.Module, x: Tensor, y: Tensor, eps: float, *,
                      generator: torch.Generator | None = None, n_iter: int = 100, n_targets: int = 9,
                      n_queries: int = 5000, n_restarts: int = 1, early_exit: bool = True
                      ) -> tuple[Tensor, dict[str, Tensor]]:
    """`aa`'s output and, per member in MEMBERS order, the boolean (B,) mask of the points still robust after it
    (cumulative). It runs the registered `aa`, so the attack contract's checks apply; the stages feed the
    gradient-masking check that Square must not beat the white-box members (benchmark/masking.py)."""
    found: dict[str, Tensor] = {}
    x_adv = aa(model, x, y, eps, generator=generator, n_iter=n_iter, n_targets=n_targets, n_queries=n_queries,
               n_restarts=n_restarts, early_exit=early_exit, stages=found)
    if not found:  # eps 0: the contract returns x without running the members, so each stage is the clean mask
        with torch.no_grad(), eval_mode(model):
            clean = model(x_adv).argmax(1) == y
        found = {name: clean.clone() for name in MEMBERS}
    return x_adv, found
