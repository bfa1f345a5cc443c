"""Test-wide settings: one torch thread (the suite runs on 2-core machines, often beside other work)
and a private cache for generated benchmarks, inherited by CLI subprocesses."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("EGAT_BENCH_CACHE", tempfile.mkdtemp(prefix="egat-bench-cache-"))
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
