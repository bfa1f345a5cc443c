"""Running a plan: the one path from jobs to records for the grid, the sweep, the cards and `reproduce`.

`execute` checks the jobs' data, plans them against the store, prints the plan line with its estimate,
and unless it is a dry run builds what the jobs share here and once (the synthetic pretraining, the
attacks' resources such as SCA's DDPM), launches the pending jobs (the launcher shows the progress) and,
for a grid, prints each job's metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.config import Profile
from benchmark.estimate import (
    PROBE_STEPS,
    estimate_job_seconds,
    makespan,
    planned_time,
    pretraining_seconds,
    resource_seconds,
    resources_to_provide,
)
from benchmark.grid import Plan, make_plan
from benchmark.jobs import EvalJob, load_dataset_for, resolve_device
from benchmark.launchers import LAUNCHERS, LaunchOptions, on_terminal
from benchmark.metrics import METRICS
from benchmark.numerics import job_numerics
from benchmark.pretraining import pretrained_backbone_state, uses_synthetic_pretraining
from benchmark.store import Store, eps_label

#: where results go unless --results-dir says otherwise (the committed records live there)
DEFAULT_RESULTS = "results"


@dataclass(frozen=True)
class Launch:
    """How a plan runs: the launcher's name and options; a dry run stops after the plan line."""

    launcher: str
    options: LaunchOptions
    dry_run: bool = False


def grid_headline(plan: Plan) -> str:
    """`plan: 16 jobs (quick profile): 0 done, 16 to train and evaluate, 0 to evaluate` (the grid's plan line; a
    study setting's grid names it: `quick profile, setting budget`)."""
    jobs = plan.done + plan.pending
    profile = jobs[0].train.profile
    setting = "".join(sorted({f", setting {j.train.profile.setting}" for j in jobs if j.train.profile.setting}))
    return (f"plan: {len(jobs)} jobs ({profile.name} profile{setting}): {len(plan.done)} done, "
            f"{len(plan.to_train)} to train and evaluate, {len(plan.to_evaluate)} to evaluate")


def plan_grids(grids: Sequence[Sequence[EvalJob]], launch: Launch) -> str:
    """The plan line of grids run one after the other (an artefact's): their jobs, each once (a job an earlier grid
    runs is done when a later one starts), and the sum of the grids' times on the workers (each grid's makespan), with
    what runs before the jobs; from the store as it is now (each grid prints its own line again when it starts)."""
    options = launch.options
    seen: set[str] = set()
    pending: list[EvalJob] = []
    distinct = 0
    seconds = 0.0
    for jobs in grids:
        fresh = [job for job in jobs if job.key not in seen]
        seen.update(job.key for job in jobs)
        plan = make_plan(fresh, options.results_dir)
        job_seconds, _ = estimate_job_seconds(plan, options.results_dir, data_root=options.data_root,
                                              device=options.device)
        seconds += makespan(job_seconds, options.workers) if launch.launcher != "local" else sum(job_seconds)
        pending += plan.pending
        distinct += len(fresh)
    first = pretraining_seconds(_distinct(job.train.profile for job in pending)) + sum(
        resource_seconds(pending, data_root=options.data_root, device=options.device).values())
    where = "in this process" if launch.launcher == "local" else f"on {options.workers} workers ({launch.launcher})"
    return (f"plan of {len(grids)} grids: {distinct} distinct jobs, {len(pending)} to run; estimated "
            f"{(seconds + first) / 60:.1f} min {where}, one grid after the other")


def execute(jobs: Sequence[EvalJob], launch: Launch, *, headline: Callable[[Plan], str] = grid_headline,
            summarize: bool = False) -> None:
    """Run `jobs` (module docstring): `headline` starts the plan line, `summarize` prints each job's metrics at
    the end. Bad data folders or names are a UserError before anything runs."""
    options = launch.options
    for dataset, profile in _datasets(jobs).items():
        load_dataset_for(dataset, options.data_root, profile)  # so that bad data folders fail here
    plan = make_plan(list(jobs), options.results_dir)
    seconds, probed = estimate_job_seconds(plan, options.results_dir, data_root=options.data_root,
                                           device=options.device)
    pending_profiles = _distinct(job.train.profile for job in plan.pending)
    print(headline(plan) + "; "
          + planned_time(seconds, options.workers, launch.launcher,
                         first={"pretraining": pretraining_seconds(pending_profiles),
                                **resource_seconds(plan.pending, data_root=options.data_root, device=options.device)})
          + (f" ({', '.join(probed)} timed by a {PROBE_STEPS}-step probe: no finished job of theirs yet)"
             if probed else ""))
    if plan.done and Path(options.results_dir) == Path(DEFAULT_RESULTS):
        print(f"{len(plan.done)} of {len(jobs)} jobs are already in {DEFAULT_RESULTS}/{jobs[0].train.profile.name}/ "
              "(the committed records, unless you ran them here); to recompute them, pass --results-dir DIR")
    if launch.dry_run:
        return
    if plan.pending:
        for profile in pending_profiles:
            pretrain_once(profile, options.device)
        provide_resources(plan.pending, options)
        LAUNCHERS.get(launch.launcher)(plan.pending, options)
    else:
        print("all jobs are done; nothing to run")
    if summarize:
        print_summary(list(jobs), options.results_dir)


def pretrain_once(profile: Profile, device: str) -> None:
    """The profile's synthetic pretraining, here and once (cached), so that the workers load it (a progress bar on
    a terminal only: in a log its redraws would be thousands of carriage returns)."""
    if uses_synthetic_pretraining(profile):
        with job_numerics(resolve_device(device)):
            pretrained_backbone_state(profile.model, progress=on_terminal())


def provide_resources(jobs: Sequence[EvalJob], options: LaunchOptions) -> None:
    """The resources of the attacks that jobs run at an eps > 0 (SCA's DDPM), built here once per dataset
    (estimate.resources_to_provide, which the plan's estimate times) so that the workers load them."""
    device = resolve_device(options.device)
    for dataset, (profile, resources) in resources_to_provide(jobs).items():
        for resource in resources:
            with job_numerics(device):
                resource.provide(load_dataset_for(dataset, options.data_root, profile), device=device,
                                 progress=on_terminal())


def print_summary(jobs: list, results_dir: str) -> None:
    """One line per job: the metrics declared for the summary (cAcc, Comp, Suff), mean OOD accuracy and the attack
    accuracies at each eps."""
    shown = [METRICS.get(name) for name in METRICS if METRICS.get(name).summary]
    for job in jobs:
        record = Store(results_dir, job.train.profile.name).read("eval", job.key)
        m = record["metrics"]
        values = [(metric, metric.value(m, eps_label(job.train.profile.table_eps))) for metric in shown]
        declared = "  ".join(f"{metric.display} {value:.{1 if metric.high - metric.low > 10 else 3}f}"
                             for metric, value in values if value is not None)
        ood = sum(m["ood_cAcc"].values()) / max(len(m["ood_cAcc"]), 1)
        attacks = " ".join(f"{a}@{e}={v:.1f}" for a, by_eps in m["aAcc"].items() for e, v in by_eps.items())
        print(f"{record['method']:>14} {record['dataset']}/{record['train_domain']} seed {record['seed']}: "
              f"{declared}  OOD {ood:.1f}  {attacks}")


def _datasets(jobs: Sequence[EvalJob]) -> dict[str, Profile]:
    """Each dataset of the jobs, in order, with the profile of its first job (the image size it is loaded at)."""
    found: dict[str, Profile] = {}
    for job in jobs:
        found.setdefault(job.train.dataset, job.train.profile)
    return found


def _distinct(profiles: Iterable[Profile]) -> list[Profile]:
    """The profiles, each once, in order (profiles are not hashable: they hold dicts)."""
    found: list[Profile] = []
    for profile in profiles:
        if profile not in found:
            found.append(profile)
    return found
