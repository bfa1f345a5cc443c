"""Command line: python -m benchmark.run [--profile quick|paper] [--datasets ...] [--methods ...] ...

Builds the grid of (dataset, domain, method, seed) jobs, prints the plan, runs what is not done yet
through a launcher, and prints a summary. Bad input exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from attacks import ATTACKS, resources_of
from benchmark.config import PROFILES, Profile, parse_hparam_overrides
from benchmark.data import DATASETS
from benchmark.explain import EXPLAINERS
from benchmark.grid import PROBE_STEPS, Selection, build_jobs, estimate_seconds, make_plan, pretraining_seconds
from benchmark.jobs import load_dataset_for, resolve_device
from benchmark.launchers import LAUNCHERS, LaunchOptions, available_cores, on_terminal
from benchmark.metrics import METRICS
from benchmark.models import MODELS
from benchmark.numerics import job_numerics
from benchmark.plugins import load_plugins
from benchmark.pretrain import pretrained_backbone_state, uses_synthetic_pretraining
from benchmark.registry import UserError, parse_names, report
from benchmark.store import Store, eps_label
from methods import METHODS

#: where results go unless --results-dir says otherwise (the committed records live there)
DEFAULT_RESULTS = "results"

REGISTRIES = {"methods": METHODS, "attacks": ATTACKS, "explainers": EXPLAINERS, "datasets": DATASETS,
              "models": MODELS, "launchers": LAUNCHERS, "profiles": PROFILES}


def parse_eps(text: str) -> tuple[float, ...]:
    """A comma list of budgets in pixel units, each a finite number in [0, 1]."""
    values = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"malformed eps {part!r}: expected comma-separated numbers in [0, 1], "
                            "e.g. 0,0.01,0.02") from None
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise UserError(f"eps {part} is outside [0, 1]: budgets are in pixel units of [0, 1] images")
        values.append(value)
    if not values:
        raise UserError("empty eps list: expected comma-separated numbers in [0, 1], e.g. 0,0.01,0.02")
    return tuple(dict.fromkeys(values))


def parse_seeds(text: str) -> tuple[int, ...]:
    """A comma list of non-negative integer seeds."""
    try:
        seeds = tuple(dict.fromkeys(int(p) for p in text.split(",") if p.strip()))
    except ValueError:
        raise UserError(f"malformed seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"malformed seeds {text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def add_profile_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that pick and adjust a profile (shared with benchmark.sweep)."""
    p.add_argument("--profile", default="quick", help="quick (built-in data, CPU) or paper")
    p.add_argument("--datasets", default=None, help="comma list; default: the profile's datasets")
    p.add_argument("--seeds", default=None, help="comma list of seeds; default: the profile's (0,1,2)")
    p.add_argument("--steps", type=int, default=None, help="override the profile's training steps (smoke tests)")
    p.add_argument("--image-size", type=int, default=None, help="override the profile's input size (folder data)")
    p.add_argument("--model", default=None, help="override the profile's backbone (e.g. Fig. 3's lighter ones)")
    p.add_argument("--no-pretrained", action="store_true",
                   help="train from random weights instead of the profile's pretrained ones (part of the job key)")


def add_launch_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that say where results go and how jobs run (shared with benchmark.sweep)."""
    p.add_argument("--dry-run", action="store_true", help="print the plan and the estimate, run nothing")
    p.add_argument("--results-dir", default=DEFAULT_RESULTS, help="root of the results store")
    p.add_argument("--data-root", default=None, help="folder holding VLCS/ and terra_incognita/ (DomainBed)")
    p.add_argument("--launcher", default="processes",
                   help="how jobs run: " + ", ".join(LAUNCHERS) + " (default processes; local: in this process)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel workers (processes, local Ray; default: the cores this process may use) / CPUs per "
                        "Slurm job")
    p.add_argument("--oversubscribe", action="store_true", help="allow more local workers than cores")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (launcher ray); default: start one")
    p.add_argument("--slurm-partition", default=None, help="Slurm partition (launcher slurm)")
    p.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per Slurm job (launcher slurm)")
    p.add_argument("--slurm-time", type=int, default=240, help="minutes per Slurm job (launcher slurm)")
    p.add_argument("--slurm-local", action="store_true", help="run the slurm launcher on submitit's local executor")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: cuda if available")
    p.add_argument("--plugins", default="", help="comma list of plugin files registering methods, attacks, ...")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--list", action="store_true", help="print every registry and exit")
    add_profile_arguments(p)
    p.add_argument("--domains", default="all", help="all, or comma list of domain names or indices 0-3")
    p.add_argument("--methods", default="erm", help="comma list of methods, or all")
    p.add_argument("--attacks", default="pgd", help="comma list of attacks, all, or none")
    p.add_argument("--eps", default=None, help="comma list of L-inf budgets in pixel units; default: profile's")
    p.add_argument("--hparams", default="", help="hyperparameter overrides METHOD.KEY=VALUE,... (see config.py)")
    p.add_argument("--untuned", action="store_true",
                   help="use the methods' declared defaults, not the profile's sweep selection (benchmark/tuned/)")
    add_launch_arguments(p)
    return p


def run_plugins(args: argparse.Namespace) -> tuple[str, ...]:
    """Load --plugins here; the plugin files every worker loads again (entry points are found there anyway)."""
    return tuple(origin.source for origin in load_plugins(args.plugins) if Path(origin.source).is_file())


def check_data(datasets: tuple[str, ...], args: argparse.Namespace, profile: Profile) -> None:
    """Load every dataset once, so that bad data folders fail here, before anything runs."""
    for dataset in datasets:
        load_dataset_for(dataset, args.data_root, profile)


def pretrain_once(profile: Profile, device: str) -> None:
    """The profile's synthetic pretraining, here and once (cached), so that the workers load it (a progress bar on
    a terminal only: in a log its redraws would be thousands of carriage returns)."""
    if uses_synthetic_pretraining(profile):
        with job_numerics(resolve_device(device)):
            pretrained_backbone_state(profile.model, progress=on_terminal())


def planned_time(seconds: float, pending: int, workers: int, launcher: str, *, first: float = 0.0) -> str:
    """The plan's time estimate: on one worker, and spread over the workers the launcher will use; `first`:
    seconds of work done here before any job starts (a pretraining not cached yet), counted in both."""
    used = max(1, min(workers, pending))
    text = f"estimated {(first + seconds) / 60:.1f} min on one worker"
    before = f" (including {first / 60:.1f} min of pretraining first: not cached)" if first else ""
    if launcher == "local":
        return text + " (launcher local: one job at a time in this process)" + before
    return (text + f", about {(first + seconds / used) / 60:.1f} min on {workers} worker{'s' * (workers > 1)} "
            f"({launcher})" + before)


def print_registries() -> None:
    """Every registry's names; attacks with their cost relative to PGD-10 (standard, and per profile where a
    profile runs them with other parameters); then the metrics as declared (benchmark/metrics.py)."""
    for title, registry in REGISTRIES.items():
        if registry is ATTACKS:
            print(f"{title}: " + ", ".join(f"{name} ({attack_cost_text(name)})" for name in registry.names()))
        else:
            print(f"{title}: {', '.join(registry.names())}")
    declared = [METRICS.get(name) for name in METRICS]
    print("metrics: " + ", ".join(f"{m.name} ({m.description()}{'; ' + attack_cost_text(m.attack) if m.attack else ''})"
                                  for m in declared))


def attack_cost_text(name: str) -> str:
    """`cost 140x PGD-10; quick profile: 5x (n_iter 10, ...)`: an attack's declared and per-profile costs."""
    text = f"cost {ATTACKS.get(name).cost:g}x PGD-10"
    for profile in PROFILES.names():
        setting = PROFILES.get(profile).attack_settings.get(name)
        if setting is not None:
            params = ", ".join(f"{k} {v}" for k, v in setting.params.items())
            text += f"; {profile} profile: {setting.cost:g}x ({params})"
    return text


def profile_from_args(args: argparse.Namespace) -> Profile:
    """The chosen profile with the user's adjustments (steps, model, pretraining, image size), validated."""
    profile = PROFILES.get(args.profile)
    if args.steps is not None:
        if args.steps < 1:
            raise UserError(f"--steps must be >= 1, got {args.steps}")
        profile = replace(profile, steps=args.steps, eval_every=min(profile.eval_every, args.steps))
    if args.model is not None:
        MODELS.get(args.model)
        profile = replace(profile, model=args.model)
    if args.no_pretrained:
        profile = replace(profile, pretrained=False)
    if args.image_size is not None:
        if args.image_size < 8:
            raise UserError(f"--image-size must be >= 8, got {args.image_size}")
        profile = replace(profile, image_size=args.image_size)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available; valid choices: auto, cpu")
    return profile


def resolve_workers(args: argparse.Namespace) -> int:
    """The number of workers: --workers, checked, or the cores this process may use (UserError when < 1, or more
    than the cores for a launcher on this machine without --oversubscribe)."""
    cores = available_cores()
    if args.workers is None:
        return cores if args.launcher in ("processes", "ray") else 1
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers} (this machine lets this process use {cores} "
                        "cores; omit --workers to use them all)")
    on_this_machine = args.launcher == "processes" or (args.launcher == "ray" and not args.ray_address)
    if on_this_machine and args.workers > cores and not args.oversubscribe:
        raise UserError(f"--workers {args.workers} is more than the {cores} cores this process may use; valid: 1 to "
                        f"{cores}, or add --oversubscribe")
    return args.workers


def launch_options(args: argparse.Namespace, plugins: tuple[str, ...], *, results_dir: str | None = None,
                   stop_on_divergence: bool = False) -> LaunchOptions:
    """The launcher's options from the shared launch flags."""
    return LaunchOptions(results_dir or args.results_dir, args.data_root, args.device, resolve_workers(args),
                         ray_address=args.ray_address, slurm_partition=args.slurm_partition,
                         slurm_gpus=args.slurm_gpus, slurm_time_min=args.slurm_time, slurm_local=args.slurm_local,
                         plugins=plugins, stop_on_divergence=stop_on_divergence)


def selection_from_args(args: argparse.Namespace) -> Selection:
    """Validate every name and number the user gave; UserError names the valid choices."""
    profile = profile_from_args(args)
    datasets = tuple(parse_names(args.datasets, DATASETS)) if args.datasets else profile.datasets
    methods = tuple(parse_names(args.methods, METHODS))
    hparams = parse_hparam_overrides(args.hparams)
    for method in hparams:
        if method not in methods:
            raise UserError(f"--hparams names method {method!r}, which is not selected; selected: {', '.join(methods)}")
    return Selection(
        profile=profile,
        datasets=datasets,
        domains=args.domains,
        methods=methods,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else profile.seeds,
        attacks=tuple(parse_names(args.attacks, ATTACKS, allow_none=True)),
        eps=parse_eps(args.eps) if args.eps is not None else profile.eps_grid,
        hparams=hparams,
        tuned=not args.untuned,
    )


def print_summary(jobs: list, results_dir: str) -> None:
    """One line per job: the metrics declared for the summary (cAcc, Comp, Suff), mean OOD accuracy and the attack
    accuracies at each eps."""
    shown = [METRICS.get(name) for name in METRICS if METRICS.get(name).summary]
    for job in jobs:
        record = Store(results_dir, job.train.profile.name).read("eval", job.key)
        m = record["metrics"]
        values = [(metric, metric.value(m, eps_label(job.train.profile.table_eps))) for metric in shown]
        declared = "  ".join(f"{metric.display} {value:.{1 if metric.high - metric.low > 10 else 3}f}"
                             for metric, value in values if value is not None)
        ood = sum(m["ood_cAcc"].values()) / max(len(m["ood_cAcc"]), 1)
        attacks = " ".join(f"{a}@{e}={v:.1f}" for a, by_eps in m["aAcc"].items() for e, v in by_eps.items())
        print(f"{record['method']:>14} {record['dataset']}/{record['train_domain']} seed {record['seed']}: "
              f"{declared}  OOD {ood:.1f}  {attacks}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        plugins = run_plugins(args)
        if args.list:
            print_registries()
            return 0
        selection = selection_from_args(args)
        launcher = LAUNCHERS.get(args.launcher)
        workers = resolve_workers(args)
        jobs = build_jobs(selection)
        check_data(selection.datasets, args, selection.profile)
        plan = make_plan(jobs, args.results_dir)
        seconds, probed = estimate_seconds(plan, args.results_dir, data_root=args.data_root, device=args.device)
        first = pretraining_seconds([selection.profile]) if plan.pending else 0.0
        print(f"plan: {len(jobs)} jobs ({selection.profile.name} profile): {len(plan.done)} done, "
              f"{len(plan.to_train)} to train and evaluate, {len(plan.to_evaluate)} to evaluate; "
              + planned_time(seconds, len(plan.pending), workers, args.launcher, first=first)
              + (f" ({', '.join(probed)} timed by a {PROBE_STEPS}-step probe: no finished job of theirs yet)"
                 if probed else ""))
        if plan.done and Path(args.results_dir) == Path(DEFAULT_RESULTS):
            print(f"{len(plan.done)} of {len(jobs)} jobs are already in {DEFAULT_RESULTS}/{selection.profile.name}/ "
                  "(the committed records, unless you ran them here); to recompute them, pass --results-dir DIR")
        if args.dry_run:
            return 0
        if plan.pending:
            pretrain_once(selection.profile, args.device)
        if plan.pending and any(e > 0 for e in selection.eps):  # build resources once here, workers load them
            for resource in resources_of(selection.attacks):
                for dataset in dict.fromkeys(job.train.dataset for job in plan.pending):
                    with job_numerics(resolve_device(args.device)):
                        resource.provide(load_dataset_for(dataset, args.data_root, selection.profile),
                                         device=resolve_device(args.device), progress=on_terminal())
        if plan.pending:
            launcher(plan.pending, launch_options(args, plugins))
        else:
            print("all jobs are done; nothing to run")
    except UserError as err:
        return report(err)
    print_summary(jobs, args.results_dir)
    return 0


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message}\n"


if __name__ == "__main__":
    warnings.formatwarning = _one_line_warning
    raise SystemExit(main())
