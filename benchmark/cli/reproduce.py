"""The reproduce command: python -m benchmark.reproduce (an alias of this module)
table1|...|table6|fig2|...|fig6|all [run flags].

Runs the target artefacts' grids (benchmark/reproduction.py) one after the other, printing each as the
`benchmark.run` flags that select it (several grids: first one plan line for all of them), then renders the target,
the artefacts drawn from its grids (`Artefact.companions`: Table VI's Fig. 6) and the claims (the render command).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from benchmark.arguments import (
    add_hyperparameter_arguments,
    add_launch_arguments,
    add_profile_arguments,
    launch_from_args,
    one_line_warnings,
    profile_from_args,
    run_plugins,
)
from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.cli import render
from benchmark.config import parse_hparam_overrides
from benchmark.execute import execute, plan_grids
from benchmark.grid import build_jobs
from benchmark.registry import UserError, report
from benchmark.reproduction import grids_of, has_pending, run_flags
from benchmark.selection import parse_seeds

#: `benchmark.run` flags that choose a selection: an artefact's grids set them
SELECTION_FLAGS = ("--methods", "--datasets", "--domains", "--attacks", "--eps", "--model", "--setting", "--list")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.reproduce",
                                description="Reproduce one of the declared artefacts, or all of them.")
    p.add_argument("target", help=", ".join([*ARTEFACTS, "all"]))
    add_profile_arguments(p, selection=False)
    add_hyperparameter_arguments(p)
    add_launch_arguments(p)
    return p


@one_line_warnings()
def main(argv: list[str] | None = None) -> int:
    """Run the target's grids, then render it; 0 when done, 2 on bad input."""
    p = parser()
    args, unknown = p.parse_known_args(argv)
    try:
        plugins = run_plugins(args)
        if args.target != "all" and args.target not in ARTEFACTS:
            raise UserError(f"unknown target {args.target!r}; valid choices: {', '.join(ARTEFACTS)}, all, test")
        clash = [flag for flag in unknown if flag.split("=")[0] in SELECTION_FLAGS]
        if clash:
            raise UserError(f"{clash[0]} is set by the target {args.target}; use python -m benchmark.run for "
                            "custom selections")
        if unknown:
            p.error(f"unrecognized arguments: {' '.join(unknown)}")
        profile = profile_from_args(args)
        targets = artefact_order() if args.target == "all" else [args.target]
        user = {"hparams": parse_hparam_overrides(args.hparams), "tuned": not args.untuned,
                "seeds": parse_seeds(args.seeds) if args.seeds is not None else profile.seeds}
        grids = [replace(selection, **user) for selection in grids_of(targets, profile)]
        declared = [grid.profiles for name in targets for grid in ARTEFACTS.get(name).grids if grid.profiles]
        if not grids and declared:
            raise UserError(f"{args.target} is declared for the {', '.join(declared[0])} profile only; valid "
                            f"choices: --profile {', '.join(declared[0])}")
        launch = launch_from_args(args, plugins)
        if len(grids) > 1:
            print(f"== {args.target}: {plan_grids([build_jobs(s) for s in grids], launch)}", flush=True)
        for selection in grids:
            print(f"== {args.target}: {run_flags(selection, profile)}", flush=True)
            execute(build_jobs(selection), launch, summarize=True)
        if args.dry_run:
            return 0
        for selection in [s for s in grids if has_pending(s, args.results_dir)]:
            print(f"== {args.target} again (a later grid retrained a model of it into other weights): "
                  f"{run_flags(selection, profile)}", flush=True)
            execute(build_jobs(selection), launch, summarize=True)
    except UserError as err:
        return report(err)
    common = ["--profile", args.profile, "--results-dir", args.results_dir]
    common += ["--data-root", args.data_root] if args.data_root else []
    common += ["--plugins", args.plugins] if args.plugins else []
    companions = () if args.target == "all" else ARTEFACTS.get(args.target).companions
    only = ["--only", "all" if args.target == "all" else ",".join(dict.fromkeys([args.target, *companions, "claims"]))]
    return render.main([*common, *only])


if __name__ == "__main__":
    raise SystemExit(main())
