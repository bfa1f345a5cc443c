"""How many points a chained attack still attacks: the share of clean-correct test points robust at every eps <= e.

Usage: python perf/chain_survival.py --results-dir DIR [--methods erm,at] [--datasets shapes,digits] [--domain 0]
       [--seed 0] [--images 1000]
The models are the trained jobs of `python -m benchmark.run --methods ... --domains 0 --seeds 0 --results-dir DIR`
(the quick profile). On each model's first `--images` test images it runs PGD-10 at every eps > 0 of the profile's
grid, each an independent run as the evaluation runs it (benchmark/evaluate.py's adversarial_robustness: eval
batches, one generator seeded by the job's seed), and prints per model and eps the share of the clean-correct points
that no run at an eps <= e broke: the points a chained attack (attacks/base.py) still attacks at the eps after e.
Then the mean share over the models that do not train on PGD and over those that do, the two rows the estimate
declares (benchmark/config.py CHAIN_SURVIVAL). PGD-10 stands in for the chained attacks because it is cheap; they are
at least as strong, so the shares are an upper bound on their survivors. One thread, as the jobs run.
"""

from __future__ import annotations

import argparse
from statistics import mean

import torch

from benchmark.attack_runs import adversarial_robustness, first_images, robust_under
from benchmark.config import PROFILES
from benchmark.data import iterate
from benchmark.grid import build_jobs
from benchmark.jobs import EvalJob, benchmark_for, trained_model
from benchmark.selection import Selection
from benchmark.store import Store
from methods import METHODS


def survival(job: EvalJob, results_dir: str, images: int, grid: list[float]) -> dict[float, float]:
    """Per eps of `grid`: the share of the model's clean-correct points robust under PGD-10 at every eps <= it."""
    profile = job.train.profile
    model = trained_model(job.train, Store(results_dir, profile.name), None).eval()
    domain = benchmark_for(job.train, None).domain(job.train.domain)
    batches = first_images(list(iterate(domain.test, profile.eval_batch_size)), images)
    robust = robust_under(model, batches, lambda x, y: x)
    correct = robust.sum().item()
    shares = {}
    for eps in grid:
        robust &= adversarial_robustness(model, batches, "pgd", eps, steps=profile.attack_steps, seed=job.train.seed)
        shares[eps] = robust.sum().item() / correct
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--methods", default="erm,at")
    parser.add_argument("--datasets", default="shapes,digits")
    parser.add_argument("--domain", default="0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    profile = PROFILES.get("quick")
    grid = [e for e in profile.eps_grid if e > 0]
    selection = Selection(profile=profile, datasets=tuple(args.datasets.split(",")), domains=args.domain,
                          methods=tuple(args.methods.split(",")), seeds=(args.seed,), attacks=(), eps=(0.0,))
    rows: dict[bool, list[dict[float, float]]] = {False: [], True: []}
    print("| model | " + " | ".join(f"{e:g}" for e in grid) + " |\n|" + "---|" * (len(grid) + 1))
    for job in build_jobs(selection):
        shares = survival(job, args.results_dir, args.images, grid)
        rows[METHODS.get(job.train.method).trains_on_pgd].append(shares)
        print(f"| {job.train.method} {job.train.dataset}/{job.train.domain} | "
              + " | ".join(f"{shares[e]:.3f}" for e in grid) + " |", flush=True)
    for trains_on_pgd, found in rows.items():
        if found:
            print(f"mean over the {len(found)} models {'that train' if trains_on_pgd else 'that do not train'} on PGD: "
                  + "{" + ", ".join(f"{e:g}: {mean(s[e] for s in found):.3f}" for e in grid) + "}")


if __name__ == "__main__":
    main()
