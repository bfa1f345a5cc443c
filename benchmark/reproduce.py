"""Reproduce one of the declared artefacts (the paper's tables and figures, or a plugin's), or all of them.

Usage: python -m benchmark.reproduce table1|table2|table3|table4|table5|fig2|fig3|fig4|fig5|all [run flags]
(`./reproduce.sh TARGET [flags]` calls this). Each artefact's grid comes from its declaration
(benchmark/artefacts.py); flags such as --profile, --results-dir, --data-root, --seeds, --launcher,
--workers, --device and --plugins go to the grid; the selection (methods, datasets, domains,
attacks, eps) is the artefact's. Every table shares the same evaluation settings (PGD-10 and AA at
the profile's table eps), so later targets reuse earlier trainings and evaluations.
"""

from __future__ import annotations

import argparse

from benchmark import render, run
from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.config import PROFILES, Profile
from benchmark.grid import build_jobs, make_plan
from benchmark.plugins import load_plugins
from benchmark.registry import UserError, report

SELECTION_FLAGS = ("--methods", "--datasets", "--domains", "--attacks", "--eps", "--model", "--list")


def grids_of(targets: list[str], profile: Profile) -> list[list[str]]:
    """The `benchmark.run` selections these artefacts need under `profile`, each once, in order."""
    runs = [argv for name in targets for argv in ARTEFACTS.get(name).runs(profile)]
    return [list(a) for a in dict.fromkeys(tuple(a) for a in runs)]


def has_pending(argv: list[str]) -> bool:
    """Whether a grid (run flags) has jobs not done: after a later grid retrained one of its models (a checkpoint
    missing, as in a committed store) into other weights, its evaluations of the old weights are redone."""
    args = run.parser().parse_args(argv)
    return bool(make_plan(build_jobs(run.selection_from_args(args)), args.results_dir).pending)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("target", help=", ".join([*ARTEFACTS, "all"]))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--plugins", default="")
    args, passthrough = parser.parse_known_args(argv)
    try:
        load_plugins(args.plugins)
        if args.target != "all" and args.target not in ARTEFACTS:
            raise UserError(f"unknown target {args.target!r}; valid choices: {', '.join(ARTEFACTS)}, all, test")
        clash = [flag for flag in passthrough if flag.split("=")[0] in SELECTION_FLAGS]
        if clash:
            raise UserError(f"{clash[0]} is set by the target {args.target}; use python -m benchmark.run for "
                            "custom selections")
        profile = PROFILES.get(args.profile)
    except UserError as err:
        return report(err)
    common = ["--profile", args.profile, "--results-dir", args.results_dir]
    common += ["--data-root", args.data_root] if args.data_root else []
    common += ["--plugins", args.plugins] if args.plugins else []
    targets = artefact_order() if args.target == "all" else [args.target]
    grids = grids_of(targets, profile)
    for argv in grids:
        print(f"== {args.target}: {' '.join(argv)}", flush=True)
        code = run.main([*common, *argv, *passthrough])
        if code:
            return code
    if "--dry-run" in passthrough:
        return 0
    for argv in [a for a in grids if has_pending([*common, *a, *passthrough])]:
        print(f"== {args.target} again (a later grid retrained a model of it into other weights): {' '.join(argv)}",
              flush=True)
        code = run.main([*common, *argv, *passthrough])
        if code:
            return code
    only = ["--only", "all" if args.target == "all" else ",".join(dict.fromkeys([args.target, "claims"]))]
    return render.main([*common, *only])


if __name__ == "__main__":
    raise SystemExit(main())
