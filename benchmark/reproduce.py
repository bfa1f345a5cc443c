"""Reproduce one of the declared artefacts (the paper's tables and figures, or a plugin's), or all of them.

Usage: python -m benchmark.reproduce table1|table2|table3|table4|table5|fig2|fig3|fig4|fig5|all [run flags]
(`./reproduce.sh TARGET [flags]` calls this). Each artefact's grids come from its declaration
(benchmark/artefacts.py) as selections, run one after the other (benchmark/execute.py); flags such as
--profile, --results-dir, --data-root, --seeds, --launcher, --workers, --device and --plugins go to every
grid; the selection (methods, datasets, domains, attacks, eps, model) is the artefact's. Every table shares
the same evaluation settings (PGD-10 and AA at the profile's table eps), so later targets reuse earlier
trainings and evaluations.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

from benchmark import render
from benchmark.arguments import (
    add_hyperparameter_arguments,
    add_launch_arguments,
    add_profile_arguments,
    launch_from_args,
    one_line_warning,
    profile_from_args,
    run_plugins,
)
from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.config import Profile, parse_hparam_overrides
from benchmark.execute import execute
from benchmark.grid import build_jobs, make_plan
from benchmark.registry import UserError, report
from benchmark.selection import Selection, parse_seeds

#: `benchmark.run` flags that choose a selection: an artefact's grids set them
SELECTION_FLAGS = ("--methods", "--datasets", "--domains", "--attacks", "--eps", "--model", "--list")


def grids_of(targets: list[str], profile: Profile) -> list[Selection]:
    """The selections these artefacts need under `profile`, each once, in order."""
    found: list[Selection] = []
    for selection in (s for name in targets for s in ARTEFACTS.get(name).selections(profile)):
        if selection not in found:
            found.append(selection)
    return found


def has_pending(selection: Selection, results_dir: str) -> bool:
    """Whether a grid has jobs not done: after a later grid retrained one of its models (a checkpoint missing, as
    in a committed store) into other weights, its evaluations of the old weights are redone."""
    return bool(make_plan(build_jobs(selection), results_dir).pending)


def run_flags(selection: Selection, profile: Profile) -> str:
    """The `benchmark.run` flags that select the same grid (printed before it runs, to run it alone)."""
    flags = [f"--methods {','.join(selection.methods)}", f"--datasets {','.join(selection.datasets)}",
             f"--domains {selection.domains}", f"--attacks {','.join(selection.attacks) or 'none'}",
             f"--eps {','.join(f'{e:g}' for e in selection.eps)}"]
    if selection.profile.model != profile.model:
        flags.append(f"--model {selection.profile.model}")
    return " ".join(flags)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("target", help=", ".join([*ARTEFACTS, "all"]))
    add_profile_arguments(p, selection=False)
    add_hyperparameter_arguments(p)
    add_launch_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
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
        launch = launch_from_args(args, plugins)
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
    only = ["--only", "all" if args.target == "all" else ",".join(dict.fromkeys([args.target, "claims"]))]
    return render.main([*common, *only])


if __name__ == "__main__":
    warnings.formatwarning = one_line_warning
    raise SystemExit(main())
