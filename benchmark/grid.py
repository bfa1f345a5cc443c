"""The grid: a CLI selection becomes eval jobs (each with its train job), a plan, and an estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from benchmark.config import Profile
from benchmark.data import resolve_domains
from benchmark.jobs import EvalJob, make_train_job
from benchmark.store import Store


@dataclass(frozen=True)
class Selection:
    """What the user asked for, already validated."""

    profile: Profile
    datasets: tuple[str, ...]
    domains: str  # "all" or a comma list of names/indices, resolved per dataset
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    hparams: dict[str, dict[str, str]] = field(default_factory=dict)  # method -> key -> CLI value


def build_jobs(selection: Selection) -> list[EvalJob]:
    """Every (dataset, domain, method, seed) eval job, in table order."""
    jobs = []
    for dataset in selection.datasets:
        for domain, method, seed in product(resolve_domains(dataset, selection.domains), selection.methods,
                                            selection.seeds):
            train_job = make_train_job(selection.profile, dataset, domain, method, seed,
                                       selection.hparams.get(method))
            jobs.append(EvalJob(train_job, selection.attacks, selection.eps))
    return jobs


@dataclass(frozen=True)
class Plan:
    """Which jobs are done, which need training, which need only evaluation."""

    done: list[EvalJob]
    to_train: list[EvalJob]
    to_evaluate: list[EvalJob]

    @property
    def pending(self) -> list[EvalJob]:
        return self.to_train + self.to_evaluate


def make_plan(jobs: list[EvalJob], results_dir: str) -> Plan:
    """Split jobs by what their records (and checkpoints) say is already done."""
    done, to_train, to_evaluate = [], [], []
    for job in jobs:
        store = Store(results_dir, job.train.profile.name)
        if store.has("eval", job.key):
            done.append(job)
        elif store.has("train", job.train.key) and store.checkpoint_path(job.train.key).is_file():
            to_evaluate.append(job)
        else:
            to_train.append(job)
    return Plan(done, to_train, to_evaluate)


def _attack_cost(attacks: list, eps: list) -> int:
    """Relative evaluation cost: one unit for the clean metrics plus one per (attack, eps > 0) pair."""
    return 1 + len(attacks) * sum(1 for e in eps if e > 0)


def estimate_seconds(plan: Plan, results_dir: str) -> tuple[float, list[str]]:
    """Seconds the pending jobs should take, from finished jobs of the same (profile, method) in the store,
    scaled by training steps and by the number of attacks x eps; also the methods with no timing yet."""
    total, unknown = 0.0, []
    for job in plan.pending:
        store = Store(results_dir, job.train.profile.name)
        same = [r for r in store.records("eval") if r["method"] == job.train.method]
        if not same:
            unknown.append(job.train.method)
            continue
        cost = _attack_cost(list(job.attacks), list(job.eps))
        evals = sorted(r["eval_time_s"] / _attack_cost(r["config"]["attacks"], r["config"]["eps"]) for r in same)
        total += evals[len(evals) // 2] * cost
        if job in plan.to_train:
            trains = sorted(r["total_time_s"] / r["config"]["steps"] for r in store.records("train")
                            if r["method"] == job.train.method)
            total += trains[len(trains) // 2] * job.train.profile.steps
    return total, sorted(set(unknown))
