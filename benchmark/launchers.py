"""Launchers: how a list of eval jobs gets executed. All of them write to the same results store.

- `local`: one after the other in this process.
- `processes`: N worker processes on this machine (each job runs with one intra-op thread, in every
  launcher: benchmark/numerics.py, so that every launcher gives the same numbers).
- `ray`: Ray tasks on a cluster (`--ray-address`) or on a local Ray instance started for the run.
- `slurm`: a Slurm job array through submitit (`--slurm-partition`, `--slurm-gpus`, `--slurm-time`);
  `--slurm-local` runs the same submission on submitit's local executor (testing without a cluster).

A job is self-contained: it loads its data, trains if its checkpoint is missing, evaluates, and writes
its records atomically, so any engine can run it and an interrupted grid resumes from the records.
"""

from __future__ import annotations

import multiprocessing
import os
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


def execute(job: EvalJob, options: LaunchOptions, progress: bool = False) -> str:
    """Run one eval job (training it first if needed) and return its key; the unit every engine runs. A fresh
    worker process loads the run's plugins first (a no-op where they are loaded)."""
    load_plugins(options.plugins)
    run_eval(job, Store(options.results_dir, job.train.profile.name), data_root=options.data_root,
             device=options.device, progress=progress, stop_on_divergence=options.stop_on_divergence)
    return job.key


def _progress(total: int, engine: str) -> tqdm:
    return tqdm(total=total, desc=f"jobs ({engine})", dynamic_ncols=True)


@LAUNCHERS.register("local")
def launch_local(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run every job in this process, in order, with per-job progress bars."""
    for job in tqdm(jobs, desc="jobs", disable=len(jobs) < 2, dynamic_ncols=True):
        execute(job, options, progress=True)


@LAUNCHERS.register("processes")
def launch_processes(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """Run jobs in `workers` spawned processes (each job sets its own threads: benchmark/numerics.py)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, options.workers), mp_context=context) as pool, \
            _progress(len(jobs), "processes") as bar:
        for future in as_completed([pool.submit(execute, job, options) for job in jobs]):
            future.result()  # re-raises a worker's error (e.g. UserError) here
            bar.update()


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
        pending = [task.remote(job, options) for job in jobs]
        with _progress(len(jobs), "ray") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)
                bar.update(len(done))
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
    with _progress(len(jobs), "slurm") as bar:
        for job in submitted:
            job.result()  # waits; re-raises the job's error with its log
            bar.update()


def _slurm_available() -> bool:
    return any(Path(p, "sbatch").is_file() for p in os.environ.get("PATH", "").split(os.pathsep))
