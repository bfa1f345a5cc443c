"""The diffusion command: python -m benchmark.cli.diffusion train|examples --dataset shapes [flags].

`train` trains (or finds) the SCA attack's cached DDPM and prints its path and the time it took (with
--samples, also saves and prints a PNG of fresh samples); `examples` renders the README's SCA figure
(benchmark/ddpm_pictures.py) and prints its path.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from attacks.sca.cache import ddpm_path, load_or_train_ddpm
from benchmark.data import load_benchmark
from benchmark.ddpm_pictures import render_examples, save_samples
from benchmark.registry import UserError, report


def main(argv: list[str] | None = None) -> int:
    """Train the DDPM or render the examples figure; 0 when done, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.cli.diffusion",
                                     description="Train the SCA attack's DDPM, or render the README's SCA figure.")
    parser.add_argument("command", choices=("train", "examples"))
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=Path, default=None, help="train: also save 16 fresh samples as a PNG")
    parser.add_argument("--out", type=Path, default=Path("results/sca_examples.png"), help="examples: the PNG")
    parser.add_argument("--eps", type=float, default=0.04, help="examples: the attack budget")
    parser.add_argument("--images", type=int, default=4, help="examples: number of test images")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.command == "train":
            bench = load_benchmark(args.dataset, data_root=args.data_root)
            start = time.perf_counter()
            diffusion = load_or_train_ddpm(bench, device=args.device)
            print(f"{ddpm_path(bench, diffusion.config)} ready after {time.perf_counter() - start:.0f} s")
            if args.samples is not None:
                print(save_samples(diffusion, bench.image_size, args.samples, device=args.device))
        else:
            print(render_examples(args.dataset, args.out, eps=args.eps, images=args.images, device=args.device,
                                  data_root=args.data_root))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
