"""The artefacts (tables, figures, claims) as declarations: what each needs run, and how it is drawn.

Each artefact is declared once, beside its builder (`benchmark/tables.py`, `benchmark/figures.py`,
`benchmark/claims.py`) with `ARTEFACTS.add(Artefact(...))`: its methods (rows, curves), the grids
`./reproduce.sh NAME` runs for it, and the function that renders it from the records. `reproduce`
derives its grid from these declarations and `render` draws them; adding a table is one declaration.
Torch-free: nothing here imports training, attacks or the DDPM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.registry import Registry, UserError

if TYPE_CHECKING:
    from benchmark.catalog import Catalog
    from benchmark.config import Profile
    from benchmark.results import Results


@dataclass(frozen=True)
class Grid:
    """One `benchmark.run` selection an artefact needs (the other flags come from the user).

    `methods` None: the artefact's methods. `eps` None: the profile's table eps; "grid": its whole eps
    grid. `models` None: the profile's model; "light": each of the profile's lighter backbones."""

    methods: tuple[str, ...] | None = None
    domains: str = "all"
    first_dataset_only: bool = False
    #: PGD-10 (the paper's aAcc) and the worst case `aa` (Table I's AA column): every table grid evaluates both, so
    #: one eval job per trained model serves every artefact
    attacks: str = "pgd,aa"
    eps: str | None = None
    models: str | None = None

    def argvs(self, profile: Profile, methods: Sequence[str]) -> list[list[str]]:
        """The run flags of this grid (one argument list per backbone)."""
        if self.eps == "grid":
            eps = ",".join(f"{e:g}" for e in profile.eps_grid)
        else:
            eps = self.eps if self.eps is not None else f"{profile.table_eps:g}"
        datasets = profile.datasets[:1] if self.first_dataset_only else profile.datasets
        argv = ["--methods", ",".join(self.methods or methods), "--datasets", ",".join(datasets),
                "--domains", self.domains, "--attacks", self.attacks, "--eps", eps]
        if self.models == "light":
            return [[*argv, "--model", model] for model in profile.light_models]
        return [argv]


@dataclass(frozen=True)
class RenderRequest:
    """What a user asked the renderer for, beside the records."""

    out: Path  # `<results>/<profile>`
    methods: tuple[str, ...] | None = None  # replaces the methods of artefacts with `custom_methods`
    compare: bool = False  # published values beside ours (tables)
    data_root: str | None = None  # where folder datasets' images are (Fig. 4)


@dataclass(frozen=True)
class Artefact:
    """A table, figure or claims file: its methods, the grids it needs, and its renderer."""

    name: str
    kind: str  # "table", "figure" or "claims"
    methods: tuple[str, ...]
    #: render(results, artefact, request) -> the paths written (none: no records it needs)
    render: Callable[[Results, Artefact, RenderRequest], list[Path]]
    grids: tuple[Grid, ...] = (Grid(),)
    #: tables: build(results, methods=None, compare=False) -> the table (its long `frame` is what claims read)
    build: Callable[..., Any] | None = None
    #: per-method labels of this artefact only (Table III calls EGAT "EGAT (base)")
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the paper's numeral of a table, where the published numbers have it (benchmark/reference)
    numeral: str | None = None
    #: whether render's --methods replaces `methods`
    custom_methods: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"artefact {self.name!r} has kind {self.kind!r}; valid choices: table, figure, claims")
        if not callable(self.render):
            raise UserError(f"artefact {self.name!r} breaks the artefact contract: render is not callable")

    def methods_for(self, request: RenderRequest) -> tuple[str, ...]:
        """The methods to draw: the user's --methods where this artefact takes them, else its own."""
        return tuple(request.methods) if self.custom_methods and request.methods else self.methods

    def runs(self, profile: Profile) -> list[list[str]]:
        """Every `benchmark.run` argument list this artefact needs under `profile`."""
        return [argv for grid in self.grids for argv in grid.argvs(profile, self.methods)]


ARTEFACTS: Registry[Artefact] = Registry("artefact")
KINDS = ("table", "figure", "claims")


def artefact_order() -> list[str]:
    """Every artefact's name: tables, then figures, then claims, each kind in declaration order (what `all`
    renders and reproduces, whichever module was imported first)."""
    return sorted(ARTEFACTS.names(), key=lambda name: KINDS.index(ARTEFACTS.get(name).kind))


def label(catalog: Catalog, method: str, artefact: str | None = None) -> str:
    """How `artefact` (or any artefact, when None) labels a method: its own label, else the display name."""
    if artefact is not None and artefact in ARTEFACTS:
        own = ARTEFACTS.get(artefact).labels.get(method)
        if own:
            return own
    return catalog.method(method)
