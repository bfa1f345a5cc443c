"""Which weights a record was made from: the one rule shared by planning (benchmark/jobs.py) and rendering
(benchmark/results.py). Dependency-free, so that neither a job's process nor the torch-free renderer imports
more than it needs."""

from __future__ import annotations


def same_weights(evaluated: str | None, trained: str | None) -> bool:
    """Whether an evaluation's weights digest matches its training's (true where either predates digests):
    a retraining into other weights (a lost checkpoint, another CPU) makes the older evaluations stale."""
    return evaluated is None or trained is None or evaluated == trained
