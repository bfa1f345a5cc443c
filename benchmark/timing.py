"""Shared by the speed scripts (perf/): their common flags, and timing by interleaved repetitions.

Candidates run in turn within each repetition so that machine load affects all of them alike;
the first `warmup` rounds are dropped and medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def speed_parser(description: str, *, classes: int, reps: int) -> argparse.ArgumentParser:
    """The flags every speed script takes: model, batch, image size, classes, repetitions, device, threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="image side (default: 32 for cnn, else 224)")
    parser.add_argument("--classes", type=int, default=classes)
    parser.add_argument("--reps", type=int, default=reps)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def prepare(args: argparse.Namespace) -> tuple[torch.device, int]:
    """Apply the thread count and seed; return the device and the image side."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return torch.device(args.device), args.size or (32 if args.model.startswith("cnn") else 224)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds to run `fn` once (waiting for the GPU when there is one)."""
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved_medians(runs: dict[str, Callable[[], float]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each run (each call returns its own seconds) over `reps` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(reps + warmup):
        for name, run in runs.items():
            elapsed = run()
            if rep >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def print_medians(medians: dict[str, float], width: int = 24) -> None:
    for name, median in medians.items():
        print(f"  {name:{width}s} {median * 1e3:9.2f} ms")


def report_ours_against_reference(candidates: dict[str, Callable[[], object]], device: torch.device, reps: int,
                                  header: str, reference: str) -> None:
    """Time two candidates, ours first and the reference second, in interleaved rounds; print `header`, the
    medians and the ratio ours / reference."""
    medians = interleaved_medians({name: lambda fn=fn: timed(fn, device) for name, fn in candidates.items()}, reps)
    print(header)
    print_medians(medians, 22)
    ours, theirs = medians.values()
    print(f"  ratio ours / {reference:14s}{ours / theirs:7.3f}")
