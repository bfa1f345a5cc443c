"""Launchers: how a list of eval jobs gets executed. All of them write to the same results store.

- `processes` (the default): N worker processes on this machine, N = the cores this process may use
  unless `--workers` says otherwise (each job runs with one intra-op thread, in every launcher:
  benchmark/numerics.py, so that every launcher gives the same numbers).
- `local`: one after the other in this process (debugging: per-job progress bars, one traceback).
- `ray`: Ray tasks on a cluster (`--ray-address`) or on a local Ray instance started for the run.
- `slurm`: a Slurm job array through submitit (`--slurm-partition`, `--slurm-gpus`, `--slurm-time`);
  `--slurm-local` runs the same submission on submitit's local executor (testing without a cluster).

A job is self-contained: it loads its data, trains if its checkpoint is missing, evaluates, and writes
its records atomically, so any engine can run it and an interrupted grid resumes from the records.

Progress: on a terminal, tqdm bars; when stdout is not one (CI, nohup, a cluster log), one line per
finished job and a summary every SUMMARY_EVERY jobs, never carriage-return redraws.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from benchmark.jobs import EvalJob, run_eval
from benchmark.plugins import load_plugins
from benchmark.registry import Registry, UserError
from benchmark.store import Store


@dataclass(frozen=True)
class LaunchOptions:
    """Where results go and how jobs run (none of this is part of a job's identity)."""

    results_dir: str
    data_root: str | None
    device: str
    workers: int = 1
    ray_address: str | None = None
    slurm_partition: str | None = None
    slurm_gpus: int = 1
    slurm_time_min: int = 240
    slurm_local: bool = False
    plugins: tuple[str, ...] = ()  # plugin files every worker loads before it runs a job
    stop_on_divergence: bool = False  # a sweep's trials record a NaN loss instead of failing (benchmark/train.py)


Launcher = Callable[[Sequence[EvalJob], LaunchOptions], None]
LAUNCHERS: Registry[Launcher] = Registry("launcher")

#: in a log, a summary line after every this many finished jobs (and after the last)
SUMMARY_EVERY = 10


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity): the default number of workers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def on_terminal() -> bool:
    """Whether progress goes to a terminal (bars) rather than a log (one line per job)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class Progress:
    """A launch's progress: a tqdm bar on a terminal; in a log one line per finished job (its name and seconds)
    and a summary (jobs done, elapsed, estimated time left) every SUMMARY_EVERY jobs and at the end."""

    def __init__(self, total: int, engine: str) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.bar = tqdm(total=total, desc=f"jobs ({engine})", dynamic_ncols=True) if on_terminal() else None

    def finished(self, job: EvalJob, seconds: float) -> None:
        """Count one finished job."""
        self.done += 1
        if self.bar is not None:
            self.bar.update()
            return
        train = job.train
        print(f"job {self.done}/{self.total} done: {train.method} {train.dataset}/{train.domain} seed {train.seed} "
              f"in {seconds:.0f} s", flush=True)
        if self.done % SUMMARY_EVERY == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done)
            print(f"progress: {self.done}/{self.total} jobs done in {elapsed / 60:.1f} min, about {left / 60:.1f} "
                  "min left", flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def execute(job: EvalJob, options: LaunchOptions, progress: bool = False) -> float:
    """Run one eval job (training it first if needed) and return its wall seconds; the unit every engine runs.
    A fresh worker process loads the run's plugins first (a no-op where they are loaded)."""
    start = time.perf_counter()
    load_plugins(options.plugins)
    run_eval(job, Store(options.results_dir, job.train.profile.name), data_root=options.data_root,
             device=options.device, progress=progress, stop_on_divergence=options.stop_on_divergence)
    return time.perf_counter() - start


@LAUNCHERS.register("local")
def launch_local(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run every job in this process, in order (per-job progress bars on a terminal)."""
    with Progress(len(jobs), "local") as progress:
        for job in jobs:
            progress.finished(job, execute(job, options, progress=on_terminal()))


#: Linux prctl option: the signal a process gets when its parent dies
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """A worker's initializer: on Linux it is sent SIGTERM when the grid's process (`parent`) dies, killed with
    SIGTERM or SIGKILL and not only interrupted from a terminal, so that no orphaned worker keeps computing queued
    jobs; a worker whose parent died while it started ends at once."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)


@LAUNCHERS.register("processes")
def launch_processes(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run jobs in `workers` spawned processes (each job sets its own threads: benchmark/numerics.py); they end
    with this process."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, options.workers), mp_context=context,
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool, \
            Progress(len(jobs), "processes") as progress:
        futures = {pool.submit(execute, job, options): job for job in jobs}
        for future in as_completed(futures):
            progress.finished(futures[future], future.result())  # re-raises a worker's error (e.g. UserError)


@LAUNCHERS.register("ray")
def launch_ray(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run jobs as Ray tasks: on the cluster at `ray_address`, or a local Ray instance when absent."""
    try:
        import ray
    except ImportError:
        raise UserError("launcher 'ray' needs Ray: pip install -e '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        local = {"num_cpus": max(1, options.workers), "include_dashboard": False}
        ray.init(address=options.ray_address, **({} if options.ray_address else local),
                 log_to_driver=False, configure_logging=False)
    try:
        gpus = 1 if options.device == "cuda" else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus)(execute)
        submitted = {task.remote(job, options): job for job in jobs}
        pending = list(submitted)
        with Progress(len(jobs), "ray") as progress:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    progress.finished(submitted[ref], ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()


@LAUNCHERS.register("slurm")
def launch_slurm(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Submit the jobs as a Slurm array through submitit and wait for them (logs under results/slurm)."""
    try:
        import submitit
    except ImportError:
        raise UserError("launcher 'slurm' needs submitit: pip install -e '.[slurm]'") from None
    folder = Path(options.results_dir) / "slurm" / "%j"
    if options.slurm_local:
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        executor.update_parameters(timeout_min=options.slurm_time_min)
    else:
        if not _slurm_available():
            raise UserError("launcher 'slurm' found no Slurm (sbatch not on PATH); valid choices here: "
                            "local, processes, ray, or --slurm-local to test the submission locally")
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(timeout_min=options.slurm_time_min, gpus_per_node=options.slurm_gpus,
                                   cpus_per_task=max(1, options.workers), slurm_array_parallelism=len(jobs),
                                   **({"slurm_partition": options.slurm_partition} if options.slurm_partition else {}))
    submitted = executor.map_array(execute, list(jobs), [options] * len(jobs))
    with Progress(len(jobs), "slurm") as progress:
        for job, handle in zip(jobs, submitted, strict=True):
            progress.finished(job, handle.result())  # waits; re-raises the job's error with its log


def _slurm_available() -> bool:
    return any(Path(p, "sbatch").is_file() for p in os.environ.get("PATH", "").split(os.pathsep))
