"""The sweep command: python -m benchmark.sweep (an alias of this module) --methods M,... --trials N [flags].

Runs the equal-budget random hyperparameter search of benchmark/hyperparameter_search.py through the grid's
launchers, prints the paths of its report and, with --write-tuned or --tuned-out, of the tuned file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.arguments import (
    add_launch_arguments,
    add_profile_arguments,
    launch_from_args,
    one_line_warnings,
    profile_from_args,
    run_plugins,
)
from benchmark.config import PROFILES
from benchmark.data import DATASETS
from benchmark.execute import execute
from benchmark.grid import Plan
from benchmark.hyperparameter_search import (
    plan_trials,
    select,
    sweep_store,
    trial_rows,
    tuned_document,
    write_report,
    write_tuned,
)
from benchmark.registry import UserError, parse_names, report
from benchmark.selection import parse_seeds
from benchmark.tuned import tuned_path
from methods import METHODS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.sweep",
                                description="Equal-budget random hyperparameter search, DomainBed-style.")
    add_profile_arguments(p)
    p.add_argument("--methods", required=True, help="comma list of methods, or all")
    p.add_argument("--trials", type=int, required=True, help="trials per method and dataset (trial 0: defaults)")
    p.add_argument("--write-tuned", action="store_true",
                   help="write the validation selection to benchmark/tuned/<profile>.json (the profile's tuned values)")
    p.add_argument("--tuned-out", default=None,
                   help="write the selection to this file instead of the profile's (any profile adjustments allowed)")
    add_launch_arguments(p)
    return p


@one_line_warnings()
def main(argv: list[str] | None = None) -> int:
    """Run the sweep's trials, write its report (and the tuned file when asked); 0 when done, 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        plugins = run_plugins(args)
        if args.trials < 1:
            raise UserError(f"--trials must be >= 1 (trial 0 is the defaults), got {args.trials}")
        profile = profile_from_args(args)
        if args.write_tuned and args.tuned_out is None and profile != PROFILES.get(args.profile):
            raise UserError(f"--write-tuned writes the {profile.name} profile's tuned values, but --steps, --model, "
                            "--no-pretrained or --image-size changed the profile; drop them, or write elsewhere "
                            "with --tuned-out FILE")
        datasets = tuple(parse_names(args.datasets, DATASETS)) if args.datasets else profile.datasets
        methods = tuple(parse_names(args.methods, METHODS))
        seeds = parse_seeds(args.seeds) if args.seeds is not None else (0,)
        store = sweep_store(args.results_dir, profile)
        launch = launch_from_args(args, plugins, results_dir=str(store.root.parent), stop_on_divergence=True)
        planned = plan_trials(profile, datasets, methods, args.trials, seeds)

        def headline(plan: Plan) -> str:
            return (f"sweep plan: {len(methods)} methods x {len(datasets)} datasets x {args.trials} trials x "
                    f"{len(seeds)} seeds = {len(planned)} jobs ({profile.name} profile): {len(plan.done)} done, "
                    f"{len(plan.pending)} to run")

        execute([job for _, job in planned], launch, headline=headline)
        if args.dry_run:
            return 0
        rows = trial_rows(planned, store)
        chosen = select(rows)
        for path in write_report(rows, chosen, store.root, profile, args.trials, seeds):
            print(f"wrote {path}")
        if args.write_tuned or args.tuned_out:
            command = "python -m benchmark.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
            document = tuned_document(profile, planned, chosen, args.trials, seeds, command)
            target = Path(args.tuned_out) if args.tuned_out else tuned_path(profile.name)
            print(f"wrote {write_tuned(document, target)}")
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
