"""Reproduce one of the paper's tables or figures (or all): run the grid it needs, then render it.

Usage: python -m benchmark.reproduce table1|table2|table3|table4|fig2|fig3|fig4|all [run flags]
(`./reproduce.sh TARGET [flags]` calls this). Flags such as --profile, --results-dir, --data-root,
--seeds, --launcher, --workers and --device go to the grid; the selection (methods, datasets,
domains, attacks, eps) is the target's. Every table shares the same evaluation settings (PGD-10 at
the profile's table eps), so later targets reuse earlier trainings and evaluations.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from benchmark import render, run
from benchmark.config import PROFILES, Profile
from benchmark.registry import UserError, report

MAIN_METHODS = "erm,igr,ign,dmada,irm,dre,sgdrop,egat"
OOD_METHODS = "erm,igr,ign,dre,sgdrop,egat"
VARIANT_METHODS = "igr,sgdrop,egat,egat-sg,egat-ig,egat-finercam,egat-noise0.01,egat-noise0.5,egat-golden"
ABLATION_METHODS = "erm,egat-noegl,egat-noat,egat"
FIG4_METHODS = "erm,dre,sgdrop,egat"
SELECTION_FLAGS = ("--methods", "--datasets", "--domains", "--attacks", "--eps", "--model", "--list")


@dataclass(frozen=True)
class Grid:
    """One grid run: a selection of the CLI's flags (the rest come from the user)."""

    methods: str
    domains: str = "all"
    first_dataset_only: bool = False
    attacks: str = "pgd"
    eps: str | None = None  # None: the profile's table eps
    model: str | None = None

    def argv(self, profile: Profile) -> list[str]:
        eps = self.eps if self.eps is not None else f"{profile.table_eps:g}"
        datasets = profile.datasets[:1] if self.first_dataset_only else profile.datasets
        argv = ["--methods", self.methods, "--datasets", ",".join(datasets), "--domains", self.domains,
                "--attacks", self.attacks, "--eps", eps]
        return argv + (["--model", self.model] if self.model else [])


def figure3_grids(profile: Profile) -> list[Grid]:
    """Table I's models, Madry AT, and EGAT on the profile's lighter backbones."""
    return [Grid(MAIN_METHODS), Grid("at")] + [Grid("egat", model=model) for model in profile.light_models]


def figure2_grids(profile: Profile) -> list[Grid]:
    """Every attack over the eps grid, on the first domain of each dataset (where SCA is affordable)."""
    eps = ",".join(f"{e:g}" for e in profile.eps_grid)
    return [Grid(OOD_METHODS + ",at", domains="0", attacks="all", eps=eps)]


TARGETS = {
    "table1": lambda p: [Grid(MAIN_METHODS)],
    "table2": lambda p: [Grid(OOD_METHODS, first_dataset_only=True)],
    "table3": lambda p: [Grid(VARIANT_METHODS, domains="0", first_dataset_only=True)],
    "table4": lambda p: [Grid(ABLATION_METHODS)],
    "fig2": figure2_grids,
    "fig3": figure3_grids,
    "fig4": lambda p: [Grid(FIG4_METHODS, domains="0", first_dataset_only=True)],
}
TARGETS["all"] = lambda p: [grid for name in TARGETS if name != "all" for grid in TARGETS[name](p)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("target", help=", ".join(TARGETS))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default=None)
    args, passthrough = parser.parse_known_args(argv)
    try:
        if args.target not in TARGETS:
            raise UserError(f"unknown target {args.target!r}; valid choices: {', '.join(TARGETS)}, test")
        clash = [flag for flag in passthrough if flag.split("=")[0] in SELECTION_FLAGS]
        if clash:
            raise UserError(f"{clash[0]} is set by the target {args.target}; use python -m benchmark.run for "
                            "custom selections")
        profile = PROFILES.get(args.profile)
    except UserError as err:
        return report(err)
    common = ["--profile", args.profile, "--results-dir", args.results_dir]
    common += ["--data-root", args.data_root] if args.data_root else []
    for grid in TARGETS[args.target](profile):
        print(f"== {args.target}: {' '.join(grid.argv(profile))}", flush=True)
        code = run.main([*common, *grid.argv(profile), *passthrough])
        if code:
            return code
    if "--dry-run" in passthrough:
        return 0
    only = ["--only", "all" if args.target == "all" else f"{args.target},claims"]
    return render.main([*common, *only])


if __name__ == "__main__":
    raise SystemExit(main())
