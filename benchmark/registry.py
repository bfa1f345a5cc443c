"""Name -> object registries: one for each pluggable kind (methods, attacks, explainers, ...).

The registration order is kept: it is the order in `--list` and the row order of the tables. Each
entry remembers the plugin that registered it (benchmark/plugins.py), or None for the package's own,
so that job keys can include a plugin's file content and a failed plugin leaves no entry behind.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Origin:
    """Where registry entries came from: a plugin file or entry point, and a digest of its content."""

    source: str
    digest: str


#: the plugin being loaded (set by benchmark.plugins while it imports one), else None
_loading: list[Origin] = []
#: every registry, so that a failed plugin's entries can be removed from all of them
_REGISTRIES: list[Registry] = []


class UserError(Exception):
    """Bad user input (names, values, data folders): the CLI prints it as one line and exits 2."""


@dataclass(frozen=True)
class Range:
    """Where a sweep may draw a hyperparameter from: [low, high], log-uniform if `log`, integers if `integer`
    (declared beside a method's defaults, methods/base.py, and a profile's loop settings, benchmark/config.py)."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise UserError(f"a search range needs finite low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise UserError(f"a log-uniform search range needs low > 0, got {self.low}")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise UserError(f"an integer search range needs an integer in [{self.low}, {self.high}]")

    def draw(self, rng: random.Random) -> float | int:
        """One value: uniform (in log space if `log`) in [low, high], rounded to an integer if `integer`."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return min(max(round(value), math.ceil(self.low)), math.floor(self.high)) if self.integer else value


def report(err: UserError) -> int:
    """Print a UserError as the CLIs' one-line `error: ...` on stderr; returns their exit code, 2."""
    print(f"error: {err}", file=sys.stderr)
    return 2


class Registry(Generic[T]):
    """An ordered mapping from names to objects with a helpful error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origins: dict[str, Origin] = {}
        _REGISTRIES.append(self)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering `obj` under `name`; duplicate names are a programming error."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        """Register `obj` under `name` (used where a decorator does not fit, e.g. variants)."""
        if name in self._items:
            raise UserError(f"{self.kind} {name!r} is registered twice; names in use: {', '.join(self._items)}")
        self._items[name] = obj
        if _loading:
            self._origins[name] = _loading[-1]

    def origin(self, name: str) -> Origin | None:
        """The plugin that registered `name`, or None for the package's own entries."""
        return self._origins.get(name)

    def forget(self, origin: Origin) -> None:
        """Remove every entry `origin` registered (a plugin that failed to load)."""
        for name in [n for n, o in self._origins.items() if o == origin]:
            del self._items[name], self._origins[name]

    def get(self, name: str) -> T:
        """The object registered as `name`, or a UserError that lists the valid choices."""
        try:
            return self._items[name]
        except KeyError:
            raise UserError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(self._items)}"
            ) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def parse_names(text: str, registry: Registry, *, allow_none: bool = False,
                named: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Parse a comma list of registry names; `all` means every name, each keyword of `named` its names (e.g.
    `--attacks paper`), `none` (if allowed) none. `all` and the named keywords may stand among names (`paper,aa`)."""
    keywords = {"all": registry.names(), **(named or {})}
    choices = ", ".join([*registry.names(), *keywords, *(["none"] if allow_none else [])])
    text = text.strip()
    if allow_none and text == "none":
        return []
    names = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part not in keywords and part not in registry:
            raise UserError(f"unknown {registry.kind} {part!r}; valid choices: {choices}")
        names.extend(keywords.get(part, [part]))
    if not names:
        raise UserError(f"empty {registry.kind} list; valid choices: {choices}")
    return list(dict.fromkeys(names))
