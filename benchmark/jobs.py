"""Train and eval jobs: their identity (content-hash keys of the semantic config) and execution.

A train job is (profile settings, dataset, domain, method, hyperparameters, seed); its eval job adds
the evaluation settings. Keys never include paths or devices, so a results folder can move between
machines and a cluster writes the same keys as a laptop. Executing an eval job trains first when
its checkpoint is missing ("train once, evaluate many").

A finished eval job needs only its records, not the checkpoint (committed stores carry no checkpoints):
an eval record names the digest of the weights it evaluated, and stops being current when a retraining
(of a checkpoint lost, on a CPU whose float rounding differs) writes other weights into its train record.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch

from attacks import ATTACKS, resources_of
from benchmark.config import LOOP_SETTINGS, Profile
from benchmark.data import DATASETS, Benchmark, load_benchmark
from benchmark.evaluate import evaluate
from benchmark.explain import EXPLAINERS
from benchmark.fingerprint import fingerprint, is_current
from benchmark.metrics import METRICS
from benchmark.models import MODELS, Classifier, build_model
from benchmark.numerics import job_numerics
from benchmark.plugins import digests
from benchmark.pretraining import pretrain_identity, starting_backbone, uses_synthetic_pretraining
from benchmark.provenance import same_weights
from benchmark.registry import Registry, UserError
from benchmark.store import Store, content_key, versions
from benchmark.train import seed_everything, train
from benchmark.tuned import tuned_values
from methods import METHODS, Method, method_hparams
from methods.guides import GUIDES

#: bump when a change to training code changes what a train job produces
TRAIN_VERSION = 2
#: bump when a change to evaluation code changes what an eval job produces
EVAL_VERSION = 4
#: the undefended reference whose PGD examples the masking probe transfers (benchmark/masking.py)
TRANSFER_SOURCE_METHOD = "erm"


def with_plugins(config: dict[str, Any], entries: list[tuple[Registry, str | None]]) -> dict[str, Any]:
    """`config` plus `plugins`: the content digest of every plugin among the registry entries a job uses (none:
    the config is unchanged, so keys of jobs using only the package's own entries never change)."""
    plugins = digests(entries)
    return {**config, "plugins": plugins} if plugins else config


@dataclass(frozen=True, eq=False)
class TrainJob:
    """One training run. Its identity is `key` (field equality would ignore profile and hyperparameters)."""

    profile: Profile
    dataset: str
    domain: str
    method: str
    seed: int
    hparams: dict[str, Any] = field(default_factory=dict)
    #: the profile's loop settings this job sets otherwise (LOOP_SETTINGS: lr, dropout), e.g. a sweep's draw
    loop: dict[str, Any] = field(default_factory=dict)
    #: where its hyperparameters come from, as tables state it (not part of the key: same values, same job)
    tuning: str = "declared defaults (untuned)"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.loop) - set(LOOP_SETTINGS))
        if unknown:
            raise UserError(f"loop settings {', '.join(unknown)} cannot be set per job; "
                            f"valid: {', '.join(LOOP_SETTINGS)}")

    @property
    def settings(self) -> dict[str, Any]:
        """The profile's training settings with this job's loop settings in place."""
        return {**self.profile.train_settings(), **self.loop}

    def config(self) -> dict[str, Any]:
        """The semantic configuration that determines the trained weights (with the content digest of each
        plugin it uses: its method, dataset, model, explainer or guide)."""
        config = {"version": TRAIN_VERSION, "dataset": self.dataset,
                  "data_version": DATASETS.get(self.dataset).version, "domain": self.domain, "method": self.method,
                  "seed": self.seed, "hparams": self.hparams, **self.settings}
        if uses_synthetic_pretraining(self.profile):  # which synthetic pretraining it starts from
            config["pretrain"] = pretrain_identity(self.profile.model)
        if self.profile.setting is not None:  # a study setting's job (make_train_job: only where it changes the job)
            config["setting"] = self.profile.setting
        return with_plugins(config, [(METHODS, self.method), (DATASETS, self.dataset), (MODELS, self.profile.model),
                                     (EXPLAINERS, self.hparams.get("explainer")), (GUIDES, self.hparams.get("guide"))])

    @property
    def key(self) -> str:
        return content_key(self.config())

    def fingerprint(self) -> dict[str, Any]:
        """The code that decides what this training produces: its method's, dataset's and model's modules, where
        the model's starting weights come from (`new_model`), the loop and the numeric settings, with everything
        they import (benchmark/fingerprint.py)."""
        return fingerprint([METHODS.get(self.method).cls.__module__, DATASETS.get(self.dataset).load.__module__,
                            MODELS.get(self.profile.model).__module__, starting_backbone.__module__,
                            "benchmark.train", "benchmark.numerics"])


@dataclass(frozen=True, eq=False)
class EvalJob:
    """Evaluation of one trained model: clean, out-of-domain, attacks x eps, masking probe, explanation metrics.
    Identity: `key`. `transfer_source`: the same dataset, domain and seed's ERM training, whose PGD examples the
    masking probe transfers (None for ERM itself); it is trained first when missing."""

    train: TrainJob
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    transfer_source: TrainJob | None = None

    @property
    def probes_masking(self) -> bool:
        """Whether the evaluation runs the gradient-masking probe: whenever an attack runs at an eps > 0."""
        return bool(self.attacks) and any(e > 0 for e in self.eps)

    def config(self) -> dict[str, Any]:
        profile = self.train.profile
        config = {"version": EVAL_VERSION, "train_key": self.train.key, "attacks": list(self.attacks),
                  "eps": list(self.eps), "attack_steps": profile.attack_steps,
                  "faithfulness_images": profile.faithfulness_images}
        if profile.ood_images is not None:  # only then: the keys of profiles that read whole domains never change
            config["ood_images"] = profile.ood_images
        settings = {a: profile.attack_params(a) for a in self.attacks if profile.attack_params(a)}
        if settings:
            config["attack_params"] = settings
        images = {a: profile.attack_images(a) for a in self.attacks if profile.attack_images(a) is not None}
        if images:  # only then: the keys of evaluations that attack the whole split never change
            config["attack_images"] = images
        if self.probes_masking:
            config["large_eps"] = profile.large_eps
            config["probe_images"] = profile.probe_images
            config["transfer_source"] = None if self.transfer_source is None else self.transfer_source.key
        for resource in resources_of(self.attacks):  # e.g. SCA's numbers depend on the DDPM it attacks through
            config[resource.config_key] = resource.version
        # every evaluation computes every declared metric, a plugin's included
        return with_plugins(config, [*((ATTACKS, attack) for attack in self.attacks), *((METRICS, m) for m in METRICS)])

    @property
    def key(self) -> str:
        return content_key(self.config())

    def fingerprint(self) -> dict[str, Any]:
        """The code that decides the metrics of a trained model: the evaluation, its attacks' modules, the
        dataset's and the model's modules and the numeric settings, with everything they import."""
        return fingerprint(["benchmark.evaluate", "benchmark.numerics", *(ATTACKS.get(a).module for a in self.attacks),
                            DATASETS.get(self.train.dataset).load.__module__,
                            MODELS.get(self.train.profile.model).__module__])


def transfer_source_for(job: TrainJob, *, tuned: bool = True) -> TrainJob | None:
    """The ERM training whose examples the masking probe transfers to `job`'s model (None when `job` is ERM)."""
    if job.method == TRANSFER_SOURCE_METHOD:
        return None
    return make_train_job(job.profile, job.dataset, job.domain, TRANSFER_SOURCE_METHOD, job.seed, tuned=tuned)


def trained_current(job: TrainJob, store: Store) -> bool:
    """Whether the job's training is done by the current code: a valid record and the checkpoint exist, and the
    record's fingerprint matches (an invalid record file is no record: benchmark/store.py)."""
    record = store.get("train", job.key)
    return record is not None and store.checkpoint_path(job.key).is_file() and is_current(record.get("fingerprint"))


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """A short hash of a state_dict's names, dtypes, shapes and values: which weights a record was made from."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(state[name].shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def evaluated_current(job: EvalJob, store: Store) -> bool:
    """Whether the job's eval record exists, it and its training are the current code's, and it evaluated the
    weights its train record (and its transfer source's) names. The checkpoint itself is not needed; an invalid
    record file is no record (benchmark/store.py)."""
    record, train_record = store.get("eval", job.key), store.get("train", job.train.key)
    if record is None or train_record is None:
        return False
    recorded = record.get("fingerprint") or {}
    if not (is_current(recorded.get("eval")) and is_current(recorded.get("train"))
            and is_current(train_record.get("fingerprint"))):
        return False
    weights = record.get("weights_digest") or {}
    if not same_weights(weights.get("model"), train_record.get("weights_digest")):
        return False
    source = job.transfer_source if job.probes_masking else None
    if source is None or weights.get("transfer_source") is None:
        return True
    source_record = store.get("train", source.key)
    return source_record is not None and same_weights(weights["transfer_source"], source_record.get("weights_digest"))


def make_train_job(profile: Profile, dataset: str, domain: str, method: str, seed: int,
                   overrides: dict[str, str] | None = None, *, tuned: bool = True) -> TrainJob:
    """A train job with the method's hyperparameters resolved for the profile: with `tuned`, the values the
    profile's committed sweep selected for (dataset, method) where it has them (benchmark/tuned.py); user
    overrides last. Under a study setting (Profile.setting), a job the setting does not change is its reference
    profile's job."""
    job = _train_job(profile, dataset, domain, method, seed, overrides, tuned=tuned)
    if profile.reference is None:
        return job
    shared = make_train_job(profile.reference, dataset, domain, method, seed, overrides, tuned=tuned)
    return shared if {**job.config(), "setting": None} == {**shared.config(), "setting": None} else job


def _train_job(profile: Profile, dataset: str, domain: str, method: str, seed: int,
               overrides: dict[str, str] | None, *, tuned: bool) -> TrainJob:
    selected = tuned_values(profile.name, dataset, method) if tuned else None
    if selected is None:
        return TrainJob(profile, dataset, domain, method, seed, method_hparams(method, profile, overrides))
    loop = {k: v for k, v in selected.loop.items() if v != profile.train_settings()[k]}
    return TrainJob(profile, dataset, domain, method, seed,
                    method_hparams(method, profile, overrides, tuned=selected.hparams), loop, selected.description)


@cache
def _benchmark(dataset: str, data_root: str | None, image_size: int | None) -> Benchmark:
    return load_benchmark(dataset, data_root=data_root, image_size=image_size)


def load_dataset_for(dataset: str, data_root: str | None, profile: Profile) -> Benchmark:
    """A dataset at the profile's image size, loaded once per process."""
    return _benchmark(dataset, data_root, profile.image_size)


def benchmark_for(job: TrainJob, data_root: str | None) -> Benchmark:
    """The benchmark a job trains on (cached per process)."""
    return load_dataset_for(job.dataset, data_root, job.profile)


def new_model(job: TrainJob, num_classes: int) -> Classifier:
    """A freshly initialized model of the job's profile, from its pretrained backbone where the profile says so
    (seed first for reproducible weights)."""
    profile = job.profile
    return build_model(profile.model, num_classes, dropout=job.settings["dropout"],
                       backbone_state=starting_backbone(profile))


def new_method(job: TrainJob, bench: Benchmark) -> Method:
    """The job's method around a freshly initialized model, seeded by the job (reproducible weights)."""
    seed_everything(job.seed)
    model = new_model(job, bench.num_classes)
    return METHODS.get(job.method)(model, job.hparams, has_masks=bench.has_masks)


def trained_model(job: TrainJob, store: Store, data_root: str | None) -> Classifier:
    """The model of a finished training, its best checkpoint loaded (weights only)."""
    model = new_model(job, benchmark_for(job, data_root).num_classes)
    model.load_state_dict(store.load_checkpoint(job.key))
    return model


def resolve_device(device: str) -> torch.device:
    """`auto` is cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@cache
def machine() -> dict[str, str]:
    """The CPU a record was made on: its model and the instruction set torch's kernels dispatch to (AVX2,
    AVX512, ...). Same job, same code and the same capability give bit-identical metrics; another
    capability runs other kernels, whose float rounding differs (benchmark/verification.py says so)."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    return {"cpu": names[0] if names else platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def run_train(job: TrainJob, store: Store, *, data_root: str | None, device: str = "auto",
              progress: bool = True, stop_on_divergence: bool = False) -> dict[str, Any]:
    """Train (unless the current code's record exists: a stale one is redone, an invalid one moved aside first),
    save the best checkpoint, then the train record, under the fixed numerics of every job (benchmark/numerics.py)
    and the job's lock (a job another process runs is waited for, then read). A non-finite loss is a
    DivergedError, or with `stop_on_divergence` (sweeps) the record's `diverged_at` (benchmark/train.py)."""
    return _once(store, "train", job.key, lambda: trained_current(job, store),
                 lambda: _train(job, store, data_root=data_root, device=device, progress=progress,
                                stop_on_divergence=stop_on_divergence))


def _once(store: Store, kind: str, key: str, current: Callable[[], bool],
          compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A job's record, computed only where the current code's is missing: under the job's lock, the record a
    finished job (perhaps another grid's) left is read; an invalid one is moved aside before `compute` runs."""
    with store.job_lock(kind, key):
        if current():
            return store.read(kind, key)
        store.set_aside_invalid(kind, key)
        return compute()


def _train(job: TrainJob, store: Store, *, data_root: str | None, device: str, progress: bool,
           stop_on_divergence: bool) -> dict[str, Any]:
    profile = job.profile
    dev = resolve_device(device)
    bench = benchmark_for(job, data_root)
    domain = bench.domain(job.domain)
    with job_numerics(dev) as numerics:
        method = new_method(job, bench)
        result = train(method, domain.train, domain.val, steps=profile.steps, batch_size=profile.batch_size,
                       lr=job.settings["lr"], eval_every=profile.eval_every, seed=job.seed, device=dev,
                       progress=progress, desc=f"{job.method} {job.dataset}/{job.domain} s{job.seed}",
                       stop_on_divergence=stop_on_divergence)
    store.save_checkpoint(job.key, result.best_state)
    record = {
        "kind": "train", "key": job.key, "profile": job.profile.name, "dataset": job.dataset,
        "train_domain": job.domain, "method": job.method, "seed": job.seed, "config": job.config(),
        "tuning": job.tuning, "versions": versions(), "data": bench.description,
        "best_step": result.best_step, "best_val_acc": result.best_val_acc, "diverged_at": result.diverged_at,
        "curve": result.curve,
        "step_time_s": result.step_time_s, "steps_per_epoch": result.steps_per_epoch,
        "time_per_epoch_s": result.time_per_epoch_s, "total_time_s": result.total_time_s,
        "device": str(dev), "machine": machine(), "numerics": numerics, "fingerprint": job.fingerprint(),
        "weights_digest": weights_digest(result.best_state),
    }
    store.write(record)
    return record


def run_eval(job: EvalJob, store: Store, *, data_root: str | None, device: str = "auto",
             progress: bool = True, stop_on_divergence: bool = False) -> dict[str, Any]:
    """Evaluate a trained model (training it first if needed) and write the eval record, under the job's lock; a
    record of other code (stale fingerprint) is redone, an invalid one moved aside first."""
    return _once(store, "eval", job.key, lambda: evaluated_current(job, store),
                 lambda: _evaluate(job, store, data_root=data_root, device=device, progress=progress,
                                   stop_on_divergence=stop_on_divergence))


def _evaluate(job: EvalJob, store: Store, *, data_root: str | None, device: str, progress: bool,
              stop_on_divergence: bool) -> dict[str, Any]:
    train_record = run_train(job.train, store, data_root=data_root, device=device, progress=progress,
                             stop_on_divergence=stop_on_divergence)
    source = None
    if job.probes_masking and job.transfer_source is not None:
        run_train(job.transfer_source, store, data_root=data_root, device=device, progress=progress)
        source = trained_model(job.transfer_source, store, data_root)
    model = trained_model(job.train, store, data_root)
    weights = {"model": weights_digest(model.state_dict())}  # the loaded checkpoint's tensors, read once
    if source is not None:
        weights["transfer_source"] = weights_digest(source.state_dict())
    bench = benchmark_for(job.train, data_root)
    dev = resolve_device(device)
    start = time.perf_counter()
    with job_numerics(dev) as numerics:
        metrics = evaluate(model.to(dev), bench, job.train.domain, attacks=job.attacks, eps=job.eps,
                           profile=job.train.profile, seed=job.train.seed, device=dev, progress=progress,
                           transfer_source=None if source is None else source.to(dev))
    # measurements of this machine: beside eval_time_s, not among the metrics
    parts, attack_seconds = metrics.pop("eval_parts_s"), metrics.pop("attack_s")
    metrics["time_per_epoch_s"] = train_record["time_per_epoch_s"]
    record = {
        "kind": "eval", "key": job.key, "train_key": job.train.key, "profile": job.train.profile.name,
        "dataset": job.train.dataset, "train_domain": job.train.domain, "method": job.train.method,
        "seed": job.train.seed, "config": {**job.config(), "train": job.train.config(),
                                            **({} if job.transfer_source is None or not job.probes_masking else
                                               {"transfer_source_train": job.transfer_source.config()})},
        "tuning": job.train.tuning, "diverged_at": train_record.get("diverged_at"),
        "versions": versions(), "data": bench.description, "metrics": metrics,
        "eval_time_s": time.perf_counter() - start, "eval_parts_s": parts, "attack_s": attack_seconds,
        "train_time_s": train_record["total_time_s"],
        "device": str(dev), "machine": machine(), "numerics": numerics, "weights_digest": weights,
        "fingerprint": {"train": train_record["fingerprint"], "eval": job.fingerprint()},
    }
    store.write(record)
    return record
