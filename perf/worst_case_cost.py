"""What `aa` (AutoAttack's worst case) costs per image relative to PGD-10, reduced and standard, on the same images.

Usage: python perf/worst_case_cost.py [--images 256] [--eps 0.02] [--steps 400] [--reduced 10,1,75 [10,3,100 ...]]
       [--reps 3] [--standard-reps 1] [--bound-eps 1e-4] [--threads 1] [--device cpu]
Two models, each trained here from seed 0 on the cue-free twins of the first domain of `shapes` as the test
suite's ERM cnn is (tests/conftest.py): (a) ERM, which PGD breaks, so aa's later members run on few points,
and (b) AT (the quick profile's hyperparameters), which stays robust, so Square runs on most points: the worst
case that a reduced setting must be sized on. Timing is on the first `--images` cue-free test twins (the
distribution both were trained on, so most points are clean-correct and each member has work); repetitions
alternate between the attacks so machine load affects all alike; medians are reported, with the accuracies
(%) and aa's cumulative robust accuracy after each member. Last, the bound: the AT cnn on its own predictions
at eps `--bound-eps` (1e-4), where no member breaks a point, so each runs in full on every image (reduced only).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch.utils.data import Subset

from attacks.autoattack import MEMBERS, worst_case_stages
from attacks.pgd import pgd
from benchmark.config import PROFILES
from benchmark.data import ArrayDataset, iterate, load_benchmark, split_indices
from benchmark.data.synthetic import domain_arrays
from benchmark.models import Classifier, build_model
from benchmark.timing import interleaved_medians, timed
from benchmark.train import seed_everything, train
from methods import METHODS, method_hparams

#: AutoAttack's standard version (attacks/autoattack.py's defaults)
STANDARD = {"n_iter": 100, "n_targets": 9, "n_queries": 5000}


def train_cnn(method: str, steps: int, device: torch.device) -> Classifier:
    """A cnn trained with `method` as conftest trains the suite's ERM cnn (cue-free twins, seed 0, best val)."""
    bench = load_benchmark("shapes")
    arrays = {k: torch.from_numpy(v) for k, v in domain_arrays("shapes", 0).items()}
    twins = ArrayDataset(arrays["cue_free"], arrays["labels"].long(), 0, arrays["masks"], arrays["envs"].long())
    train_idx, val_idx, _ = split_indices(len(twins))
    seed_everything(0)
    model = build_model("cnn", bench.num_classes).to(device)
    hparams = method_hparams(method, PROFILES.get("quick"))
    result = train(METHODS.get(method)(model, hparams), Subset(twins, train_idx.tolist()),
                   Subset(twins, val_idx.tolist()), steps=steps, batch_size=32, lr=2e-3, eval_every=50, seed=0,
                   device=device, progress=False)
    model.load_state_dict(result.best_state)
    return model.eval()


def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * (model(x).argmax(1) == y).float().mean().item()


def report(name: str, model: Classifier, x: torch.Tensor, y: torch.Tensor, eps: float, args: argparse.Namespace,
           reduced: list[dict[str, int]], *, standard: bool = True) -> None:
    """Accuracies and per-image cost ratios of aa (each reduced setting, standard) against PGD-10 on one model.
    Every call starts from a generator seeded with 0, so each run's last output stands for all of its calls."""
    device = x.device
    outputs: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def aa_run(label: str, params: dict[str, int]) -> Callable[[], float]:
        def attack() -> None:
            outputs[label] = worst_case_stages(model, x, y, eps, generator=torch.Generator(device).manual_seed(0),
                                               **params)
        return lambda: timed(attack, device)

    def pgd_run() -> None:
        outputs["PGD-10"] = pgd(model, x, y, eps, generator=torch.Generator(device).manual_seed(0), steps=10), {}

    settings = {f"aa {p['n_iter']},{p['n_targets']},{p['n_queries']}": p for p in reduced}
    runs = {"PGD-10": lambda: timed(pgd_run, device), **{label: aa_run(label, p) for label, p in settings.items()}}
    medians = interleaved_medians(runs, args.reps)
    if standard and args.standard_reps > 0:
        settings["aa (standard)"] = STANDARD
        medians.update(interleaved_medians({"aa (standard)": aa_run("aa (standard)", STANDARD)}, args.standard_reps,
                                           warmup=0))
    print(f"{name}: clean {accuracy(model, x, y):.1f}%  PGD-10 {accuracy(model, outputs['PGD-10'][0], y):.1f}%")
    for label in settings:
        x_aa, stages = outputs[label]
        after = "  ".join(f"{m} {100.0 * stages[m].float().mean().item():.1f}%" for m in MEMBERS)
        print(f"  {label} {accuracy(model, x_aa, y):.1f}%; robust after {after}")
    for run, median in medians.items():
        print(f"  {run:16s} {median * 1e3:10.1f} ms  {median / len(y) * 1e3:7.2f} ms/image")
    for run in settings:
        print(f"  {run} / PGD-10 = {medians[run] / medians['PGD-10']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--eps", type=float, default=0.02)
    parser.add_argument("--steps", type=int, default=400, help="training steps of each model")
    quick = PROFILES.get("quick").attack_params("aa")
    default = ",".join(str(quick[k]) for k in ("n_iter", "n_targets", "n_queries"))
    parser.add_argument("--reduced", nargs="+", default=[default],
                        help="n_iter,n_targets,n_queries of each reduced aa to time (default: the quick profile's)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of PGD-10 and the reduced aa's")
    parser.add_argument("--standard-reps", type=int, default=1, help="repetitions of the standard aa (0: skip)")
    parser.add_argument("--bound-eps", type=float, default=1e-4, help="eps of the no-point-breaks bound")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reduced = [dict(zip(("n_iter", "n_targets", "n_queries"), map(int, r.split(",")), strict=True))
               for r in args.reduced]
    batch = next(iterate(load_benchmark("shapes").domains[0].cue_free, args.images))
    x, y = batch["x"].to(device), batch["y"].to(device)
    print(f"images={len(y)} eps={args.eps} reduced={reduced} standard={STANDARD} threads={args.threads} "
          f"device={device} reps={args.reps} standard_reps={args.standard_reps}")
    for method in ("erm", "at"):
        model = train_cnn(method, args.steps, device)
        report(f"{method} cnn ({args.steps} steps)", model, x, y, args.eps, args, reduced)
    with torch.no_grad():
        own = model(x).argmax(1)
    report(f"bound: at cnn on its predictions, eps {args.bound_eps:g}", model, x, own, args.bound_eps, args, reduced,
           standard=False)


if __name__ == "__main__":
    main()
