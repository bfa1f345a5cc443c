"""The cards command: python -m benchmark.cards (an alias of this module) --dataset shapes|digits
[--out results/cards] [--seeds 0,1,2] [--steps N] [--workers N] [--domains all|0,2] [--no-pretrained]

Makes the benchmark card of a built-in dataset (benchmark/dataset_card.py), prints the paths written, and on
stderr whether the validity bands are met and the run time (printed, not written, so the card re-makes
identically).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmark.config import PROFILES
from benchmark.dataset_card import ModelRun, make_card, write_card
from benchmark.registry import UserError, report


def main(argv: list[str] | None = None) -> int:
    """Make and write the card of `--dataset`; 0 when written, 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m benchmark.cards",
                                description="The benchmark card of a built-in benchmark.")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", type=Path, default=Path("results/cards"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=None, help="shorten the reference models' training (tests)")
    p.add_argument("--workers", type=int, default=1, help="worker processes for quick ERM's jobs")
    p.add_argument("--domains", default="all", help="all, or some domains (a partial card, for tests)")
    p.add_argument("--no-pretrained", action="store_true", help="reference models from random weights (tests)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        profile = PROFILES.get("quick")
        if args.steps is not None:
            if args.steps < 1:
                raise UserError(f"--steps must be >= 1, got {args.steps}")
            profile = replace(profile, steps=args.steps, eval_every=min(profile.eval_every, args.steps))
        if args.no_pretrained:
            profile = replace(profile, pretrained=False)
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        card = make_card(args.dataset, args.out, ModelRun(profile, seeds, max(1, args.workers), args.domains))
    except (UserError, ValueError) as err:
        return report(err if isinstance(err, UserError) else UserError(f"malformed --seeds {args.seeds!r}"))
    for path in write_card(card, args.out):
        print(path)
    print(f"card of {args.dataset}: bands {'all met' if card['valid'] else 'NOT all met'}; "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
