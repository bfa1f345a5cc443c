"""Training-step time of each method relative to ERM, measured side by side in one process.

Usage: python benchmarks/method_cost.py [--methods all|erm,igr,...] [--profile quick] [--model cnn]
       [--batch 32] [--reps 10] [--threads 1] [--device cpu]
One step is what benchmark/train.py times: method.loss, zero_grad, backward, Adam step. Every method
gets the same model architecture, batch and the profile's hyperparameters (quick overrides included);
repetitions alternate between methods so machine load affects all alike; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark.config import PROFILES, method_hparams
from benchmark.models import build_model
from methods import METHODS, Method


def _step(method: Method, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], step: int,
          device: torch.device) -> float:
    """Seconds for one training step of `method` (as the training loop times it)."""
    start = time.perf_counter()
    method.train()
    loss, _ = method.loss(batch, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="comma-separated names or 'all' (erm is always included)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="image side (default: 32 for cnn, else 224)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    profile = PROFILES.get(args.profile)
    names = METHODS.names() if args.methods == "all" else [n.strip() for n in args.methods.split(",") if n.strip()]
    names = ["erm", *[n for n in names if n != "erm"]]
    size = args.size or (32 if args.model == "cnn" else 224)
    torch.manual_seed(0)
    batch = {
        "x": torch.rand(args.batch, 3, size, size, device=device),
        "y": torch.randint(0, args.classes, (args.batch,), device=device),
        "domain": torch.zeros(args.batch, dtype=torch.long, device=device),
        "mask": (torch.rand(args.batch, 1, size, size, device=device) > 0.5).float(),
    }
    runs = {}
    for name in names:
        model = build_model(args.model, args.classes, dropout=profile.dropout).to(device)
        method = METHODS.get(name)(model, method_hparams(name, profile), has_masks=True)
        method.extra.to(device)
        runs[name] = (method, torch.optim.Adam(method.parameters(), lr=profile.lr))
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps + 1):  # the first round is a warm-up
        for name, (method, optimizer) in runs.items():
            times[name].append(_step(method, optimizer, batch, rep + 1, device))
    medians = {name: statistics.median(values[1:]) for name, values in times.items()}
    print(f"profile={profile.name} model={args.model} batch={args.batch} size={size} device={device} "
          f"threads={args.threads} reps={args.reps}")
    print(f"  {'method':16s} {'ms/step':>9s} {'x ERM':>7s}")
    for name, median in medians.items():
        print(f"  {name:16s} {median * 1e3:9.1f} {median / medians['erm']:7.2f}")


if __name__ == "__main__":
    main()
