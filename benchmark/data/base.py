"""The dataset contract: the registry and the containers every dataset returns.

A benchmark is a list of named domains; each domain is split 60/20/20 into train/val/test with a
fixed seed (paper Sec. V-A) and also kept whole (`full`) for out-of-domain evaluation (Table II).
Items and batches are dicts: `x` (3,H,W float in [0,1]), `y`, `domain`, and `mask` (1,H,W object
mask, the "golden" guide) when the dataset has masks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from benchmark.registry import Registry, UserError

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
SPLIT_SEED = 0


@dataclass(frozen=True)
class Domain:
    """One domain of a benchmark: its train/val/test splits, the whole domain, and (built-in benchmarks) the
    cue-free twins of its test images: the same objects with the spurious cue drawn independently of the class."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    full: Dataset
    cue_free: Dataset | None = None


@dataclass(frozen=True)
class Benchmark:
    """A multi-domain classification benchmark."""

    name: str
    classes: tuple[str, ...]
    domains: tuple[Domain, ...]
    image_size: int
    has_masks: bool
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    def domain(self, name: str) -> Domain:
        """A domain by its name; unknown names raise UserError listing the valid ones."""
        for d in self.domains:
            if d.name == name:
                return d
        raise UserError(f"unknown domain {name!r} of {self.name}; valid choices: {', '.join(self.domain_names())}")


@dataclass(frozen=True)
class DatasetSpec:
    """How to load a registered dataset and what its domains are called."""

    load: Callable[..., Benchmark]
    domain_names: tuple[str, ...]
    builtin: bool
    summary: str
    #: bump when a change to the loader or generator changes the images, labels or splits it yields;
    #: train job keys include it, so results of older data are never reused
    version: int


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def resolve_domains(dataset: str, text: str) -> list[str]:
    """Parse `all`, names, or indices 0-3 into domain names of a registered dataset."""
    names = DATASETS.get(dataset).domain_names
    if text.strip() == "all":
        return list(names)
    resolved = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.isdigit() and int(part) < len(names):
            resolved.append(names[int(part)])
        elif part in names:
            resolved.append(part)
        else:
            raise UserError(
                f"unknown domain {part!r} of {dataset}; valid choices: {', '.join(names)} (or 0-{len(names) - 1}, all)"
            )
    if not resolved:
        raise UserError(f"empty domain list for {dataset}; valid choices: {', '.join(names)}, all")
    return list(dict.fromkeys(resolved))


def load_benchmark(name: str, *, data_root: str | Path | None = None, image_size: int | None = None) -> Benchmark:
    """Load a registered dataset (built-in ones are generated and cached; folder ones need data_root)."""
    spec = DATASETS.get(name)
    return spec.load(data_root=data_root, image_size=image_size)


def split_indices(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic 60/20/20 permutation split of range(n) into train, val, test indices."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(SPLIT_FRACTIONS[0] * n))
    n_val = int(round(SPLIT_FRACTIONS[1] * n))
    return perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]


def make_domain(name: str, dataset: Dataset, seed: int = SPLIT_SEED, *, cue_free: Dataset | None = None) -> Domain:
    """Split a whole-domain dataset 60/20/20 with a fixed seed; `cue_free` (aligned with `dataset`) gives the
    test split's cue-free twins."""
    train, val, test = split_indices(len(dataset), seed)
    twins = None if cue_free is None else Subset(cue_free, test.tolist())
    return Domain(name, Subset(dataset, train.tolist()), Subset(dataset, val.tolist()),
                  Subset(dataset, test.tolist()), dataset, twins)


class ArrayDataset(Dataset):
    """In-memory images (uint8 N,3,H,W), labels, optional masks (bool N,1,H,W) and environment indices (N,) of
    one domain; batches carry `mask` and `env` when they are given."""

    def __init__(self, images: Tensor, labels: Tensor, domain: int, masks: Tensor | None = None,
                 envs: Tensor | None = None):
        self.images, self.labels, self.domain, self.masks, self.envs = images, labels, domain, masks, envs

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.take(torch.tensor([i]), squeeze=True)

    def take(self, idx: Tensor, squeeze: bool = False) -> dict[str, Tensor]:
        """A batch by index tensor, without per-item Python overhead."""
        item = {
            "x": self.images[idx].float() / 255.0,
            "y": self.labels[idx],
            "domain": torch.full((len(idx),), self.domain, dtype=torch.long),
        }
        if self.masks is not None:
            item["mask"] = self.masks[idx].float()
        if self.envs is not None:
            item["env"] = self.envs[idx]
        return {k: v[0] for k, v in item.items()} if squeeze else item


def _array_source(dataset: Dataset) -> tuple[ArrayDataset, np.ndarray] | None:
    """The in-memory dataset and indices behind a (Subset of an) ArrayDataset, else None."""
    if isinstance(dataset, ArrayDataset):
        return dataset, np.arange(len(dataset))
    if isinstance(dataset, Subset) and isinstance(dataset.dataset, ArrayDataset):
        return dataset.dataset, np.asarray(dataset.indices)
    return None


def num_workers() -> int:
    """Loader workers for image folders (EGAT_BENCH_WORKERS, default 0 = in-process)."""
    return int(os.environ.get("EGAT_BENCH_WORKERS", "0"))


def iterate(dataset: Dataset, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[dict[str, Tensor]]:
    """One pass over a dataset in batches (fast path for in-memory data, DataLoader otherwise)."""
    source = _array_source(dataset)
    if source is None:
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                              drop_last=drop_last, num_workers=num_workers())
        return
    base, indices = source
    order = torch.randperm(len(indices), generator=generator) if shuffle else torch.arange(len(indices))
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        yield base.take(torch.as_tensor(indices[order[start : start + batch_size].numpy()]))


def endless(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
    """Shuffled training batches forever (reshuffled every epoch, incomplete last batch dropped)."""
    if len(dataset) < batch_size:
        raise UserError(f"training split has {len(dataset)} images, fewer than the batch size {batch_size}")
    while True:
        yield from iterate(dataset, batch_size, shuffle=True, generator=generator, drop_last=True)


def cache_dir() -> Path:
    """Where generated benchmarks are cached (EGAT_BENCH_CACHE, default ~/.cache/egat-bench)."""
    return Path(os.environ.get("EGAT_BENCH_CACHE", Path.home() / ".cache" / "egat-bench"))
