"""The hyperparameters a profile's committed sweep selected: `benchmark/tuned/<profile>.json`.

`python -m benchmark.sweep ... --write-tuned` writes the file: per dataset and method, the trial that
the sweep selected by training-domain validation accuracy (the paper's rule), its method
hyperparameters and loop settings (lr, dropout), and the keys of its records as provenance. Every
train job of that profile takes these values (benchmark/jobs.py make_train_job; `--untuned` keeps the
declared defaults). A variant without its own entry (e.g. egat-noegl) takes its parent's values for
the hyperparameters it searches (the ones it does not fix), so an ablation changes one thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.registry import UserError
from methods import METHODS

TUNED_DIR = Path(__file__).resolve().parent / "tuned"


@dataclass(frozen=True)
class Selected:
    """A method's selected values on one dataset and how they were chosen (one line, tables print it)."""

    hparams: dict[str, Any]
    loop: dict[str, Any]
    description: str


def tuned_path(profile: str) -> Path:
    """Where a profile's tuned hyperparameters live."""
    return TUNED_DIR / f"{profile}.json"


@cache
def load_tuned(profile: str) -> dict[str, Any] | None:
    """The profile's tuned file, or None when it has none (a malformed file is a UserError)."""
    path = tuned_path(profile)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["selected"]
        data["trials"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"malformed tuned hyperparameters {path}: {err}; regenerate it with "
                        "python -m benchmark.sweep ... --write-tuned") from None
    return data


def describe(data: dict[str, Any], profile: str) -> str:
    """How the values were chosen, as table headers state it."""
    return (f"tuned: {data['trials']}-trial random search, validation selection "
            f"(benchmark/tuned/{profile}.json)")


def tuned_values(profile: str, dataset: str, method: str) -> Selected | None:
    """The selected values of `method` on `dataset` under `profile` (its parent's for a variant without its own
    entry), or None when the profile has no sweep selection for it."""
    data = load_tuned(profile)
    if data is None or method not in METHODS:
        return None
    by_method = data["selected"].get(dataset, {})
    spec = METHODS.get(method)
    entry, source = by_method.get(method), method
    if entry is None and spec.parent is not None:
        entry, source = by_method.get(spec.parent), spec.parent
    if entry is None:
        return None
    searched = spec.search_space(profile)
    hparams = {k: v for k, v in entry["hparams"].items() if k in searched}
    description = describe(data, profile) + ("" if source == method else f", the values selected for {source}")
    return Selected(hparams, dict(entry["loop"]), description)
