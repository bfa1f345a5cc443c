"""What decides a job's numeric path, fixed in one place that every launcher goes through.

Float reductions depend on the number of intra-op threads (a matmul split over 2 threads adds in
another order than over 1), so a job run in this process with torch's default threads and the same
job in a one-thread worker gave different metrics. Every job, and every resource a job needs (SCA's
DDPM), now runs inside `job_numerics`: JOB_THREADS intra-op threads, deterministic algorithms
(warn-only: an op without a deterministic kernel still runs), no cuDNN autotuning. Its random streams
come from the job's seed alone (benchmark/train.py seeds Python, NumPy and torch before the model is
built; the methods and the attacks draw from generators seeded from it). What was fixed is written
into every record as `numerics`, so a record says how it was computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: intra-op threads of every job, whichever launcher runs it (parallelism comes from workers, not threads)
JOB_THREADS = 1


def provenance(device: torch.device | str) -> dict[str, Any]:
    """The numeric settings a job ran under, as its records state them."""
    return {"threads": JOB_THREADS, "deterministic_algorithms": True, "cudnn_benchmark": False,
            "device_type": torch.device(device).type,
            "rng": "job seed: python, numpy and torch seeded before the model is built; attacks and methods "
                   "draw from generators seeded from it"}


@contextmanager
def job_numerics(device: torch.device | str = "cpu") -> Iterator[dict[str, Any]]:
    """Run the block with the job settings (module docstring), the previous ones restored after; yields the
    provenance to record."""
    if torch.device(device).type == "cuda":  # cuBLAS needs this before its first deterministic call
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only, benchmark = torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark
    torch.set_num_threads(JOB_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield provenance(device)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
