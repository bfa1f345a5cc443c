"""Results store: one JSON record per finished job, written atomically, plus training checkpoints.

Layout: `<results>/<profile>/runs/<kind>/<key>.json` and `<results>/<profile>/checkpoints/<key>.pt`.
A record is written to a temporary file in the same folder, flushed, fsync'ed and renamed, so a
reader (or a resumed grid) sees either no record or a complete one. A job whose record exists is
done; an interrupted job leaves no record and is redone. Tables and figures read only records.
Torch is imported only where checkpoints and versions need it, so rendering stays torch-free.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from torch import Tensor


def eps_label(eps: float) -> str:
    """An eps as records and tables write it (0.02 -> "0.02"): the keys of `metrics.aAcc[attack]`."""
    return f"{eps:g}"


def content_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able config (sorted keys): the job's identity."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def versions() -> dict[str, str]:
    """Code and library versions recorded with every result."""
    import numpy
    import torch
    import torchvision

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"code": commit or "unknown", "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__}


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block: parallel workers that would build the
    same cached file (a DDPM, a pretrained backbone) build it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """Records and checkpoints of one profile under a results folder."""

    def __init__(self, results_dir: str | Path, profile: str) -> None:
        self.root = Path(results_dir) / profile

    def record_path(self, kind: str, key: str) -> Path:
        return self.root / "runs" / kind / f"{key}.json"

    def checkpoint_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.pt"

    def has(self, kind: str, key: str) -> bool:
        """Whether a complete record of this job exists."""
        return self.record_path(kind, key).is_file()

    def trained(self, key: str) -> bool:
        """Whether a training job finished: its record and its checkpoint both exist."""
        return self.has("train", key) and self.checkpoint_path(key).is_file()

    def write(self, record: dict[str, Any]) -> Path:
        """Atomically write a record (needs `kind` and `key`)."""
        path = self.record_path(record["kind"], record["key"])
        atomic_write_bytes(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
        return path

    def read(self, kind: str, key: str) -> dict[str, Any]:
        return json.loads(self.record_path(kind, key).read_text())

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Every record of a kind, sorted by key for deterministic output."""
        folder = self.root / "runs" / kind
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def frame(self, kind: str = "eval") -> pd.DataFrame:
        """Records of a kind flattened into a DataFrame (nested dicts become dotted columns)."""
        import pandas as pd

        return pd.json_normalize(self.records(kind))

    def save_checkpoint(self, key: str, state: dict[str, Tensor]) -> Path:
        """Save a model state_dict atomically."""
        import torch

        path = self.checkpoint_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def load_checkpoint(self, key: str) -> dict[str, Tensor]:
        """Load a state_dict safely (tensors only: weights_only=True)."""
        import torch

        return torch.load(self.checkpoint_path(key), map_location="cpu", weights_only=True)
