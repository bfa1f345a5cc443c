"""The grid's plan estimate: scaled from finished jobs' timings, weighted per attack, probed when none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from attacks import ATTACKS
from attacks.sca import cache as ddpm_cache
from benchmark.config import CHAIN_SURVIVAL, EXTENDED_EPS_GRID, PROFILES
from benchmark.estimate import (
    attack_eps_cost,
    chain_survival,
    estimate_seconds,
    makespan,
    masking_probe_cost,
    planned_time,
    resource_seconds,
)
from benchmark.grid import Plan
from benchmark.jobs import EvalJob, load_dataset_for, make_train_job, transfer_source_for
from benchmark.store import Store

QUICK = PROFILES.get("quick")
#: PGD-10 at one eps with the probe: the transfer and the large eps on 256 images (white box: the grid's table PGD)
PROBED_PGD = 1 + 1 + 2 * 256 / 1000


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
    units = 1 + (1 + aa.robust_cost * 500 / 1000) + 2 * 256 / 1000
    assert seconds == pytest.approx(2 * 3.0 * units + 0.1 * 400)
    erm = EvalJob(make_train_job(QUICK, "shapes", "street", "erm", 0), ("pgd", "aa"), (0.02,))
    seconds, _ = estimate_seconds(Plan([], [], [erm]), str(tmp_path), probe=False)
    assert seconds == pytest.approx(3.0 * (1 + (1 + aa.cost * 500 / 1000) + 2 * 256 / 1000))


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

    from benchmark.estimate import pretraining_seconds
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
    line = planned_time([60.0] * 10, 2, "processes", first={"pretraining": 120.0, "diffusion for shapes": 0.0})
    assert line == ("estimated 12.0 min on one worker, about 7.0 min on 2 workers (processes) "
                    "(including 2.0 min of pretraining first: not cached)")
    # one long job decides the wall time: 2 workers take [600, 60, 60] in order, the second does both short ones
    assert makespan([600.0, 60.0, 60.0], 2) == 600.0 and makespan([60.0, 60.0, 600.0], 2) == 660.0
    assert "about 10.0 min on 2 workers" in planned_time([600.0, 60.0, 60.0], 2, "processes")


def test_a_chained_attack_costs_less_at_the_eps_it_runs_on_survivors_only(monkeypatch):
    """Square chained (its declaration replaced here, so the test holds whatever it declares): at the first eps > 0
    and the table eps it costs an independent run, at every other eps its cost times the share robust at the eps
    before it, less on an undefended model, whose points break sooner; an attack that is not chained always costs
    the independent run."""
    monkeypatch.setitem(ATTACKS._items, "square", SimpleNamespace(**{**vars(ATTACKS.get("square")), "chained": True}))
    square, grid = QUICK.attack_settings["square"], EXTENDED_EPS_GRID
    for robust in (False, True):
        independent = square.cost_on(robust=robust) * square.images / 1000  # on its first 500 of 1000 test images
        for e in (0.01, 0.02):
            assert attack_eps_cost("square", e, grid, QUICK, robust=robust) == independent
        for before, e in zip((0.02, 0.03, 0.04, 0.06, 0.08), (0.03, 0.04, 0.06, 0.08, 0.1), strict=True):
            chained = attack_eps_cost("square", e, grid, QUICK, robust=robust)
            assert chained == pytest.approx(independent * CHAIN_SURVIVAL[robust][before])
            assert chained < independent
        assert {attack_eps_cost("pgd", e, grid, QUICK, robust=robust) for e in grid[1:]} == {1.0}
    assert (attack_eps_cost("square", 0.04, grid, QUICK, robust=False)
            < attack_eps_cost("square", 0.04, grid, QUICK, robust=True))

    # a grid of its own: the eps before 0.05 is 0.015, between the declared 0.01 and 0.02
    share = chain_survival(0.015, robust=True)
    assert share == pytest.approx((CHAIN_SURVIVAL[True][0.01] + CHAIN_SURVIVAL[True][0.02]) / 2)
    assert attack_eps_cost("square", 0.05, (0.0, 0.015, 0.05), QUICK, robust=True) == pytest.approx(
        square.cost_on(robust=True) * square.images / 1000 * share)
    assert chain_survival(0.0, robust=False) == 1.0
    assert chain_survival(1.0, robust=False) == CHAIN_SURVIVAL[False][max(CHAIN_SURVIVAL[False])]


def _attack_timed(dataset: str, parts: dict[str, float], attack_s: dict[str, dict[str, float]], key: str) -> dict:
    """An ERM eval record of `dataset` that says its seconds per part and per attack and eps, evaluated at 3 s per
    cost unit (so ERM's per-unit timing stays 3 s)."""
    attacks, eps = ("pgd",), (0.0, 0.01, 0.02)
    units = 1 + sum(attack_eps_cost(a, e, eps, QUICK, robust=False) for a in attacks for e in eps[1:])
    record = _timed("eval", key, "erm", eval_time_s=3.0 * (units + masking_probe_cost(QUICK, attacks, eps)),
                    eval_parts_s=parts, attack_s=attack_s, config={"attacks": list(attacks), "eps": list(eps)})
    record["dataset"] = dataset
    return record


def test_an_evaluation_is_estimated_from_its_records_seconds_per_attack_and_eps(tmp_path):
    """ERM's records of shapes say what PGD took at 0.01 and 0.02 and what the parts other than the attacks took (the
    median of two); a record of digits says PGD at 0.03 (no shapes record has it); square, which no record ran,
    comes from the cost model at ERM's 3 s per unit. A method without such records keeps the per-unit scaling."""
    _timed_store(tmp_path)
    store = Store(tmp_path, "quick")
    parts = {"clean_and_ood": 2.0, "attacks": 50.0, "masking_probe": 4.0, "explanations": 10.0, "heatmaps": 1.0}
    store.write(_attack_timed("shapes", parts, {"pgd": {"0.01": 5.0, "0.02": 6.0}}, "e3"))
    store.write(_attack_timed("shapes", {**parts, "explanations": 20.0}, {"pgd": {"0.01": 7.0, "0.02": 8.0}}, "e4"))
    store.write(_attack_timed("digits", {**parts, "explanations": 90.0}, {"pgd": {"0.03": 30.0}}, "e5"))
    train = make_train_job(QUICK, "shapes", "street", "erm", 0)
    job = EvalJob(train, ("pgd", "square"), (0.0, 0.01, 0.02, 0.03))
    seconds, _ = estimate_seconds(Plan([], [], [job]), str(tmp_path), probe=False)
    other_parts = 2.0 + 4.0 + 20.0 + 1.0  # median_high of the shapes records' 17 and 27 s
    square = sum(attack_eps_cost("square", e, job.eps, QUICK, robust=False) for e in job.eps[1:])
    assert seconds == pytest.approx(other_parts + 7.0 + 8.0 + 30.0 + 3.0 * square)
    # nothing attacked: neither the attacks nor the masking probe
    clean_only = EvalJob(train, ("pgd",), (0.0,))
    assert estimate_seconds(Plan([], [], [clean_only]), str(tmp_path), probe=False)[0] == pytest.approx(23.0)
    # AT has no records that say their attacks' seconds: its old record's per-unit timing scales the cost model
    store.write(_timed("train", "t2", "at", total_time_s=40.0, config={"steps": 400}))
    store.write(_timed("eval", "e6", "at", eval_time_s=3.0 * PROBED_PGD, config={"attacks": ["pgd"], "eps": [0.02]}))
    at_job = EvalJob(make_train_job(QUICK, "shapes", "street", "at", 0), ("pgd",), (0.02,))
    assert estimate_seconds(Plan([], [], [at_job]), str(tmp_path), probe=False)[0] == pytest.approx(
        3.0 * PROBED_PGD)


def test_an_uncached_ddpm_is_timed_once_per_dataset_that_runs_sca(tmp_path, monkeypatch):
    """Two SCA jobs on shapes need one DDPM, timed like the pretraining (real steps, scaled to its declared
    steps); a job that does not run SCA at an eps > 0, on shapes or digits, needs none; a cached DDPM costs nothing."""
    monkeypatch.setattr(ddpm_cache, "cache_dir", lambda: tmp_path)
    sca = [EvalJob(make_train_job(QUICK, "shapes", domain, "erm", 0), ("pgd", "sca"), (0.0, 0.02))
           for domain in ("studio", "street")]
    others = [EvalJob(make_train_job(QUICK, "digits", "0", "erm", 0), ("pgd",), (0.0, 0.02)),
              EvalJob(make_train_job(QUICK, "shapes", "studio", "at", 0), ("sca",), (0.0,))]
    threads = torch.get_num_threads()
    found = resource_seconds([*sca, *others], data_root=None, device="cpu")
    assert torch.get_num_threads() == threads
    assert list(found) == ["diffusion for shapes"]
    # at least the declared steps at a plausible per-step floor (64 images of 32x32 through the UNet, > 1 ms)
    assert found["diffusion for shapes"] > ddpm_cache.SMALL_DDPM.steps * 1e-3
    assert resource_seconds(others, data_root=None, device="cpu") == {}
    shapes = load_dataset_for("shapes", None, QUICK)
    path = ddpm_cache.ddpm_path(shapes, ddpm_cache.ddpm_config(shapes.image_size))
    path.parent.mkdir()
    path.write_bytes(b"cached")
    assert resource_seconds(sca, data_root=None, device="cpu") == {}
    line = planned_time([60.0] * 10, 2, "local", first={"pretraining": 60.0, "diffusion for shapes": 120.0})
    assert line == ("estimated 13.0 min on one worker (launcher local: one job at a time in this process) "
                    "(including 1.0 min of pretraining and 2.0 min of diffusion for shapes first: not cached)")


def test_the_first_stage_of_a_worst_case_the_job_runs_costs_nothing_more(tmp_path):
    """aa's first stage is the apgd-ce run, computed once: asking for both costs aa's alone; its later stages are
    not runs of their own, so apgd-t beside aa costs its own."""
    _timed_store(tmp_path)
    train = make_train_job(QUICK, "shapes", "street", "erm", 0)

    def seconds(*attacks: str) -> float:
        return estimate_seconds(Plan([], [], [EvalJob(train, attacks, (0.0, 0.02))]), str(tmp_path), probe=False)[0]

    assert seconds("apgd-ce", "aa") == pytest.approx(seconds("aa")) and seconds("apgd-ce") > 0
    assert seconds("apgd-t", "aa") > seconds("aa")


def test_the_worst_case_convergence_check_is_counted_once_at_the_table_eps():
    """aa's declared cost includes the evaluation's convergence check, which runs once, at the table eps: at the grid's
    first eps (an independent run too) aa costs itself alone, the check's share less."""
    aa = QUICK.attack_settings["aa"]
    for robust in (False, True):
        with_check = attack_eps_cost("aa", 0.02, EXTENDED_EPS_GRID, QUICK, robust=robust)
        alone = attack_eps_cost("aa", 0.01, EXTENDED_EPS_GRID, QUICK, robust=robust)
        assert with_check == pytest.approx(aa.cost_on(robust=robust) * aa.images / 1000)
        assert alone == pytest.approx(with_check / (1 + aa.check_ratio[robust])) and alone < with_check
