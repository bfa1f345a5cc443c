"""Has the quick profile's worst case converged? Quick `aa` against `aa` at AutoAttack's standard budgets, per model.

Usage: python perf/aa_convergence.py --results-dir DIR [--methods erm,at] [--datasets shapes,digits] [--domain 0]
       [--seed 0] [--images 500] [--eps 0.02] [--setting 100,9,500 ...] [--workers 2] [--cache FILE]
The models are the trained jobs of `python -m benchmark.run --methods ... --domains 0 --seeds 0 --results-dir DIR`
(the quick profile, tuned values; default methods: Table I's ten). On each model's first `--images` test images at
`--eps`, it runs PGD-10, `aa` at the standard budgets (APGD-CE 100 iterations, APGD-T 100 iterations with
min(9, classes - 1) targets, Square 5000 queries, 1 restart) and `aa` at each `--setting` (n_iter,n_targets,n_queries;
default: the quick profile's), each exactly as the evaluation runs it (benchmark/evaluate.py's
adversarial_accuracy: eval batches, one generator seeded by the job's seed). It prints, per model, the accuracies,
the robust accuracy after each member (apgd-ce, apgd-t, square: AutoAttack's cumulative count), the seconds of each
run and the gap quick - standard in points. One job per worker process, one thread each; results are cached in
`--cache` (JSON) by model key and setting, so a later call with more methods or settings reruns nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from attacks import ATTACKS
from benchmark.attack_runs import adversarial_accuracy, adversarial_robustness, first_images, percent, robust_under
from benchmark.config import PROFILES
from benchmark.data import iterate
from benchmark.evaluate import convergence_check
from benchmark.grid import build_jobs
from benchmark.jobs import benchmark_for, trained_model
from benchmark.selection import Selection
from benchmark.store import Store
from benchmark.tables import MAIN_METHODS, NOT_IN_PAPER

#: AutoAttack's standard budgets: aa's declared defaults (attacks/autoattack.py)
STANDARD = {k: v for k, v in ATTACKS.get("aa").defaults if k != "early_exit"}


def parse_setting(text: str) -> dict[str, int]:
    """`100,9,500` -> aa's n_iter, n_targets, n_queries (1 restart)."""
    n_iter, n_targets, n_queries = (int(part) for part in text.split(","))
    return {"n_iter": n_iter, "n_targets": n_targets, "n_queries": n_queries, "n_restarts": 1}


def label(setting: dict[str, int]) -> str:
    return f"{setting['n_iter']},{setting['n_targets']},{setting['n_queries']}"


def measure(task: dict[str, Any]) -> dict[str, Any]:
    """One model: clean, PGD-10 and each aa setting not cached yet, on its first `images` test images."""
    torch.set_num_threads(1)
    job, store, eps, images = task["job"], Store(task["results_dir"], "quick"), task["eps"], task["images"]
    model = trained_model(job.train, store, None).eval()
    domain = benchmark_for(job.train, None).domain(job.train.domain)
    batches = first_images(list(iterate(domain.test, job.train.profile.eval_batch_size)), images)
    out: dict[str, Any] = {"key": job.train.key, "images": sum(len(b["y"]) for b in batches)}
    if "clean" not in task["have"]:
        out["clean"] = percent(robust_under(model, batches, lambda x, y: x))
        start = time.perf_counter()
        out["pgd"] = adversarial_accuracy(model, batches, "pgd", eps, steps=10, seed=job.train.seed)
        out["pgd_s"] = time.perf_counter() - start
    for name, setting in task["settings"].items():
        if name in task["have"]:
            continue
        stages: dict[str, float] = {}
        start = time.perf_counter()
        robust = adversarial_robustness(model, batches, "aa", eps, steps=10, seed=job.train.seed, params=setting,
                                        stages=stages)
        out[name] = {"aa": percent(robust), "stages": stages, "seconds": time.perf_counter() - start}
        if name != "standard":
            start = time.perf_counter()
            check = convergence_check(model, first_images(batches, task["probe_images"]), robust, eps,
                                      n_iter=setting["n_iter"], n_targets=setting["n_targets"], seed=job.train.seed)
            out[name]["restart"] = {"images": check["restart_images"], "base": check["aa_restart_base_aAcc"],
                                    "after": check["aa_restart_aAcc"], "seconds": time.perf_counter() - start}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--methods", default=",".join((*MAIN_METHODS, *NOT_IN_PAPER)))
    parser.add_argument("--datasets", default="shapes,digits")
    parser.add_argument("--domain", default="0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--eps", type=float, default=0.02)
    parser.add_argument("--setting", action="append", help="n_iter,n_targets,n_queries (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", default="aa_convergence.json")
    parser.add_argument("--report-only", action="store_true", help="print the cached models' table, measure nothing")
    args = parser.parse_args()
    profile = PROFILES.get("quick")
    quick = {k: v for k, v in profile.attack_params("aa").items() if k in STANDARD}
    settings = {label(s): s for s in (map(parse_setting, args.setting) if args.setting else [{**STANDARD, **quick}])}
    settings["standard"] = STANDARD
    selection = Selection(profile=profile, datasets=tuple(args.datasets.split(",")), domains=args.domain,
                          methods=tuple(args.methods.split(",")), seeds=(args.seed,), attacks=(), eps=(args.eps,))
    cache_path = Path(args.cache)
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}

    def cached(job: Any) -> dict[str, Any]:
        return cache.get(f"{job.train.key}/{args.images}/{args.eps}", {})

    tasks = [{"job": job, "results_dir": args.results_dir, "eps": args.eps, "images": args.images,
              "probe_images": min(profile.probe_images or args.images, args.images // 2), "settings": settings,
              "have": {name for name, run in cached(job).items()
                       if name in ("standard", "clean", "pgd", "pgd_s", "images") or "restart" in run}}
             for job in build_jobs(selection)]
    todo = [t for t in tasks if not set(settings) | {"clean"} <= t["have"]]
    if args.report_only:
        missing = [f"{t['job'].train.method} {t['job'].train.dataset}" for t in todo]
        print(f"not measured yet: {', '.join(missing) or 'none'}")
        report([t for t in tasks if t not in todo], settings, cache, args)
        return
    print(f"{len(tasks)} models, {len(todo)} to measure on {args.workers} workers; settings: {', '.join(settings)}",
          flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for task, result in zip(todo, pool.map(measure, todo), strict=True):
            entry = cache.setdefault(f"{task['job'].train.key}/{args.images}/{args.eps}", {})
            entry.update({k: v for k, v in result.items() if k not in ("key", "images")})
            entry["images"] = result["images"]
            cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
            job = task["job"].train
            print(f"measured {job.method} {job.dataset}/{job.domain}", flush=True)
    report(tasks, settings, cache, args)


def cell(run: dict[str, Any]) -> str:
    """One aa run: accuracy (robust after apgd-ce / apgd-t / square), seconds."""
    stages = " / ".join(f"{run['stages'][m]:.1f}" for m in ("apgd-ce", "apgd-t", "square"))
    return f"{run['aa']:.1f} ({stages}), {run['seconds']:.0f}"


def restart_cell(run: dict[str, Any]) -> str:
    """The convergence check of one aa run: its images, aa's robust accuracy there and after the second restart,
    and its seconds as a share of aa's."""
    check = run["restart"]
    return (f"{check['images']}, {check['base']:.1f} -> {check['after']:.1f}, "
            f"{check['seconds'] / run['seconds']:.2f}")


def report(tasks: list[dict[str, Any]], settings: dict[str, dict[str, int]], cache: dict[str, Any],
           args: argparse.Namespace) -> None:
    """The markdown table: per model, clean, PGD-10, each setting's aa with its stages and seconds, and the gap."""
    names = [n for n in settings if n != "standard"]
    head = ["model", "n", "clean", "PGD-10", "standard aa (ce / t / square), s",
            *[f"aa {n} (ce / t / square), s" for n in names], *[f"gap {n}" for n in names],
            *[f"restart check {n}: n, aa -> after, cost / aa" for n in names]]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    worst: dict[str, float] = {}
    for task in tasks:
        job, entry = task["job"].train, cache[f"{task['job'].train.key}/{args.images}/{args.eps}"]

        gaps = []
        for n in names:
            gap = entry[n]["aa"] - entry["standard"]["aa"]
            worst[n] = max(worst.get(n, 0.0), abs(gap))
            gaps.append(f"{gap:+.1f}")
        print(f"| {job.method} {job.dataset}/{job.domain} | {entry['images']} | {entry['clean']:.1f} | "
              f"{entry['pgd']:.1f} | {cell(entry['standard'])} | " + " | ".join(cell(entry[n]) for n in names) + " | "
              + " | ".join(gaps) + " | " + " | ".join(restart_cell(entry[n]) for n in names) + " |")
    for n, gap in worst.items():
        print(f"largest |aa {n} - standard aa| over {len(tasks)} models: {gap:.1f} points (n = {args.images} images "
              f"each, eps {args.eps}, seed {args.seed})")


if __name__ == "__main__":
    main()
