"""Our PGD vs torchattacks.PGD (same model, batch, eps, steps, alpha = eps / 4, random start).

Usage: python perf/attack_speed.py --model cnn --batch 32 --reps 20 [--steps 10] [--device cpu]
Repetitions alternate between the two so machine load affects both alike; medians are reported.
"""

from __future__ import annotations

import torch
import torchattacks

from attacks.pgd import pgd
from benchmark.models import build_model
from benchmark.timing import prepare, report_ours_against_reference, speed_parser


def main() -> None:
    parser = speed_parser(__doc__.splitlines()[0], classes=10, reps=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.02)
    args = parser.parse_args()
    device, size = prepare(args)
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
    report_ours_against_reference(
        candidates, device, args.reps,
        f"model={args.model} batch={args.batch} size={size} steps={args.steps} device={device} reps={args.reps}",
        "torchattacks")


if __name__ == "__main__":
    main()
