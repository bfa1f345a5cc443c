"""EGAT's training step against AT, ERM and EGAT's unavoidable floor, side by side in one process.

The floor is what EGAT cannot avoid: one PGD attack on the batch plus one training forward/backward
(plain CE) over the 3B images it needs (x, x_adv, x~), timed both as three batches of B (what EGAT
does, see methods/egat.py) and as one batch of 3B; the floor is the cheaper of the two. EGAT / floor
is what Grad-CAM, its differentiable use and the other loss terms add (target <= 1.05). Every step is
a full training step (zero_grad, loss, backward, Adam step) on its own copy of the same model, in
train mode. Repetitions alternate between the five so machine load affects all alike; medians are
reported.

Usage: python perf/egat_overhead.py [--model cnn] [--batch 32] [--pgd-steps 10] [--reps 30]
       [--threads 1] [--device cpu]
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.config import PROFILES
from benchmark.models import Classifier, build_model
from benchmark.timing import interleaved_medians, prepare, print_medians, speed_parser, timed
from methods import METHODS, method_hparams
from methods.egat import MethodRandomness, TrainingPGD


def _step(model: Classifier, loss_fn: Callable[[], Tensor], device: torch.device) -> Callable[[], float]:
    """A timed training step: zero_grad, loss, backward, Adam step; returns seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()

    return lambda: timed(train_step, device)


def main() -> None:
    parser = speed_parser(__doc__.splitlines()[0], classes=5, reps=30)
    parser.add_argument("--pgd-steps", type=int, default=10)
    args = parser.parse_args()
    device, size = prepare(args)
    base = build_model(args.model, args.classes, dropout=0.1).to(device).train()
    batch = {"x": torch.rand(args.batch, 3, size, size, device=device),
             "y": torch.randint(0, args.classes, (args.batch,), device=device)}
    x, y = batch["x"], batch["y"]
    paper = PROFILES.get("paper")

    def method(name: str):
        hparams = {**method_hparams(name, paper), "pgd_steps": args.pgd_steps} if name != "erm" else {}
        instance = METHODS.get(name)(copy.deepcopy(base), hparams)
        instance.train()
        return instance

    egat, at, erm = method("egat"), method("at"), method("erm")
    floor_pgd = TrainingPGD.from_hparams({**method_hparams("egat", paper), "pgd_steps": args.pgd_steps})
    floor_generator = MethodRandomness().generator(device)
    x_mix = 0.7 * x + 0.3 * x.flip(0)
    split_model, joint_model = copy.deepcopy(base), copy.deepcopy(base)

    def split_floor() -> Tensor:
        x_adv = floor_pgd(split_model, x, y, floor_generator)
        return sum(F.cross_entropy(split_model(part), y) for part in (x, x_adv, x_mix)) / 3

    def joint_floor() -> Tensor:
        x_adv = floor_pgd(joint_model, x, y, floor_generator)
        return F.cross_entropy(joint_model(torch.cat([x, x_adv, x_mix])), y.repeat(3))

    steps = {
        "EGAT": _step(egat.model, lambda: egat.loss(batch, 0)[0], device),
        "AT": _step(at.model, lambda: at.loss(batch, 0)[0], device),
        "ERM": _step(erm.model, lambda: erm.loss(batch, 0)[0], device),
        "floor, 3 batches of B": _step(split_model, split_floor, device),
        "floor, 1 batch of 3B": _step(joint_model, joint_floor, device),
    }
    medians = interleaved_medians(steps, args.reps, warmup=2)
    print(f"model={args.model} batch={args.batch} size={size} PGD-{args.pgd_steps} device={device} "
          f"threads={args.threads} reps={args.reps} (medians)")
    print_medians(medians)
    egat_time = medians["EGAT"]
    floor = min(medians["floor, 3 batches of B"], medians["floor, 1 batch of 3B"])
    print(f"  EGAT / AT                {egat_time / medians['AT']:9.3f}")
    print(f"  EGAT / ERM               {egat_time / medians['ERM']:9.3f}")
    print(f"  EGAT / floor             {egat_time / floor:9.3f}")


if __name__ == "__main__":
    main()
