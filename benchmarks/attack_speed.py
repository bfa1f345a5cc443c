"""Our PGD vs torchattacks.PGD (same model, batch, eps, steps, alpha = eps / 4, random start).

Usage: python benchmarks/attack_speed.py --model cnn --batch 32 --reps 20 [--steps 10] [--device cpu]
Repetitions alternate between the two so machine load affects both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchattacks

from attacks.pgd import pgd
from benchmark.models import build_model


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.02)
    parser.add_argument("--size", type=int, default=None, help="image side (default: 32 for cnn, else 224)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    size = args.size or (32 if args.model == "cnn" else 224)
    torch.manual_seed(0)
    model = build_model(args.model, args.classes).to(device).eval()
    x = torch.rand(args.batch, 3, size, size, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    reference = torchattacks.PGD(model, eps=args.eps, alpha=args.eps / 4, steps=args.steps)
    candidates = {
        "ours (attacks.pgd)": lambda: pgd(model, x, y, args.eps, steps=args.steps),
        "torchattacks PGD": lambda: reference(x, y),
    }
    outputs = []
    for fn in candidates.values():
        torch.manual_seed(1)
        outputs.append(fn())
    torch.testing.assert_close(*outputs, rtol=0, atol=1e-6)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.reps + 1):  # the first round is a warm-up
        for name, fn in candidates.items():
            times[name].append(_timed(fn, device))
    medians = {name: statistics.median(values[1:]) for name, values in times.items()}
    print(f"model={args.model} batch={args.batch} size={size} steps={args.steps} device={device}", end=" ")
    print(f"reps={args.reps}")
    for name, median in medians.items():
        print(f"  {name:22s} {median * 1e3:9.2f} ms")
    ours, theirs = medians.values()
    print(f"  ratio ours / torchattacks {ours / theirs:7.3f}")


if __name__ == "__main__":
    main()
