"""Datasets: the registry and containers (benchmark/data/base.py) and the built-in datasets.

A benchmark is a list of named domains; each domain is split 60/20/20 into train/val/test with a
fixed seed (paper Sec. V-A) and also kept whole (`full`) for out-of-domain evaluation (Table II).
Items and batches are dicts: `x` (3,H,W float in [0,1]), `y`, `domain`, and `mask` (1,H,W object
mask, the "golden" guide) when the dataset has masks.
"""

from benchmark.data.base import (
    DATASETS,
    SPLIT_FRACTIONS,
    SPLIT_SEED,
    ArrayDataset,
    Benchmark,
    DatasetSpec,
    Domain,
    cache_dir,
    endless,
    iterate,
    load_benchmark,
    make_domain,
    num_workers,
    resolve_domains,
    split_indices,
)

__all__ = ["DATASETS", "SPLIT_FRACTIONS", "SPLIT_SEED", "ArrayDataset", "Benchmark", "DatasetSpec", "Domain",
           "cache_dir", "endless", "iterate", "load_benchmark", "make_domain", "num_workers", "resolve_domains",
           "split_indices"]

# The built-in datasets register themselves on import (built-in ones first: the order of --list).
from benchmark.data import synthetic, folders  # noqa: E402,F401,I001
