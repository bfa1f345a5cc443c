"""Launchers: how a list of eval jobs gets executed. All of them write to the same results store.

`local` runs the jobs one after the other in this process, with progress bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from benchmark.jobs import EvalJob, run_eval
from benchmark.registry import Registry
from benchmark.store import Store


@dataclass(frozen=True)
class LaunchOptions:
    """Where results go and how jobs run (none of this is part of a job's identity)."""

    results_dir: str
    data_root: str | None
    device: str
    workers: int = 1


Launcher = Callable[[Sequence[EvalJob], LaunchOptions], None]
LAUNCHERS: Registry[Launcher] = Registry("launcher")


@LAUNCHERS.register("local")
def launch_local(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run every job in this process, in order."""
    for job in tqdm(jobs, desc="jobs", disable=len(jobs) < 2, dynamic_ncols=True):
        run_eval(job, Store(options.results_dir, job.train.profile.name), data_root=options.data_root,
                 device=options.device)
