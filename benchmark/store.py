"""Results store: one JSON record per finished job, written atomically, plus training checkpoints.

Layout: `<results>/<profile>/runs/<kind>/<key>.json` and `<results>/<profile>/checkpoints/<key>.pt`.
A record is written to a temporary file in the same folder, flushed, fsync'ed and renamed, so a
reader (or a resumed grid) sees either no record or a complete one. A job whose record exists is
done; an interrupted job leaves no record and is redone. Tables and figures read only records.
Torch is imported only where checkpoints and versions need it, so rendering stays torch-free.

Every read goes through `read_record`, the one judge of a record file: one that is not JSON, lacks a required
field (REQUIRED_FIELDS) or is another profile's, kind's or key's (an interrupted copy, a full disk, a bad merge)
is an `InvalidRecordError` naming the file; listings leave such files out and say which, and a job runs again
after `set_aside_invalid` moved its file to `NAME.corrupt`. A job runs under its lock file
(`runs/locks/<kind>-<key>.lock`, `job_lock`), so that two grids on one store never run it twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.registry import UserError

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


#: the fields (dotted: nested) and types a record needs to be read at all: its identity and what tables, plans and
#: verify read from it (README "Results store"). Provenance that older records lack (`fingerprint`, `machine`,
#: `weights_digest`, ...) makes a record stale (benchmark/fingerprint.py), not invalid.
REQUIRED_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "train": {"key": str, "kind": str, "profile": str, "dataset": str, "train_domain": str, "method": str, "seed": int,
              "config": dict, "versions": dict, "data": str, "best_step": int, "best_val_acc": (int, float),
              "curve": list, "time_per_epoch_s": (int, float), "total_time_s": (int, float)},
    "eval": {"key": str, "kind": str, "train_key": str, "profile": str, "dataset": str, "train_domain": str,
             "method": str, "seed": int, "config": dict, "config.train": dict, "versions": dict, "data": str,
             "eval_time_s": (int, float), "metrics": dict},
}
#: the suffix a record file that is no valid record gets when a job that would rewrite it moves it aside
CORRUPT_SUFFIX = ".corrupt"


class InvalidRecordError(UserError):
    """A record file that cannot be read as its store's record: not JSON, a required field missing or of the wrong
    type, or another profile's, kind's or key's. Its message is one line naming the file."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


def _field(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for name in dotted.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def read_record(path: Path, kind: str, profile: str) -> dict[str, Any]:
    """The record in `path` (`<key>.json` of `kind` in `profile`'s store), checked: InvalidRecordError when it is
    not JSON, lacks a field of REQUIRED_FIELDS (or has it of another type), or names another profile, kind or key."""
    try:
        record = json.loads(path.read_bytes())
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidRecordError(path, f"not valid JSON ({err})") from None
    if not isinstance(record, dict):
        raise InvalidRecordError(path, f"not a record (a JSON {type(record).__name__}, not an object)")
    for name, expected in REQUIRED_FIELDS[kind].items():
        if not isinstance(_field(record, name), expected):
            raise InvalidRecordError(path, f"required field {name!r} is missing or not a {_type_names(expected)}")
    identity = {"profile": profile, "kind": kind, "key": path.name.removesuffix(".json")}
    for name, expected in identity.items():
        if record[name] != expected:
            raise InvalidRecordError(path, f"a record of {name} {record[name]!r}, not {expected!r} as its place in "
                                           "the store says")
    return record


def _type_names(expected: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))


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
        """Whether a complete, valid record of this job exists."""
        return self.get(kind, key) is not None

    def write(self, record: dict[str, Any]) -> Path:
        """Atomically write a record (needs `kind` and `key`)."""
        path = self.record_path(record["kind"], record["key"])
        atomic_write_bytes(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
        return path

    def read(self, kind: str, key: str) -> dict[str, Any]:
        """The job's record: FileNotFoundError when there is none, InvalidRecordError when its file is invalid."""
        return read_record(self.record_path(kind, key), kind, self.root.name)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The job's record, or None when there is none or its file is invalid (the job is then not done)."""
        try:
            return self.read(kind, key)
        except (FileNotFoundError, InvalidRecordError):
            return None

    def scan(self, kind: str) -> tuple[list[dict[str, Any]], list[InvalidRecordError]]:
        """Every valid record of a kind, sorted by key for deterministic output, and the files left out as invalid."""
        folder = self.root / "runs" / kind
        valid, invalid = [], []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                valid.append(read_record(path, kind, self.root.name))
            except InvalidRecordError as err:
                invalid.append(err)
        return valid, invalid

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Every valid record of a kind, sorted by key (invalid files left out: `scan` names them)."""
        return self.scan(kind)[0]

    def set_aside_invalid(self, kind: str, key: str) -> None:
        """Before a job rewrites its record: move an invalid record file to `NAME.corrupt` (kept for a look, out of
        every listing) and say so in one line on stderr."""
        path = self.record_path(kind, key)
        try:
            self.read(kind, key)
        except FileNotFoundError:
            return
        except InvalidRecordError as err:
            corrupt = path.with_name(path.name + CORRUPT_SUFFIX)
            os.replace(path, corrupt)
            print(f"warning: {err}; moved aside to {corrupt.name}, the job runs again", file=sys.stderr, flush=True)

    @contextmanager
    def job_lock(self, kind: str, key: str) -> Iterator[None]:
        """Hold the job's lock file for the block, so that no other process (another grid's, on any launcher) runs
        the job meanwhile: wait while a live process holds it (saying so once on stderr), take it over from a
        process of this host that died (JobLock)."""
        with JobLock(self.root / "runs" / "locks" / f"{kind}-{key}.lock"):
            yield

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


class JobLock:
    """A lock file holding `<pid> <host>` of its holder, created atomically with its content (a hard link of a
    written temporary file: fails where the lock exists, like O_CREAT|O_EXCL, and is never seen empty), removed on
    release. A lock whose process is gone (its pid dead or a zombie on this host) is stale and taken over; a lock of
    another host is honoured until its holder releases it (or someone deletes the file)."""

    #: seconds between looks at a lock held by another process
    POLL_S = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self.me = f"{os.getpid()} {socket.gethostname()}"

    def __enter__(self) -> JobLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        announced = False
        while not self._create():
            holder = self._holder()
            if holder is None or self._cleared_if_stale(holder):
                continue
            if not announced:
                pid, _, host = holder.partition(" ")
                print(f"waiting for {self.path.name}: process {pid} on {host} is running this job; it counts as done "
                      "when that process finishes it", file=sys.stderr, flush=True)
                announced = True
            time.sleep(self.POLL_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)

    def _create(self) -> bool:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.me + "\n")
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _holder(self) -> str | None:
        """`<pid> <host>` of the lock's holder, None when the lock is gone."""
        try:
            return self.path.read_text().strip()
        except FileNotFoundError:
            return None

    def _cleared_if_stale(self, holder: str) -> bool:
        """Remove the lock if `holder` is a process of this host that is gone and still holds it (decided under a
        lock of the folder, so that two processes never both take over one stale lock)."""
        pid, _, host = holder.partition(" ")
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            return False
        with locked(self.path.parent / ".takeover"):
            if self._holder() != holder:
                return False
            self.path.unlink()
            return True


def _alive(pid: int) -> bool:
    """Whether a process of this host runs: it exists and is no zombie (dead, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:  # gone meanwhile, or no /proc (not Linux: os.kill's answer stands)
        return not Path("/proc").is_dir()
    return state != "Z"
