"""Published numbers of the EGAT paper (paper_tables.csv, shipped as package data) and how they map to ours.

`reference()` is the paper's Tables I-IV in long format; `with_paper` puts the published value beside
each of our rows; `reference_frames` gives the published tables in our long schema, so that claims.py
applies every rule to the paper's numbers too. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from importlib import resources

import pandas as pd

from benchmark.artefacts import ARTEFACTS, Artefact, label
from benchmark.config import PAPER_DATASET_NAMES
from benchmark.display_catalog import Catalog

#: our long frames' columns (tables.py, claims.py)
COLUMNS = ["dataset", "train_domain", "test_domain", "method", "name", "metric", "mean", "se", "n"]


def reference() -> pd.DataFrame:
    """The published numbers, long format (table, dataset, train_domain, test_domain, method, metric, value)."""
    with resources.files("benchmark").joinpath("reference/paper_tables.csv").open() as f:
        return pd.read_csv(f)


def _paper_domain(domain: str) -> str:
    """Our domain name as the paper writes it (TerraIncognita's L38 is "Location 38")."""
    return f"Location {domain[1:]}" if domain[:1] == "L" and domain[1:].isdigit() else domain


def with_paper(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """`frame` with a `paper` column: the published value of each row (NaN where none)."""
    ref = reference()
    ref = ref[ref["table"] == ARTEFACTS.get(table).numeral]
    lookup = {tuple(k): v for *k, v in ref[["dataset", "train_domain", "test_domain", "method", "metric",
                                            "value"]].itertuples(index=False)}
    values = [lookup.get((PAPER_DATASET_NAMES.get(r.dataset, r.dataset), _paper_domain(r.train_domain),
                          _paper_domain(r.test_domain), r.name, r.metric), math.nan)
              for r in frame.itertuples()]
    return frame.assign(paper=pd.Series(values, index=frame.index, dtype=float))


def _our_domain(domain: str) -> str:
    """The paper's domain name as our dataset spells it ("Location 38" is L38)."""
    return f"L{domain.split()[1]}" if domain.startswith("Location ") else domain


def reference_frames(tables: Iterable[Artefact], catalog: Catalog | None = None, *,
                     our_names: bool = False) -> dict[str, pd.DataFrame]:
    """The published numbers of each of `tables` that has a paper numeral, in our long schema (method = registry
    name, through that table's labels), for claims.py, by table name; `our_names`: datasets and domains as the
    paper profile names them (vlcs, L38). The caller names the tables: their declarations live in tables.py,
    which imports this module."""
    catalog = catalog or Catalog.builtin()
    ref = reference()
    if our_names:
        datasets = {v: k for k, v in PAPER_DATASET_NAMES.items()}
        ref = ref.assign(dataset=ref["dataset"].map(datasets), train_domain=ref["train_domain"].map(_our_domain),
                         test_domain=ref["test_domain"].map(_our_domain))
    out = {}
    for table in (artefact for artefact in tables if artefact.numeral):
        names = {label(catalog, m, table.name): m for m in catalog.methods}
        part = ref[ref["table"] == table.numeral]
        out[table.name] = pd.DataFrame({
            "dataset": part["dataset"], "train_domain": part["train_domain"], "test_domain": part["test_domain"],
            "method": part["method"].map(names), "name": part["method"], "metric": part["metric"],
            "mean": part["value"].astype(float), "se": math.nan, "n": pd.array([pd.NA] * len(part), dtype="Int64"),
        }).reset_index(drop=True)
    return out
