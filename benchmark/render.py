"""Render Tables I-IV, Figures 2-4 and claims.md from the eval records of one profile.

Usage: python -m benchmark.render [--profile quick|paper] [--results-dir results] [--data-root DIR]
                                  [--only table1,table2,table3,table4,fig2,fig3,fig4,claims]
                                  [--methods erm,egat,...] [--compare | --no-compare]

Writes `<results>/<profile>/tables/tableN.{csv,md}`, `<results>/<profile>/figures/figN.png` and
`<results>/<profile>/claims.md`, and prints each path written. Pure function of the records (plus
the test images for Fig. 4): nothing trains or evaluates here. Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.claims import render_claims
from benchmark.figures import FIGURES, render_figures
from benchmark.registry import UserError, parse_names, report
from benchmark.tables import TABLES, Results, render_tables
from methods import METHODS

ARTEFACTS = (*TABLES, *FIGURES, "claims")


def parse_only(text: str) -> list[str]:
    """A comma list of artefact names (or `all`), validated."""
    if text.strip() == "all":
        return list(ARTEFACTS)
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in ARTEFACTS:
            raise UserError(f"unknown artefact {name!r}; valid choices: {', '.join(ARTEFACTS)}, all")
    if not names:
        raise UserError(f"empty --only list; valid choices: {', '.join(ARTEFACTS)}, all")
    return list(dict.fromkeys(names))


def render(results: Results, root: str | Path, *, only: Sequence[str] = ARTEFACTS,
           methods: Sequence[str] | None = None, data_root: str | None = None,
           compare: bool | None = None) -> list[Path]:
    """Render the chosen artefacts under `root` (`<results>/<profile>`); returns the paths written.

    `methods` replaces the rows of Table I and the methods of Figs. 2-3 (default: the paper's);
    `compare` adds the published values to the tables (default: in the paper profile only)."""
    root = Path(root)
    written = render_tables(results, root / "tables", names=[n for n in only if n in TABLES], methods=methods,
                            compare=compare)
    written += render_figures(results, root / "figures", names=[n for n in only if n in FIGURES], methods=methods,
                              data_root=data_root)
    if "claims" in only:
        written.append(render_claims(results, root / "claims.md"))
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.render", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", help="quick or paper")
    p.add_argument("--results-dir", default="results", help="root of the results store")
    p.add_argument("--data-root", default=None, help="folder holding VLCS/ and terra_incognita/ (Fig. 4's images)")
    p.add_argument("--only", default="all", help="comma list of " + ", ".join(ARTEFACTS) + "; default all")
    p.add_argument("--methods", default=None, help="Table I rows and Figs. 2-3 methods; default: the paper's")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction, default=None,
                   help="print the published values beside ours (default: in the paper profile)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        only = parse_only(args.only)
        methods = parse_names(args.methods, METHODS) if args.methods else None
        results = Results.load(args.results_dir, args.profile)
        if not results.runs:
            print(f"warning: no eval records under {Path(args.results_dir) / args.profile / 'runs' / 'eval'}; "
                  "tables and claims will be empty", file=sys.stderr)
        written = render(results, Path(args.results_dir) / args.profile, only=only, methods=methods,
                         data_root=args.data_root, compare=args.compare)
    except UserError as err:
        return report(err)
    for name in (n for n in only if n in FIGURES):
        if not any(p.name == f"{name}.png" for p in written):
            print(f"{name}: no records with the data it needs; not written", file=sys.stderr)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
