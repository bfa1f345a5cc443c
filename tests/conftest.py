"""Test-wide settings: one torch thread (the suite runs on 2-core machines, often beside other work)
and a private cache for generated benchmarks, inherited by CLI subprocesses. Also the trainings that
several modules need identically, done once per session."""

from __future__ import annotations

import copy
import os
import random
import tempfile
from collections.abc import Callable

import numpy as np
import pytest
import torch

from attacks.sca.ddpm import DDPMConfig, Diffusion, train_ddpm
from benchmark.data import load_benchmark
from benchmark.models import Classifier, build_model
from benchmark.train import seed_everything, train
from methods import METHODS

#: a small, briefly trained DDPM for SCA (the real one is trained once per dataset and cached)
QUICK_TEST_DDPM = DDPMConfig(channels=(16, 32), steps=150, batch_size=32, lr=3e-3)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("EGAT_BENCH_CACHE", tempfile.mkdtemp(prefix="egat-bench-cache-"))
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def erm_cnn_on_shapes() -> Callable[[], Classifier]:
    """A factory of copies, in eval mode, of one quick ERM cnn trained once per session: 150 steps on the
    first domain of `shapes` from seed 0 (test_attack_sanity and test_sca each trained this same model).
    Each call also puts python's, numpy's and torch's global RNGs where that training left them, so what
    runs after it sees the RNG state it saw when every module trained its own copy."""
    bench = load_benchmark("shapes")
    domain = bench.domains[0]
    seed_everything(0)
    model = build_model("cnn", bench.num_classes)
    result = train(METHODS.get("erm")(model, {}), domain.train, domain.val, steps=150, batch_size=32, lr=2e-3,
                   eval_every=50, seed=0, progress=False)
    model.load_state_dict(result.best_state)
    model.eval()
    after = random.getstate(), np.random.get_state(), torch.get_rng_state()

    def copy_of_model() -> Classifier:
        random.setstate(after[0])
        np.random.set_state(after[1])
        torch.set_rng_state(after[2])
        return copy.deepcopy(model).eval()

    return copy_of_model


@pytest.fixture(scope="session")
def ddpm_on_shapes() -> Callable[[], Diffusion]:
    """A factory of copies, in eval mode, of the QUICK_TEST_DDPM trained once per session on the first
    domain of `shapes` (test_attack_sanity and test_sca each trained it). train_ddpm is seeded by its
    config and leaves the global RNG alone (test_sca checks both), so sharing it changes nothing else."""
    diffusion = train_ddpm(QUICK_TEST_DDPM, load_benchmark("shapes").domains[0].train, progress=False).diffusion
    return lambda: copy.deepcopy(diffusion).eval()
