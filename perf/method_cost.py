"""Training-step time of each method relative to ERM, measured side by side in one process.

Usage: python perf/method_cost.py [--methods all|erm,igr,...] [--profile quick] [--model cnn]
       [--batch 32] [--reps 10] [--threads 1] [--device cpu]
One step is what benchmark/train.py times: method.loss, zero_grad, backward, Adam step. Every method
gets the same model architecture, batch and the profile's hyperparameters (quick overrides included);
repetitions alternate between methods so machine load affects all alike; medians are reported.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmark.config import PROFILES
from benchmark.models import build_model
from benchmark.timing import interleaved_medians, prepare, speed_parser, timed
from methods import METHODS, Method, method_hparams


def _step(method: Method, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
          device: torch.device) -> Callable[[], float]:
    """A timed training step of `method` (as the training loop times it); returns seconds."""
    step = 0

    def train_step() -> None:
        nonlocal step
        step += 1
        method.train()
        loss, _ = method.loss(batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return lambda: timed(train_step, device)


def main() -> None:
    parser = speed_parser(__doc__.splitlines()[0], classes=5, reps=10)
    parser.add_argument("--methods", default="all", help="comma-separated names or 'all' (erm is always included)")
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    device, size = prepare(args)
    profile = PROFILES.get(args.profile)
    names = METHODS.names() if args.methods == "all" else [n.strip() for n in args.methods.split(",") if n.strip()]
    names = ["erm", *[n for n in names if n != "erm"]]
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
        runs[name] = _step(method, torch.optim.Adam(method.parameters(), lr=profile.lr), batch, device)
    medians = interleaved_medians(runs, args.reps)
    print(f"profile={profile.name} model={args.model} batch={args.batch} size={size} device={device} "
          f"threads={args.threads} reps={args.reps}")
    print(f"  {'method':16s} {'ms/step':>9s} {'x ERM':>7s}")
    for name, median in medians.items():
        print(f"  {name:16s} {median * 1e3:9.1f} {median / medians['erm']:7.2f}")


if __name__ == "__main__":
    main()
