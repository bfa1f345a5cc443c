"""The grid: a selection becomes eval jobs (each with its train job) and a plan of what is not done yet.

The plan's time estimate is benchmark/estimate.py; running a plan is benchmark/execute.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from benchmark.data import resolve_domains
from benchmark.jobs import EvalJob, evaluated_current, make_train_job, trained_current, transfer_source_for
from benchmark.selection import Selection
from benchmark.store import Store


def build_jobs(selection: Selection) -> list[EvalJob]:
    """Every (dataset, domain, method, seed) eval job, in table order."""
    jobs = []
    for dataset in selection.datasets:
        for domain, method, seed in product(resolve_domains(dataset, selection.domains), selection.methods,
                                            selection.seeds):
            train_job = make_train_job(selection.profile, dataset, domain, method, seed,
                                       selection.hparams.get(method), tuned=selection.tuned)
            jobs.append(EvalJob(train_job, selection.attacks, selection.eps,
                                transfer_source_for(train_job, tuned=selection.tuned)))
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
        if evaluated_current(job, store):
            done.append(job)
        elif trained_current(job.train, store):
            to_evaluate.append(job)
        else:
            to_train.append(job)
    return Plan(done, to_train, to_evaluate)
