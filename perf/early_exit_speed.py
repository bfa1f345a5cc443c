"""What APGD's early exit saves: each white-box member of `aa` with and without it, on trained models.

Usage: python perf/early_exit_speed.py --results-dir DIR [--methods erm,egat,at] [--dataset shapes] [--domain 0]
       [--seed 0] [--images 200] [--eps 0.02] [--reps 3] [--threads 1]
The models are trained jobs of `python -m benchmark.run ... --results-dir DIR` (quick profile, tuned values). On
each model's first `--images` test images at `--eps`, apgd-ce (100 iterations) and apgd-t (100 iterations,
min(9, classes - 1) targets), aa's white-box members at their standard budgets, run with early_exit on and off in
interleaved rounds (machine load affects both alike); it prints the medians, the ratio off / on, and checks that
both give the same robust set. (Square, aa's third member, has always dropped a point once it breaks.) Early exit
is exact: attacks/apgd.py, tests/test_worst_case.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from attacks.apgd import apgd_ce, apgd_t
from benchmark.config import PROFILES
from benchmark.data import iterate
from benchmark.grid import build_jobs
from benchmark.jobs import benchmark_for, trained_model
from benchmark.selection import Selection
from benchmark.store import Store
from benchmark.timing import interleaved_medians, timed

MEMBERS: dict[str, Callable[..., torch.Tensor]] = {"apgd-ce": apgd_ce, "apgd-t": apgd_t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--methods", default="erm,egat,at")
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--domain", default="0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.02)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = PROFILES.get("quick")
    selection = Selection(profile=profile, datasets=(args.dataset,), domains=args.domain,
                          methods=tuple(args.methods.split(",")), seeds=(args.seed,), attacks=(), eps=(args.eps,))
    store = Store(args.results_dir, profile.name)
    print(f"first {args.images} test images, eps {args.eps}, standard budgets, {args.threads} thread(s), "
          f"median of {args.reps} interleaved rounds; seconds with early exit off / on")
    print(f"| model | clean | member | robust after it | off (s) | on (s) | speedup |\n|{'---|' * 7}")
    for job in build_jobs(selection):
        model = trained_model(job.train, store, None).eval()
        batch = next(iterate(benchmark_for(job.train, None).domain(job.train.domain).test, args.images))
        x, y = batch["x"][:args.images], batch["y"][:args.images]
        with torch.no_grad():
            clean = 100.0 * (model(x).argmax(1) == y).float().mean().item()
        for member, attack in MEMBERS.items():
            medians, robust = compare(attack, model, x, y, args.eps, args.reps)
            off, on = medians["off"], medians["on"]
            print(f"| {job.train.method} {job.train.dataset}/{job.train.domain} | {clean:.1f} | {member} | "
                  f"{robust:.1f} | {off:.1f} | {on:.1f} | {off / on:.2f}x |", flush=True)


def compare(attack: Callable[..., torch.Tensor], model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            reps: int) -> tuple[dict[str, float], float]:
    """Median seconds of `attack` with early exit off and on (interleaved), and its robust accuracy (%), checked to be
    the same robust set both ways."""
    robust: dict[bool, torch.Tensor] = {}

    def run(early_exit: bool) -> float:
        def once() -> None:
            out = attack(model, x, y, eps, generator=torch.Generator().manual_seed(0), early_exit=early_exit)
            with torch.no_grad():
                robust[early_exit] = model(out).argmax(1) == y
        return timed(once, x.device)

    medians = interleaved_medians({"off": lambda: run(False), "on": lambda: run(True)}, reps, warmup=0)
    assert torch.equal(robust[True], robust[False]), "early exit changed the robust set"
    return medians, 100.0 * robust[True].float().mean().item()

if __name__ == "__main__":
    main()
