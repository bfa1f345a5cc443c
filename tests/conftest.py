"""Test-wide settings: one torch thread (the suite runs on 2-core machines, often beside other work), a private
cache for generated benchmarks, inherited by CLI subprocesses, and the end-to-end tests' profile `e2e`
(tests/e2e_profile.py). Also the trainings that several modules need identically, done once per session."""

from __future__ import annotations

import copy
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from attacks.sca.ddpm import DDPMConfig, Diffusion, train_ddpm
from benchmark.data import ArrayDataset, Benchmark, load_benchmark, split_indices
from benchmark.data.synthetic import domain_arrays
from benchmark.models import Classifier, build_model
from benchmark.numerics import keep_freed_memory
from benchmark.plugins import load_file
from benchmark.store import locked
from benchmark.train import seed_everything, train
from methods import METHODS

#: the end-to-end tests' profile, a plugin file (registered in this process by pytest_configure)
E2E_PROFILE_FILE = Path(__file__).with_name("e2e_profile.py")
#: the command-line flags that run a grid under it (a subprocess loads the plugin; here loading it again is a no-op)
E2E_ARGS = ("--plugins", str(E2E_PROFILE_FILE), "--profile", "e2e")

#: the environment variable naming this test run's folder (pytest_configure)
TEST_RUN_FOLDER = "EGAT_BENCH_TEST_RUN"

#: a small, briefly trained DDPM for SCA (the real one is trained once per dataset and cached)
QUICK_TEST_DDPM = DDPMConfig(channels=(16, 32), steps=150, batch_size=32, lr=3e-3)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("EGAT_BENCH_CACHE", tempfile.mkdtemp(prefix="egat-bench-cache-"))
    # this run's own folder, which pytest-xdist's workers inherit from the controlling process (once_per_run)
    os.environ.setdefault(TEST_RUN_FOLDER, tempfile.mkdtemp(prefix="egat-bench-test-run-"))
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    keep_freed_memory()  # as every job does (benchmark/numerics.py): no number changes, no page-faulting
    load_file(E2E_PROFILE_FILE)


def once_per_run(name: str, build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`build()` (tensors by name) once per test run, shared by pytest-xdist's workers through the run's own folder
    (TEST_RUN_FOLDER, made by the controlling process before its workers start, new for every run, so a saved
    fixture is never of older code): the first worker builds it under a lock and saves it, the others wait and load
    it (weights_only: tensors only), so the 2-worker suite does not train the same model twice."""
    path = Path(os.environ[TEST_RUN_FOLDER]) / f"{name}.pt"
    with locked(path.with_suffix(".lock")):
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        tensors = build()
        torch.save(tensors, path)
    return tensors


@pytest.fixture(scope="session")
def erm_cnn_on_shapes() -> Callable[[], Classifier]:
    """A factory of copies, in eval mode, of one quick ERM cnn trained once per test run (once_per_run): 400 steps
    from seed 0 on the cue-free twins of the first domain of `shapes` (test_attack_sanity, test_sca and test_masking
    share it), so that it relies on the objects like the paper's undefended models: trained on the tinted images, a
    from-scratch cnn reads only the background tint, whose margin (0.32) no eps of the tests can flip. Each call
    also puts python's, numpy's and torch's global RNGs where that training left them."""
    bench = load_benchmark("shapes")

    def build() -> dict[str, torch.Tensor]:
        arrays = {k: torch.from_numpy(v) for k, v in domain_arrays("shapes", 0).items()}
        twins = ArrayDataset(arrays["cue_free"], arrays["labels"].long(), 0, arrays["masks"], arrays["envs"].long())
        train_idx, val_idx, _ = split_indices(len(twins))
        seed_everything(0)
        model = build_model("cnn", bench.num_classes)
        result = train(METHODS.get("erm")(model, {}), Subset(twins, train_idx.tolist()),
                       Subset(twins, val_idx.tolist()), steps=400, batch_size=32, lr=2e-3, eval_every=50, seed=0,
                       progress=False)
        numpy_state = np.random.get_state()
        return {**{f"weights.{k}": v for k, v in result.best_state.items()},
                "rng.python": torch.tensor(random.getstate()[1], dtype=torch.int64),
                "rng.numpy": torch.from_numpy(numpy_state[1].astype(np.int64)),
                "rng.numpy_position": torch.tensor([numpy_state[2], numpy_state[3]], dtype=torch.int64),
                "rng.numpy_gauss": torch.tensor(numpy_state[4], dtype=torch.float64),
                "rng.torch": torch.get_rng_state()}

    saved = once_per_run("erm_cnn_on_shapes", build)
    model = build_model("cnn", bench.num_classes)
    model.load_state_dict({k.removeprefix("weights."): v for k, v in saved.items() if k.startswith("weights.")})
    model.eval()
    python_state = (3, tuple(saved["rng.python"].tolist()), None)
    numpy_state = ("MT19937", saved["rng.numpy"].numpy().astype(np.uint32), *saved["rng.numpy_position"].tolist(),
                   saved["rng.numpy_gauss"].item())

    def copy_of_model() -> Classifier:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(saved["rng.torch"])
        return copy.deepcopy(model).eval()

    return copy_of_model


@pytest.fixture(scope="session")
def ddpm_on_shapes() -> Callable[[], Diffusion]:
    """A factory of copies, in eval mode, of the QUICK_TEST_DDPM trained once per test run (once_per_run) on the
    first domain of `shapes` (test_attack_sanity and test_sca each trained it). train_ddpm is seeded by its config
    and leaves the global RNG alone (test_sca checks both), so sharing it changes nothing else."""
    state = once_per_run("ddpm_on_shapes", lambda: train_ddpm(
        QUICK_TEST_DDPM, load_benchmark("shapes").domains[0].train, progress=False).diffusion.state_dict())
    diffusion = Diffusion(QUICK_TEST_DDPM)
    diffusion.load_state_dict(state)
    return lambda: copy.deepcopy(diffusion).eval()


def reduced(bench: Benchmark, test: int = 400, whole: int = 2000) -> Benchmark:
    """`bench` with each domain's test split (and cue-free twins) cut to its first `test` images and each whole
    domain to its first `whole`: generator v2's sizes, so that evaluation-heavy tests cost what they did."""

    def head(subset: Subset, n: int) -> Subset:
        return Subset(subset.dataset, list(subset.indices)[:n])

    domains = tuple(replace(d, test=head(d.test, test), full=Subset(d.full, list(range(min(whole, len(d.full))))),
                            cue_free=None if d.cue_free is None else head(d.cue_free, test)) for d in bench.domains)
    return replace(bench, domains=domains)
