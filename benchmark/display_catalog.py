"""What rendering needs to know of the registries, without importing them: names, display names, order.

Rendering reads records and must not import torch, training, attacks or the DDPM, but tables and
figures show each method's and attack's display name (declared beside it: methods/base.py,
attacks/base.py) and list domains in their dataset's order. `catalog.json`, shipped with the package,
is that information for the built-in registries, generated from their declarations:

    python -m benchmark.catalog      # rewrite benchmark/catalog.json after changing a declaration

A test fails when the file and the declarations disagree. Plugins' declarations are read from the
live registries once their files are loaded (`Catalog.from_registries`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

CATALOG_FILE = "catalog.json"


@dataclass(frozen=True)
class Catalog:
    """Display names of methods and attacks, and the domain order of datasets, in registration order."""

    methods: dict[str, str] = field(default_factory=dict)
    attacks: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def method(self, name: str) -> str:
        """A method's display name (its registry name when unknown, e.g. a plugin's not loaded here)."""
        return self.methods.get(name, name)

    def attack(self, name: str) -> str:
        """An attack's display name (its registry name when unknown)."""
        return self.attacks.get(name, name)

    def as_json(self) -> str:
        data = {"methods": self.methods, "attacks": self.attacks,
                "datasets": {name: list(domains) for name, domains in self.datasets.items()}}
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def builtin(cls) -> Catalog:
        """The shipped catalog of the built-in registries (no torch; read once)."""
        return _shipped()

    @classmethod
    def from_registries(cls) -> Catalog:
        """The catalog of the live registries, plugins included (imports the harness, hence torch)."""
        from attacks import ATTACKS
        from benchmark.data import DATASETS
        from methods import METHODS

        return cls({name: METHODS.get(name).display for name in METHODS},
                   {name: ATTACKS.get(name).display for name in ATTACKS},
                   {name: tuple(DATASETS.get(name).domain_names) for name in DATASETS})


@cache
def _shipped() -> Catalog:
    data = json.loads(resources.files("benchmark").joinpath(CATALOG_FILE).read_text(encoding="utf-8"))
    return Catalog(data["methods"], data["attacks"], {k: tuple(v) for k, v in data["datasets"].items()})


def write_shipped_catalog() -> Path:
    """Rewrite the shipped catalog.json from the built-in declarations (and any loaded plugin's); returns its path."""
    path = Path(__file__).with_name(CATALOG_FILE)
    path.write_text(Catalog.from_registries().as_json(), encoding="utf-8")
    return path
