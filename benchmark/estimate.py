"""The plan's time estimate: seconds its pending jobs should take, from the store's finished jobs of the same
methods (their seconds per attack and eps where their records say them), a short probe on this machine for a method
with none, and what runs before the jobs when it is not cached yet: the synthetic pretraining and the attacks'
resources (SCA's DDPM)."""

from __future__ import annotations

import heapq
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import pairwise
from statistics import median_high

import torch
import torch.nn.functional as F

from attacks import ATTACKS, Resource, resources_of
from benchmark.config import CHAIN_SURVIVAL, Profile
from benchmark.data import iterate
from benchmark.data.base import SPLIT_FRACTIONS
from benchmark.data.synthetic import IMAGES_PER_DOMAIN
from benchmark.grid import Plan
from benchmark.jobs import (
    EvalJob,
    TrainJob,
    benchmark_for,
    load_dataset_for,
    new_method,
    resolve_device,
    trained_current,
)
from benchmark.models import build_model
from benchmark.numerics import job_numerics
from benchmark.pretraining import DEFAULT_CONFIG, make_corpus, pretrained_path, uses_synthetic_pretraining
from benchmark.results import setting_of
from benchmark.store import Store, eps_label
from benchmark.train import to_device, training_step
from methods import METHODS

#: training steps a probe runs for a method without finished jobs (the first is warm-up)
PROBE_STEPS = 3
#: input-gradient passes over a test batch the probe times after a warm-up one, whose first-call allocations a single
#: timed pass would count (the median of the others)
PROBE_GRADIENT_PASSES = 3
#: pretraining steps (the first is warm-up) and corpus images timed when a pretrained backbone is not cached yet
PRETRAIN_PROBE_STEPS = 4
PRETRAIN_PROBE_IMAGES = 400

#: the gradient-masking probe's PGD-10 runs: the transferred one always, white-box PGD-10 at the table eps unless the
#: grid has the table PGD (its run serves the probe: benchmark/evaluate.py Evaluation.table_pgd), PGD-10 at large_eps
#: unless the grid has it (the probe reads the grid's number)
BUILT_IN_TEST_IMAGES = round(SPLIT_FRACTIONS[2] * IMAGES_PER_DOMAIN)


def masking_probe_cost(profile: Profile, attacks: Sequence[str], eps: Sequence[float]) -> float:
    """The masking probe's PGD-10 runs in PGD-10 units (a PGD-10 over the whole test split = 1), on its probe images'
    share of the split; the worst case's convergence check is counted in aa's cost at the table eps
    (config.AttackSetting.check_ratio, attack_eps_cost)."""
    grid_pgd = "pgd" in attacks
    runs = 1 + (not grid_pgd) + (not grid_pgd or eps_label(profile.large_eps) not in {eps_label(e) for e in eps})
    share = 1.0 if profile.probe_images is None else min(1.0, profile.probe_images / BUILT_IN_TEST_IMAGES)
    return runs * share


def chain_survival(eps: float, *, robust: bool) -> float:
    """The share of an independent run's points that a chained attack still attacks after the eps `eps`: those robust
    at every eps <= it (config.CHAIN_SURVIVAL, linear between its declared eps, 1 at eps 0, its last share beyond)."""
    declared = sorted({0.0: 1.0, **CHAIN_SURVIVAL[robust]}.items())
    for (low, low_share), (high, high_share) in pairwise(declared):
        if eps <= high:
            return low_share + (high_share - low_share) * (eps - low) / (high - low)
    return declared[-1][1]


def attack_eps_cost(attack: str, eps: float, grid: Sequence[float], profile: Profile, *, robust: bool) -> float:
    """The cost of one attack at one eps > 0 of a job's eps `grid` (PGD-10 over the whole test split = 1). An attack
    the profile sets costs its setting's per-image cost, on a model trained on PGD (`robust`) or not, with its
    convergence check at the table eps only (where the evaluation runs it, once), times the share of the test split
    it attacks; any other its declared cost (an attack no longer registered, in an old record, PGD-10's). A chained
    attack (attacks/base.py) at an eps that is neither the grid's first eps > 0 nor the table eps attacks only the
    points robust at the eps before it: times their share (chain_survival)."""
    spec = ATTACKS.get(attack) if attack in ATTACKS else None
    setting = profile.attack_settings.get(attack)
    if setting is None:
        cost = 1.0 if spec is None else spec.cost
    else:
        cost = setting.cost_on(robust=robust, check=eps == profile.table_eps) * (
            1.0 if setting.images is None else min(1.0, setting.images / BUILT_IN_TEST_IMAGES))
    attacked = sorted(e for e in grid if e > 0)
    if getattr(spec, "chained", False) and eps not in (attacked[0], profile.table_eps):
        cost *= chain_survival(attacked[attacked.index(eps) - 1], robust=robust)
    return cost


def runs_alone(attack: str, attacks: Sequence[str]) -> bool:
    """Whether an evaluation of `attacks` runs `attack` itself: not when it is the first stage of a worst case it also
    runs (aa's first stage is the `apgd-ce` run, computed once: benchmark/evaluate.py)."""
    return not any(other in ATTACKS and ATTACKS.get(other).stages[:1] == (attack,) for other in attacks)


def _attack_cost(attacks: Sequence[str], eps: Sequence[float], profile: Profile, *, robust: bool) -> float:
    """Relative evaluation cost: one unit for the clean and explanation metrics plus the cost of each attack it runs
    itself (runs_alone) at each eps > 0 (attack_eps_cost), plus the masking probe when an attack runs."""
    attacked = [e for e in eps if e > 0]
    return (1 + sum(attack_eps_cost(a, e, eps, profile, robust=robust)
                    for a in attacks if runs_alone(a, attacks) for e in attacked)
            + (masking_probe_cost(profile, attacks, eps) if attacks and attacked else 0.0))


def _robust(method: str) -> bool:
    """Whether a method trains on PGD (the worst case then costs a robust model's; a method no longer registered,
    in an old record: not)."""
    return method in METHODS and METHODS.get(method).trains_on_pgd


def _of_setting(records: Iterable[dict], profile: Profile) -> list[dict]:
    """The records of `profile`'s study setting (benchmark/config.py SETTINGS; None: the profile's own), whose model and
    budgets time its jobs."""
    return [r for r in records if setting_of(r) == profile.setting]


def _method_timings(store: Store, profile: Profile) -> dict[str, tuple[float, float]]:
    """Per method with finished jobs of the profile's setting: median evaluation seconds per cost unit and training
    seconds per step."""
    evals: dict[str, list[float]] = defaultdict(list)
    trains: dict[str, list[float]] = defaultdict(list)
    for r in _of_setting(store.records("eval"), profile):
        evals[r["method"]].append(r["eval_time_s"] / _attack_cost(r["config"]["attacks"], r["config"]["eps"],
                                                                  profile, robust=_robust(r["method"])))
    for r in _of_setting(store.records("train"), profile):
        trains[r["method"]].append(r["total_time_s"] / r["config"]["steps"])
    return {m: (median_high(evals[m]), median_high(trains[m])) for m in evals if m in trains}


def probe_timing(job: TrainJob, *, data_root: str | None, device: str = "auto") -> tuple[float, float]:
    """Measure a method here when no finished job can tell: (evaluation seconds per cost unit, training
    seconds per step), from PROBE_STEPS real training steps (the first one, warm-up, not counted) and the median of
    PROBE_GRADIENT_PASSES input-gradient passes over a test batch after a warm-up one, scaled to PGD over the whole
    test split; under the numerics
    every job runs with (one thread: benchmark/numerics.py)."""
    with job_numerics(resolve_device(device)):
        return _probe(job, data_root, device)


def _probe(job: TrainJob, data_root: str | None, device: str) -> tuple[float, float]:
    profile, dev = job.profile, resolve_device(device)
    bench = benchmark_for(job, data_root)
    domain = bench.domain(job.domain)
    method = new_method(replace(job, profile=replace(profile, pretrained=False)), bench)  # timing, not weights
    model = method.model.to(dev)
    method.extra.to(dev)
    optimizer = torch.optim.Adam(method.parameters(), lr=profile.lr)
    batch = to_device(next(iterate(domain.train, profile.batch_size)), dev)
    times = []
    for step in range(1, PROBE_STEPS + 1):
        start = time.perf_counter()
        training_step(method, optimizer, batch, step, seed=job.seed)
        times.append(time.perf_counter() - start)
    test = to_device(next(iterate(domain.test, profile.eval_batch_size)), dev)
    model.eval()
    passes = []
    for _ in range(PROBE_GRADIENT_PASSES + 1):  # the first, warm-up (allocations), not counted
        start = time.perf_counter()
        x = test["x"].clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x), test["y"]), x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        passes.append(time.perf_counter() - start)
    batches = math.ceil(len(domain.test) / len(test["y"]))
    eval_per_unit = median_high(passes[1:]) * batches * (profile.attack_steps + 1)
    return eval_per_unit, median_high(times[1:])


def estimate_seconds(plan: Plan, results_dir: str, *, data_root: str | None = None, device: str = "auto",
                     probe: bool = True) -> tuple[float, list[str]]:
    """Seconds the pending jobs should take on one worker (the sum of estimate_job_seconds) and the probed (or, with
    probe=False, left-out) methods."""
    seconds, untimed = estimate_job_seconds(plan, results_dir, data_root=data_root, device=device, probe=probe)
    return sum(seconds), untimed


def estimate_job_seconds(plan: Plan, results_dir: str, *, data_root: str | None = None, device: str = "auto",
                         probe: bool = True) -> tuple[list[float], list[str]]:
    """Seconds each pending job (plan.pending order) should take, from finished jobs of the same (profile, method) in
    the store: an evaluation from their seconds per attack and eps where their records say them (_eval_seconds),
    otherwise scaled by the cost of its attacks x eps; training scaled by steps, in the first job of its train key; the
    training of a masking probe's
    ERM source that no pending job trains itself, in the first job that needs it (it trains it). Methods with no
    finished job are timed by `probe_timing` on their first pending job (or, with probe=False, left out: 0 s);
    returns the seconds and the probed (or left-out) methods."""
    timings: dict[tuple[str, str | None], dict[str, tuple[float, float]]] = {}
    recorded: dict[tuple[str, str | None], dict[tuple[str, str], list[dict]]] = {}
    untimed: set[str] = set()

    def timing(job: TrainJob) -> tuple[float, float] | None:
        profile, own = job.profile, (job.profile.name, job.profile.setting)
        if own not in timings:  # read the records of each profile (and study setting) once
            store = Store(results_dir, profile.name)
            timings[own] = _method_timings(store, profile)
            recorded[own] = _recorded_evals(store, profile)
        if job.method not in timings[own]:
            untimed.add(job.method)
            if not probe:
                return None
            timings[own][job.method] = probe_timing(job, data_root=data_root, device=device)
        return timings[own][job.method]

    planned = {job.train.key for job in plan.to_train}
    trained: set[str] = set()
    sources_trained: set[str] = set()
    seconds = []
    for job in plan.pending:
        profile, found = job.train.profile, timing(job.train)
        total = 0.0
        if found is not None:
            eval_per_unit, train_per_step = found
            total += _eval_seconds(job, eval_per_unit, recorded[profile.name, profile.setting])
            if job.train.key in planned and job.train.key not in trained:  # its first job trains it, the others wait
                trained.add(job.train.key)
                total += train_per_step * profile.steps
        source = job.transfer_source if job.probes_masking else None
        if (source is not None and source.key not in planned and source.key not in sources_trained
                and not trained_current(source, Store(results_dir, source.profile.name))):
            sources_trained.add(source.key)
            source_timing = timing(source)
            total += 0.0 if source_timing is None else source_timing[1] * source.profile.steps
        seconds.append(total)
    return seconds, sorted(untimed)


def makespan(job_seconds: Sequence[float], workers: int) -> float:
    """Seconds until the last job ends when `workers` take the jobs in order, each the next job as soon as it is free
    (the launchers' queue), so that a few long jobs are not averaged away."""
    free = [0.0] * max(1, workers)
    for seconds in job_seconds:
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def _recorded_evals(store: Store, profile: Profile) -> dict[tuple[str, str], list[dict]]:
    """The store's eval records of the profile's study setting that say their seconds per attack and eps (`attack_s`),
    by (method, dataset)."""
    found: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in _of_setting(store.records("eval"), profile):
        if "attack_s" in r:
            found[r["method"], r["dataset"]].append(r)
    return found


def _eval_seconds(job: EvalJob, eval_per_unit: float, recorded: dict[tuple[str, str], list[dict]]) -> float:
    """Seconds of one evaluation. With records of its method that say their seconds per attack and eps (those of its
    dataset when there are any): the median of their parts other than the attacks (eval_parts_s; the masking probe
    only if the job attacks) plus, per attack and eps > 0 of the job, the median seconds of that attack at that eps
    (its dataset's records first, then the method's others), or where none ran it and the job runs it itself
    (runs_alone) its cost (attack_eps_cost) x `eval_per_unit`. Without such records: `eval_per_unit` x the job's
    whole cost (_attack_cost)."""
    profile, method, robust = job.train.profile, job.train.method, _robust(job.train.method)
    same = recorded.get((method, job.train.dataset), [])
    others = [r for (m, dataset), records in recorded.items() if m == method and dataset != job.train.dataset
              for r in records]
    if not same and not others:
        return eval_per_unit * _attack_cost(job.attacks, job.eps, profile, robust=robust)
    attacked = [e for e in job.eps if e > 0]
    skipped = {"attacks"} if job.attacks and attacked else {"attacks", "masking_probe"}
    seconds = median_high([sum(s for part, s in r["eval_parts_s"].items() if part not in skipped)
                           for r in same or others])
    for attack in job.attacks:
        for e in attacked:
            label = eps_label(e)
            measured = ([r["attack_s"][attack][label] for r in same if label in r["attack_s"].get(attack, {})]
                        or [r["attack_s"][attack][label] for r in others if label in r["attack_s"].get(attack, {})])
            if measured:
                seconds += median_high(measured)
            elif runs_alone(attack, job.attacks):
                seconds += eval_per_unit * attack_eps_cost(attack, e, job.eps, profile, robust=robust)
    return seconds


def pretraining_seconds(profiles: Sequence[Profile]) -> float:
    """Seconds the synthetic pretraining of the profiles' models will take before the jobs start (it runs once, in
    the launching process: benchmark/execute.py pretrain_once), 0 for a backbone already cached. Timed here like
    the jobs' probe: a small corpus and PRETRAIN_PROBE_STEPS steps of the model, scaled to the declared corpus
    and steps (benchmark/pretraining.py DEFAULT_CONFIG), under the jobs' numerics."""
    config, total = DEFAULT_CONFIG, 0.0
    models = {p.model for p in profiles if uses_synthetic_pretraining(p) and not pretrained_path(p.model).is_file()}
    for model in sorted(models):
        with job_numerics("cpu"), torch.random.fork_rng(devices=[]):  # timing only: the global RNG is left alone
            start = time.perf_counter()
            make_corpus(PRETRAIN_PROBE_IMAGES, classes=config.classes, seed=config.seed)
            corpus = (time.perf_counter() - start) * (config.images + config.held_out) / PRETRAIN_PROBE_IMAGES
            net = build_model(model, num_classes=config.classes, dropout=0.0).train()
            optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
            x = torch.rand(config.batch_size, 3, 32, 32)
            y = torch.arange(config.batch_size) % config.classes
            times = []
            for _ in range(PRETRAIN_PROBE_STEPS):
                start = time.perf_counter()
                loss = F.cross_entropy(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                times.append(time.perf_counter() - start)
        total += corpus + median_high(times[1:]) * config.steps
    return total


def resources_to_provide(jobs: Sequence[EvalJob]) -> dict[str, tuple[Profile, list[Resource]]]:
    """Per dataset of the jobs, with its first job's profile (the image size it is loaded at), the resources of the
    attacks its jobs run at an eps > 0 (SCA's DDPM): what benchmark/execute.py provide_resources builds, each once."""
    found: dict[str, tuple[Profile, list[Resource]]] = {}
    for job in jobs:
        if any(e > 0 for e in job.eps):
            profile, resources = found.setdefault(job.train.dataset, (job.train.profile, []))
            resources.extend(r for r in resources_of(job.attacks) if r not in resources)
    return {dataset: entry for dataset, entry in found.items() if entry[1]}


def resource_seconds(jobs: Sequence[EvalJob], *, data_root: str | None, device: str = "auto") -> dict[str, float]:
    """Seconds of building the attacks' resources not built yet (Resource.building_seconds: SCA's DDPM), by what the
    plan line calls them (`diffusion for shapes`): once per dataset (resources_to_provide), since they are built in
    the launching process before the jobs start; timed under the jobs' numerics."""
    dev, found = resolve_device(device), {}
    for dataset, (profile, resources) in resources_to_provide(jobs).items():
        for resource in resources:
            if resource.building_seconds is None:
                continue
            with job_numerics(dev), torch.random.fork_rng(devices=[]):  # timing only: the global RNG is left alone
                seconds = resource.building_seconds(load_dataset_for(dataset, data_root, profile), device=dev)
            if seconds:
                found[f"{resource.name} for {dataset}"] = seconds
    return found


def planned_time(job_seconds: Sequence[float], workers: int, launcher: str, *,
                 first: dict[str, float] | None = None) -> str:
    """The plan's time estimate from each pending job's seconds: on one worker, and on the workers the launcher will
    use (makespan); `first`: seconds of each work done here before any job starts, by name (a pretraining, an attack's
    resource not cached yet), counted in both."""
    before_jobs = sum((first or {}).values())
    used = max(1, min(workers, len(job_seconds)))
    text = f"estimated {(before_jobs + sum(job_seconds)) / 60:.1f} min on one worker"
    parts = [f"{s / 60:.1f} min of {name}" for name, s in (first or {}).items() if s]
    before = f" (including {' and '.join(parts)} first: not cached)" if parts else ""
    if launcher == "local":
        return text + " (launcher local: one job at a time in this process)" + before
    return (text + f", about {(before_jobs + makespan(job_seconds, used)) / 60:.1f} min on {workers} "
            f"worker{'s' * (workers > 1)} ({launcher})" + before)
