"""What decides a job's numeric path, fixed in one place that every launcher goes through.

Float reductions depend on the number of intra-op threads (a matmul split over 2 threads adds in
another order than over 1), so a job run in this process with torch's default threads and the same
job in a one-thread worker gave different metrics. Every job, and every resource a job needs (SCA's
DDPM), now runs inside `job_numerics`: JOB_THREADS intra-op threads, deterministic algorithms
(warn-only: an op without a deterministic kernel still runs), no cuDNN autotuning. Its random streams
come from the job's seed alone (benchmark/train.py seeds Python, NumPy and torch before the model is
built; the methods and the attacks draw from generators seeded from it). What was fixed is written
into every record as `numerics`, so a record says how it was computed.

`job_numerics` also keeps freed memory in the process (`keep_freed_memory`): an allocator setting, no
arithmetic, so it changes no number, only how often the kernel page-faults tensors back in.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: intra-op threads of every job, whichever launcher runs it (parallelism comes from workers, not threads)
JOB_THREADS = 1


#: glibc mallopt parameters and the values keep_freed_memory sets
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Let glibc keep freed tensors for reuse instead of returning them to the OS, so the next step or batch does
    not page-fault them in again: no mmap for large blocks (glibc's default maps every block above a threshold
    afresh and unmaps it on free; an eval batch's activations are such blocks) and no trimming of the heap's free
    top below 256 MB. Setting the trim threshold alone also freezes glibc's adaptive mmap threshold at its 128 KB
    start, which made a fresh worker's evaluation 3.4x slower (68 s vs 20 s for a quick ERM job, with 22 M page
    faults), so both are set together. Bit-identical results (an allocator setting, no arithmetic). Process-wide
    and idempotent; False (nothing changed) where libc is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    except (AttributeError, OSError):
        return False


def provenance(device: torch.device | str) -> dict[str, Any]:
    """The numeric settings a job ran under, as its records state them."""
    return {"threads": JOB_THREADS, "deterministic_algorithms": True, "cudnn_benchmark": False,
            "device_type": torch.device(device).type,
            "rng": "job seed: python, numpy and torch seeded before the model is built; attacks and methods "
                   "draw from generators seeded from it"}


@contextmanager
def job_numerics(device: torch.device | str = "cpu") -> Iterator[dict[str, Any]]:
    """Run the block with the job settings (module docstring), the previous ones restored after (except the
    allocator's, which changes no number); yields the provenance to record."""
    if torch.device(device).type == "cuda":  # cuBLAS needs this before its first deterministic call
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only, benchmark = torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark
    keep_freed_memory()  # process-wide, kept after the block: it changes no number
    torch.set_num_threads(JOB_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield provenance(device)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
