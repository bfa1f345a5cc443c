"""The grid's plan estimate: scaled from finished jobs' timings, weighted per attack, probed when none."""

from __future__ import annotations

import pytest
import torch

from attacks import ATTACKS
from benchmark.config import PROFILES
from benchmark.grid import Plan, estimate_seconds
from benchmark.jobs import EvalJob, make_train_job
from benchmark.store import Store

QUICK = PROFILES.get("quick")


def test_every_attack_has_a_relative_cost():
    assert all(ATTACKS.get(name).cost > 0 for name in ATTACKS)


def _timed_store(tmp_path) -> None:
    """ERM finished once: 40 s for 400 training steps, 12 s to evaluate PGD at one eps (2 cost units)."""
    store = Store(tmp_path, "quick")
    store.write({"kind": "train", "key": "t", "method": "erm", "total_time_s": 40.0, "config": {"steps": 400}})
    store.write({"kind": "eval", "key": "e", "method": "erm", "eval_time_s": 12.0,
                 "config": {"attacks": ["pgd"], "eps": [0.02]}})


def test_estimate_scales_finished_timings_by_steps_and_attack_cost(tmp_path):
    _timed_store(tmp_path)
    train = make_train_job(QUICK, "shapes", "street", "erm", 0)
    sca_grid = EvalJob(train, ("fgsm", "sca"), (0.0, 0.01, 0.02))  # 1 + (0.1 + 10) x 2 = 21.2 units
    pgd_only = EvalJob(train, ("pgd",), (0.02,))  # 2 units
    seconds, probed = estimate_seconds(Plan([], [sca_grid], [pgd_only]), str(tmp_path), probe=False)
    assert probed == []
    assert seconds == pytest.approx(6.0 * 21.2 + 0.1 * 400 + 6.0 * 2)


def test_methods_without_finished_jobs_are_probed_or_listed(tmp_path):
    _timed_store(tmp_path)
    job = EvalJob(make_train_job(QUICK, "shapes", "studio", "sgdrop", 0), ("pgd",), (0.02,))
    assert estimate_seconds(Plan([], [job], []), str(tmp_path), probe=False) == (0.0, ["sgdrop"])
    threads = torch.get_num_threads()
    seconds, probed = estimate_seconds(Plan([], [job], []), str(tmp_path))
    assert probed == ["sgdrop"] and seconds > 0
    assert torch.get_num_threads() == threads  # the probe ran with the jobs' numerics, then restored ours
