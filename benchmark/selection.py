"""A selection: which (dataset, domain, method, seed) jobs a grid runs, with which attacks and budgets.

The command line (`benchmark.run`) and the artefacts' declared grids (`benchmark/artefacts.py`) both
produce one; `benchmark/grid.py` turns it into jobs. Torch-free, so that the artefacts stay importable
without training code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchmark.registry import UserError

if TYPE_CHECKING:
    from benchmark.config import Profile

#: the paper's four attacks, in its order: Fig. 2's panels (benchmark/figures.py) and `--attacks paper`. A constant
#: here, not a flag on the attack declarations, so that rendering stays torch-free and a plugin cannot join it
PAPER_ATTACKS = ("fgsm", "mifgsm", "pgd", "sca")
#: the named attack lists `--attacks` takes besides `all` (every registered attack, plugins' included) and `none`
ATTACK_SELECTIONS = {"paper": PAPER_ATTACKS}


@dataclass(frozen=True)
class Selection:
    """What a grid runs, its names validated where jobs are built (benchmark/grid.py)."""

    profile: Profile
    datasets: tuple[str, ...]
    domains: str  # "all" or a comma list of names/indices, resolved per dataset
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    hparams: dict[str, dict[str, str]] = field(default_factory=dict)  # method -> key -> CLI value
    tuned: bool = True  # take the profile's sweep selection (benchmark/tuned.py) where it has one

    def __post_init__(self) -> None:
        for method in self.hparams:
            if method not in self.methods:
                raise UserError(f"--hparams names method {method!r}, which is not selected; selected: "
                                f"{', '.join(self.methods)}")


def parse_eps(text: str) -> tuple[float, ...]:
    """A comma list of budgets in pixel units, each a finite number in [0, 1]."""
    values = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"malformed eps {part!r}: expected comma-separated numbers in [0, 1], "
                            "e.g. 0,0.01,0.02") from None
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise UserError(f"eps {part} is outside [0, 1]: budgets are in pixel units of [0, 1] images")
        values.append(value)
    if not values:
        raise UserError("empty eps list: expected comma-separated numbers in [0, 1], e.g. 0,0.01,0.02")
    return tuple(dict.fromkeys(values))


def parse_seeds(text: str) -> tuple[int, ...]:
    """A comma list of non-negative integer seeds."""
    try:
        seeds = tuple(dict.fromkeys(int(p) for p in text.split(",") if p.strip()))
    except ValueError:
        raise UserError(f"malformed seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"malformed seeds {text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
    return seeds
