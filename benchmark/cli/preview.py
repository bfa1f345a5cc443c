"""The preview command: python -m benchmark.cli.preview --dataset shapes --out results/samples_shapes.png
[--per-domain 8] [--data-root DIR]: renders a PNG grid of test samples per domain (benchmark/samples.py)
and prints its path."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmark.registry import UserError, report
from benchmark.samples import render_samples


def main(argv: list[str] | None = None) -> int:
    """Render the samples PNG of `--dataset`; 0 when written, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.cli.preview",
                                     description="Render a PNG grid of samples per domain (image row + mask row).")
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-domain", type=int, default=8)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        print(render_samples(args.dataset, args.out, per_domain=args.per_domain, data_root=args.data_root))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
