"""The command-line flags the entry points share: picking and adjusting a profile, and where and how jobs run.

The commands `run`, `sweep` and `reproduce` (benchmark/cli/) build their parsers from these helpers and
turn the parsed flags into a profile and a `Launch` (benchmark/execute.py) here, so that every entry
point reads and checks a flag the same way.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from benchmark.config import PROFILES, SETTINGS, Profile
from benchmark.execute import DEFAULT_RESULTS, Launch
from benchmark.launchers import LAUNCHERS, LaunchOptions, available_cores
from benchmark.models import MODELS
from benchmark.plugins import load_plugins
from benchmark.registry import UserError


def add_profile_arguments(p: argparse.ArgumentParser, *, selection: bool = True) -> None:
    """The flags that pick and adjust a profile; `selection` False leaves out --datasets and --model (an
    artefact's grids set them: the reproduce command)."""
    p.add_argument("--profile", default="quick", help="quick (built-in data, CPU) or paper")
    if selection:
        p.add_argument("--datasets", default=None, help="comma list; default: the profile's datasets")
    p.add_argument("--seeds", default=None, help="comma list of seeds; default: the profile's (0,1,2)")
    p.add_argument("--steps", type=int, default=None, help="override the profile's training steps (smoke tests)")
    p.add_argument("--image-size", type=int, default=None, help="override the profile's input size (folder data)")
    if selection:
        p.add_argument("--model", default=None, help="override the profile's backbone (e.g. Fig. 3's lighter ones)")
        p.add_argument("--setting", default=None,
                       help="a verdict-study setting of the profile (Table VI): " + ", ".join(SETTINGS))
    else:
        p.set_defaults(model=None, setting=None)
    p.add_argument("--no-pretrained", action="store_true",
                   help="train from random weights instead of the profile's pretrained ones (part of the job key)")


def add_hyperparameter_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that set the methods' hyperparameters of a grid."""
    p.add_argument("--hparams", default="", help="hyperparameter overrides METHOD.KEY=VALUE,... (see config.py)")
    p.add_argument("--untuned", action="store_true",
                   help="use the methods' declared defaults, not the profile's sweep selection (benchmark/tuned/)")


def add_launch_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that say where results go and how jobs run."""
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


def run_plugins(args: argparse.Namespace) -> tuple[str, ...]:
    """Load --plugins here; the plugin files every worker loads again (entry points are found there anyway)."""
    return tuple(origin.source for origin in load_plugins(args.plugins) if Path(origin.source).is_file())


def profile_from_args(args: argparse.Namespace) -> Profile:
    """The chosen profile with the user's adjustments (steps, model, pretraining, image size), validated, under the
    study setting --setting names (applied last)."""
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
    if args.setting is not None:
        profile = SETTINGS.get(args.setting).apply(profile)
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


def launch_from_args(args: argparse.Namespace, plugins: tuple[str, ...], *, results_dir: str | None = None,
                     stop_on_divergence: bool = False) -> Launch:
    """The launcher (checked) and its options from the launch flags; `results_dir` replaces --results-dir (the
    sweep's store)."""
    LAUNCHERS.get(args.launcher)
    options = LaunchOptions(results_dir or args.results_dir, args.data_root, args.device, resolve_workers(args),
                            ray_address=args.ray_address, slurm_partition=args.slurm_partition,
                            slurm_gpus=args.slurm_gpus, slurm_time_min=args.slurm_time, slurm_local=args.slurm_local,
                            plugins=plugins, stop_on_divergence=stop_on_divergence)
    return Launch(args.launcher, options, dry_run=args.dry_run)


def one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Warnings as one `warning: ...` line on stderr (the entry points' formatter)."""
    return f"warning: {message}\n"


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """While a command runs (also as a decorator of its `main`): warnings formatted by `one_line_warning`; the
    previous formatter afterwards, so that calling `main` in a process changes nothing there."""
    previous, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous
