"""The render command: python -m benchmark.render (an alias of this module) [--profile quick|paper]
[--results-dir results] [--data-root DIR] [--only table1,...,table5,fig2,...,fig5,claims|all]
[--methods erm,egat,...] [--compare | --no-compare] [--plugins FILE,...] [--allow-stale]

Renders the declared artefacts from the eval records (benchmark/rendering.py) and prints each path written;
warnings (invalid or stale records, figures without the data they need) go to stderr. Bad input exits 2 with
one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.display_catalog import Catalog
from benchmark.plugins import load_plugins
from benchmark.registry import UserError, report
from benchmark.rendering import render
from benchmark.results import Results


def parse_only(text: str) -> list[str]:
    """A comma list of artefact names (or `all`), validated, in declaration order."""
    if text.strip() == "all":
        return artefact_order()
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in ARTEFACTS:
            raise UserError(f"unknown artefact {name!r}; valid choices: {', '.join(ARTEFACTS)}, all")
    if not names:
        raise UserError(f"empty --only list; valid choices: {', '.join(ARTEFACTS)}, all")
    return [name for name in artefact_order() if name in names]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.render",
                                description="Render the declared artefacts (tables, figures, claims) from the records.")
    p.add_argument("--profile", default="quick", help="quick or paper")
    p.add_argument("--results-dir", default="results", help="root of the results store")
    p.add_argument("--data-root", default=None, help="folder holding VLCS/ and terra_incognita/ (Fig. 4's images)")
    p.add_argument("--only", default="all", help="comma list of artefacts (" + ", ".join(ARTEFACTS) + "); default all")
    p.add_argument("--methods", default=None, help="Table I rows and Figs. 2-3 methods; default: the paper's")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction, default=None,
                   help="print the published values beside ours (default: in the paper profile)")
    p.add_argument("--plugins", default="", help="comma list of plugin files (methods, attacks, artefacts, ...)")
    p.add_argument("--allow-stale", action="store_true",
                   help="include records made by code that differs from the current code (marked in every header)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Render the chosen artefacts of a profile's records; 0 when done, 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        loaded = load_plugins(args.plugins)
        catalog = Catalog.from_registries() if loaded else Catalog.builtin()
        only = parse_only(args.only)
        methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
        for method in methods or ():
            if method not in catalog.methods:
                raise UserError(f"unknown method {method!r}; valid choices: {', '.join(catalog.methods)}")
        results = Results.load(args.results_dir, args.profile, catalog, allow_stale=args.allow_stale)
        for problem in results.invalid:
            print(f"warning: {problem}; left out", file=sys.stderr)
        if not results.runs:
            where = Path(args.results_dir) / args.profile / "runs" / "eval"
            why = (f"all {results.stale} eval records under {where} were made by code that differs from the current "
                   "code (rerun the grid, or pass --allow-stale to show them marked STALE)") if results.stale else (
                   f"no eval records under {where}")
            print(f"warning: {why}; tables and claims will be empty", file=sys.stderr)
        written = render(results, Path(args.results_dir) / args.profile, only=only, methods=methods,
                         data_root=args.data_root, compare=args.compare)
    except UserError as err:
        return report(err)
    for name in only:
        if ARTEFACTS.get(name).kind == "figure" and not any(p.name == f"{name}.png" for p in written):
            print(f"{name}: no records with the data it needs; not written", file=sys.stderr)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
