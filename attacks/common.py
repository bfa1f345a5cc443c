"""What the AutoAttack family (apgd-ce, apgd-t, square, aa) shares: checks of its count parameters and
random draws that follow the attack contract's `generator` (its device; the global RNG when None)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from benchmark.registry import UserError


def check_count(attack: str, params: dict[str, Any], *names: str) -> None:
    """Each of `names` in `params` (iterations, restarts, targets, queries) must be an int >= 1; else UserError."""
    for name in names:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{attack} {name} must be an integer >= 1, got {value!r}")


def check_switch(attack: str, params: dict[str, Any], name: str) -> None:
    """`params[name]` (an on/off setting such as APGD's early exit) must be a bool; else UserError."""
    if not isinstance(params[name], bool):
        raise UserError(f"{attack} {name} must be true or false, got {params[name]!r}")


def uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) of `shape` drawn on the generator's device (x's with the global RNG), returned on `like`'s.

    A CPU generator seeded with s draws what `torch.rand` draws after `torch.manual_seed(s)`: the numbers
    torchattacks and AutoAttack draw for their starts after seeding the global RNG with their `seed`."""
    device = like.device if generator is None else generator.device
    return torch.rand(shape, dtype=like.dtype, device=device, generator=generator).to(like.device)
