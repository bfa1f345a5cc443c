"""The pretrain command: python -m benchmark.cli.pretrain [--model cnn|cnn_small] [--image-size 32].

Pretrains (or finds) the cached backbone of a quick-profile cnn (benchmark/pretraining.py) and prints its path
and the time it took.
"""

from __future__ import annotations

import argparse
import time

from benchmark.pretraining import PRETRAINABLE, pretrained_backbone_state, pretrained_path
from benchmark.registry import UserError, report


def main(argv: list[str] | None = None) -> int:
    """Pretrain (or find) the cached backbone of a small cnn; print its path and the time it took."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.cli.pretrain",
                                     description="Pretrain a quick-profile cnn on the synthetic corpus (cached).")
    parser.add_argument("--model", default="cnn", choices=PRETRAINABLE)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        pretrained_backbone_state(args.model, image_size=args.image_size)
    except UserError as err:
        return report(err)
    print(f"{pretrained_path(args.model, image_size=args.image_size)} ready after {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
