"""Command line: python -m benchmark.run [--profile quick|paper] [--datasets ...] [--methods ...] ...

Builds the grid of (dataset, domain, method, seed) jobs, prints the plan, runs what is not done yet
through a launcher, and prints a summary. Bad input exits with code 2 and one line on stderr.
(`python -m benchmark.run` is an alias of `python -m benchmark.cli.run`.)
"""

from __future__ import annotations

import argparse

from attacks import ATTACKS
from benchmark.arguments import (
    add_hyperparameter_arguments,
    add_launch_arguments,
    add_profile_arguments,
    launch_from_args,
    one_line_warnings,
    profile_from_args,
    run_plugins,
)
from benchmark.config import PROFILES, SETTINGS, parse_hparam_overrides
from benchmark.data import DATASETS
from benchmark.execute import execute
from benchmark.explain import EXPLAINERS
from benchmark.grid import build_jobs
from benchmark.launchers import LAUNCHERS
from benchmark.metrics import METRICS
from benchmark.models import MODELS
from benchmark.registry import UserError, parse_names, report
from benchmark.selection import ATTACK_SELECTIONS, Selection, parse_eps, parse_seeds
from methods import METHODS

REGISTRIES = {"methods": METHODS, "attacks": ATTACKS, "explainers": EXPLAINERS, "datasets": DATASETS,
              "models": MODELS, "launchers": LAUNCHERS, "profiles": PROFILES}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--list", action="store_true", help="print every registry and exit")
    add_profile_arguments(p)
    p.add_argument("--domains", default="all", help="all, or comma list of domain names or indices 0-3")
    p.add_argument("--methods", default="erm", help="comma list of methods, or all")
    p.add_argument("--attacks", default="pgd", help="comma list of attacks, all, paper (the paper's four), or none")
    p.add_argument("--eps", default=None, help="comma list of L-inf budgets in pixel units; default: profile's")
    add_hyperparameter_arguments(p)
    add_launch_arguments(p)
    return p


def print_registries() -> None:
    """Every registry's names; attacks with their cost relative to PGD-10 (standard, and per profile where a
    profile runs them with other parameters), then what `--attacks` also takes; the study settings; then the
    metrics as declared (benchmark/metrics.py)."""
    for title, registry in REGISTRIES.items():
        if registry is ATTACKS:
            print(f"{title}: " + ", ".join(f"{name} ({attack_cost_text(name)})" for name in registry.names()))
            print("attack lists: all (every attack above, plugins' included), "
                  + ", ".join(f"{keyword} ({', '.join(names)})" for keyword, names in ATTACK_SELECTIONS.items())
                  + ", none (alone); the others combine with names, e.g. paper,aa")
        else:
            print(f"{title}: {', '.join(registry.names())}")
    print("settings: " + "; ".join(f"{name} ({SETTINGS.get(name).description})" for name in SETTINGS.names()))
    declared = [METRICS.get(name) for name in METRICS]
    print("metrics: " + ", ".join(f"{m.name} ({m.description()}{'; ' + attack_cost_text(m.attack) if m.attack else ''})"
                                  for m in declared))


def attack_cost_text(name: str) -> str:
    """`cost 140x PGD-10; quick profile: 17x, 45x on a model trained on PGD (n_queries 100; first 500 test images)`:
    an attack's declared and per-profile costs per image, with the profile's parameters and images."""
    text = f"cost {ATTACKS.get(name).cost:g}x PGD-10"
    for profile in PROFILES.names():
        setting = PROFILES.get(profile).attack_settings.get(name)
        if setting is not None:
            details = [", ".join(f"{k} {v}" for k, v in setting.params.items())]
            if setting.images is not None:
                details.append(f"first {setting.images} test images")
            robust = "" if setting.robust_cost is None else f", {setting.robust_cost:g}x on a model trained on PGD"
            text += f"; {profile} profile: {setting.cost:g}x{robust} ({'; '.join(details)})"
    return text


def selection_from_args(args: argparse.Namespace) -> Selection:
    """Validate every name and number the user gave; UserError names the valid choices."""
    profile = profile_from_args(args)
    datasets = tuple(parse_names(args.datasets, DATASETS)) if args.datasets else profile.datasets
    methods = tuple(parse_names(args.methods, METHODS))
    hparams = parse_hparam_overrides(args.hparams)
    return Selection(
        profile=profile,
        datasets=datasets,
        domains=args.domains,
        methods=methods,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else profile.seeds,
        attacks=tuple(parse_names(args.attacks, ATTACKS, allow_none=True, named=ATTACK_SELECTIONS)),
        eps=parse_eps(args.eps) if args.eps is not None else profile.eps_grid,
        hparams=hparams,
        tuned=not args.untuned,
    )


@one_line_warnings()
def main(argv: list[str] | None = None) -> int:
    """Run the selected grid (or list the registries); 0 when done, 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        plugins = run_plugins(args)
        if args.list:
            print_registries()
            return 0
        selection = selection_from_args(args)
        launch = launch_from_args(args, plugins)
        execute(build_jobs(selection), launch, summarize=True)
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
