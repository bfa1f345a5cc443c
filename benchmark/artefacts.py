"""The artefacts (tables, figures, claims) as declarations: what each needs run, and how it is drawn.

Each artefact is declared once, beside its builder (`benchmark/tables.py`, `benchmark/figures.py`,
`benchmark/claims.py`) with `ARTEFACTS.add(Artefact(...))`: its methods (rows, curves), the grids
`./reproduce.sh NAME` runs for it, and the function that renders it from the records. `reproduce`
derives its grid from these declarations and `render` draws them; adding a table is one declaration.
Torch-free: nothing here imports training, attacks or the DDPM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.config import SETTINGS
from benchmark.registry import Registry, UserError
from benchmark.selection import Selection, parse_eps

if TYPE_CHECKING:
    from benchmark.config import Profile
    from benchmark.display_catalog import Catalog
    from benchmark.results import Results


@dataclass(frozen=True)
class Grid:
    """One selection an artefact needs (seeds, hyperparameters and how jobs run come from the user).

    `methods` None: the artefact's methods. `attacks`: a comma list of attack names, or none. `eps` None: the
    profile's table eps; "grid": its whole eps grid; else a comma list. `models` None: the profile's model;
    "light": each of the profile's lighter backbones. `setting`: a verdict-study setting of the profile
    (benchmark/config.py SETTINGS), None: the profile itself. `profiles`: the profiles the grid is declared for,
    None: every profile (the verdict study's settings vary the quick profile only)."""

    methods: tuple[str, ...] | None = None
    domains: str = "all"
    first_dataset_only: bool = False
    #: PGD-10 (the paper's aAcc) and the worst case `aa` (Table I's AA column): every table grid evaluates both, so
    #: one eval job per trained model serves every artefact
    attacks: str = "pgd,aa"
    eps: str | None = None
    models: str | None = None
    setting: str | None = None
    profiles: tuple[str, ...] | None = None

    def selections(self, profile: Profile, methods: Sequence[str]) -> list[Selection]:
        """This grid under `profile` (one selection per backbone; none under a profile it is not declared for)."""
        if self.profiles is not None and profile.name not in self.profiles:
            return []
        if self.setting is not None:
            profile = SETTINGS.get(self.setting).apply(profile)
        if self.eps == "grid":
            eps = profile.eps_grid
        else:
            eps = parse_eps(self.eps) if self.eps is not None else (profile.table_eps,)
        attacks = () if self.attacks.strip() == "none" else tuple(
            dict.fromkeys(name.strip() for name in self.attacks.split(",") if name.strip()))
        selection = Selection(profile=profile, datasets=profile.datasets[:1] if self.first_dataset_only
                              else profile.datasets, domains=self.domains, methods=tuple(self.methods or methods),
                              seeds=profile.seeds, attacks=attacks, eps=eps)
        if self.models == "light":
            return [replace(selection, profile=replace(profile, model=model)) for model in profile.light_models]
        return [selection]


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
    #: other artefacts drawn from this one's grids, which `./reproduce.sh NAME` renders with it (Table VI: Fig. 6)
    companions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"artefact {self.name!r} has kind {self.kind!r}; valid choices: table, figure, claims")
        if not callable(self.render):
            raise UserError(f"artefact {self.name!r} breaks the artefact contract: render is not callable")

    def methods_for(self, request: RenderRequest) -> tuple[str, ...]:
        """The methods to draw: the user's --methods where this artefact takes them, else its own."""
        return tuple(request.methods) if self.custom_methods and request.methods else self.methods

    def selections(self, profile: Profile) -> list[Selection]:
        """Every selection this artefact needs under `profile`."""
        return [selection for grid in self.grids for selection in grid.selections(profile, self.methods)]


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
