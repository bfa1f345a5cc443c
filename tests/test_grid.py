"""The grid's plan estimate: scaled from finished jobs' timings, weighted per attack, probed when none."""

from __future__ import annotations

import pytest
import torch

from attacks import ATTACKS
from benchmark.config import PROFILES
from benchmark.estimate import estimate_seconds
from benchmark.grid import Plan
from benchmark.jobs import EvalJob, make_train_job, transfer_source_for
from benchmark.store import Store

QUICK = PROFILES.get("quick")
PROBED_PGD = 1 + 1 + 3 * 256 / 1000


def test_every_attack_has_a_relative_cost():
    assert all(ATTACKS.get(name).cost > 0 for name in ATTACKS)


def _timed(kind: str, key: str, method: str, **timing: object) -> dict:
    """A valid record of the quick store (benchmark/store.py REQUIRED_FIELDS) whose timing and config are `timing`."""
    record = {"kind": kind, "key": key, "profile": "quick", "dataset": "shapes", "train_domain": "studio",
              "method": method, "seed": 0, "versions": {}, "data": "shapes"}
    if kind == "train":
        record.update(best_step=1, best_val_acc=50.0, curve=[], time_per_epoch_s=1.0)
    else:
        record.update(train_key="t", metrics={})
    record.update(timing)
    if kind == "eval":
        record["config"] = {**record["config"], "train": {}}
    return record


def _timed_store(tmp_path) -> None:
    """ERM finished once: 40 s for 400 training steps, 11.08 s to evaluate PGD at one eps (PROBED_PGD units: the clean
    and explanation metrics, PGD, and the quick masking probe's three PGD runs on 256 of 1000 images: 0.768), so
    3 s per unit."""
    store = Store(tmp_path, "quick")
    store.write(_timed("train", "t", "erm", total_time_s=40.0, config={"steps": 400}))
    store.write(_timed("eval", "e", "erm", eval_time_s=3.0 * PROBED_PGD, config={"attacks": ["pgd"], "eps": [0.02]}))


def test_estimate_scales_finished_timings_by_steps_and_attack_cost(tmp_path):
    _timed_store(tmp_path)
    train = make_train_job(QUICK, "shapes", "street", "erm", 0)
    sca_grid = EvalJob(train, ("fgsm", "sca"), (0.0, 0.01, 0.02))  # 1 + (0.1 + 10) x 2 + 0.768 units
    pgd_only = EvalJob(train, ("pgd",), (0.02,))  # PROBED_PGD units
    seconds, probed = estimate_seconds(Plan([], [sca_grid], [pgd_only]), str(tmp_path), probe=False)
    assert probed == []
    assert seconds == pytest.approx(3.0 * (1 + 10.1 * 2 + 0.768) + 0.1 * 400 + 3.0 * PROBED_PGD)


def test_estimate_takes_the_profiles_attack_cost_and_the_transfer_sources_training(tmp_path):
    """Table I's evaluation (PGD-10 and the quick profile's aa on the first 500 of the 1000 test images) of an EGAT
    model, which trains on PGD, so aa costs a robust model's; its ERM transfer source is not trained and not in the
    plan: ERM's 400 steps are counted once. ERM's own evaluation costs aa's undefended cost."""
    _timed_store(tmp_path)
    store = Store(tmp_path, "quick")
    store.write(_timed("train", "t2", "egat", total_time_s=200.0, config={"steps": 400}))
    store.write(_timed("eval", "e2", "egat", eval_time_s=3.0 * PROBED_PGD, config={"attacks": ["pgd"], "eps": [0.02]}))
    train = make_train_job(QUICK, "shapes", "street", "egat", 0)
    job = EvalJob(train, ("pgd", "aa"), (0.02,), transfer_source_for(train))
    seconds, _ = estimate_seconds(Plan([], [], [job, job]), str(tmp_path), probe=False)
    aa = QUICK.attack_settings["aa"]
    assert aa.images == 500 and aa.robust_cost > aa.cost  # robust points cost the worst case more
    units = 1 + (1 + aa.robust_cost * 500 / 1000) + 3 * 256 / 1000
    assert seconds == pytest.approx(2 * 3.0 * units + 0.1 * 400)
    erm = EvalJob(make_train_job(QUICK, "shapes", "street", "erm", 0), ("pgd", "aa"), (0.02,))
    seconds, _ = estimate_seconds(Plan([], [], [erm]), str(tmp_path), probe=False)
    assert seconds == pytest.approx(3.0 * (1 + (1 + aa.cost * 500 / 1000) + 3 * 256 / 1000))


def test_methods_without_finished_jobs_are_probed_or_listed(tmp_path):
    _timed_store(tmp_path)
    job = EvalJob(make_train_job(QUICK, "shapes", "studio", "sgdrop", 0), ("pgd",), (0.02,))
    assert estimate_seconds(Plan([], [job], []), str(tmp_path), probe=False) == (0.0, ["sgdrop"])
    threads = torch.get_num_threads()
    seconds, probed = estimate_seconds(Plan([], [job], []), str(tmp_path))
    assert probed == ["sgdrop"] and seconds > 0
    assert torch.get_num_threads() == threads  # the probe ran with the jobs' numerics, then restored ours


def test_an_uncached_pretraining_is_timed_before_the_jobs_and_a_cached_one_costs_nothing(tmp_path, monkeypatch):
    from dataclasses import replace

    from benchmark.estimate import planned_time, pretraining_seconds
    from benchmark.pretraining import DEFAULT_CONFIG, pretrained_path

    monkeypatch.setenv("EGAT_BENCH_CACHE", str(tmp_path))
    threads = torch.get_num_threads()
    seconds = pretraining_seconds([QUICK])
    assert torch.get_num_threads() == threads
    # at least the declared steps at a plausible per-step floor (64 images of 32x32 through the cnn, > 1 ms)
    assert seconds > DEFAULT_CONFIG.steps * 1e-3
    assert pretraining_seconds([replace(QUICK, pretrained=False)]) == 0.0
    path = pretrained_path(QUICK.model)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"cached")
    assert pretraining_seconds([QUICK]) == 0.0
    line = planned_time(600.0, 10, 2, "processes", first=120.0)
    assert line == ("estimated 12.0 min on one worker, about 7.0 min on 2 workers (processes) "
                    "(including 2.0 min of pretraining first: not cached)")
