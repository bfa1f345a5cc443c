"""Attack sanity on a small ERM cnn (trained once per session, conftest): no gradient masking, budgets
behave, PGD >= FGSM."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from attacks import ATTACKS
from benchmark.attack_runs import adversarial_accuracy, percent
from benchmark.config import PROFILES, AttackSetting
from benchmark.data import iterate, load_benchmark
from benchmark.evaluate import Evaluation, attack_grid, evaluate
from benchmark.selection import PAPER_ATTACKS
from benchmark.train import accuracy
from tests.conftest import reduced

EPS_GRID = (0.0, 0.01, 0.02, 0.03, 0.04)


@pytest.fixture(scope="module")
def trained(erm_cnn_on_shapes):
    """shapes (400 test images per domain), this module's copy of the session's quick ERM cnn (conftest) and its
    test batches."""
    bench = reduced(load_benchmark("shapes"))
    model = erm_cnn_on_shapes()
    batches = list(iterate(bench.domains[0].test, 200))
    return bench, model, batches


def test_model_learned_something(trained):
    bench, model, _ = trained
    assert accuracy(model, bench.domains[0].test) > 60


def test_eps_zero_gives_clean_accuracy(trained):
    bench, model, batches = trained
    clean = accuracy(model, bench.domains[0].test)
    for attack in ATTACKS.names():
        assert adversarial_accuracy(model, batches, attack, 0.0, steps=10, seed=0) == clean


def test_accuracy_does_not_rise_with_eps_and_pgd_is_no_weaker_than_fgsm(trained):
    _, model, batches = trained
    pgd = [adversarial_accuracy(model, batches, "pgd", e, steps=10, seed=0) for e in EPS_GRID]
    fgsm = [adversarial_accuracy(model, batches, "fgsm", e, steps=10, seed=0) for e in EPS_GRID]
    assert all(a >= b for a, b in zip(pgd, pgd[1:], strict=False)), pgd
    assert all(p <= f for p, f in zip(pgd, fgsm, strict=True)), (pgd, fgsm)
    assert pgd[-1] < pgd[0] - 10, f"eps 0.04 should hurt an undefended model: {pgd}"


def test_large_eps_drives_undefended_model_near_zero(trained):
    """eps 0.1 (5x the tables' eps). At eps 0.5 PGD's random start and eps/4 steps saturate most pixels and this
    cnn keeps 19% (chance 20%) even under PGD-50: a large-eps effect the evaluation issue's flags look for."""
    _, model, batches = trained
    assert adversarial_accuracy(model, batches, "pgd", 0.1, steps=10, seed=0) <= 5.0


@pytest.fixture(scope="module")
def ddpm(ddpm_on_shapes):
    """This module's copy of the session's small, briefly trained DDPM for SCA (conftest)."""
    return ddpm_on_shapes()


def test_evaluate_fills_every_metric(trained, ddpm):
    """The paper's four attacks (the worst-case ones at standard strength cost minutes here: test_worst_case), under
    the tests' e2e profile (the quick profile's evaluation on fewer images: tests/e2e_profile.py), with SCA at 2 of
    its 10 iterations: each runs the DDPM chain, most of this test's time at 10 (test_sca checks SCA itself)."""
    bench, model, _ = trained
    e2e = PROFILES.get("e2e")
    light_sca = AttackSetting({"steps": 2}, 2.0, "the tests' speed")
    profile = replace(e2e, attack_settings={**e2e.attack_settings, "sca": light_sca})
    metrics = evaluate(model, bench, "studio", attacks=PAPER_ATTACKS, eps=(0.0, 0.02), profile=profile,
                       seed=0, device=torch.device("cpu"), progress=False, resources={"diffusion": ddpm})
    assert set(metrics["aAcc"]) == set(PAPER_ATTACKS) and metrics["attack_budgets"]["sca"]["params"]["steps"] == 2
    for by_eps in metrics["aAcc"].values():
        assert set(by_eps) == {"0", "0.02"} and by_eps["0"] == metrics["cAcc"] and by_eps["0.02"] < by_eps["0"]
    assert set(metrics["ood_cAcc"]) == {"street", "scene", "photo"}
    assert 0 <= metrics["Suff"] <= 100 and -100 <= metrics["Comp"] <= 100
    heatmaps = metrics["heatmaps"]
    assert len(heatmaps["clean"]) == len(heatmaps["adv"]) == len(heatmaps["label"]) == 6
    assert torch.tensor(heatmaps["clean"]).shape == (6, 8, 8) and heatmaps["eps"] == profile.table_eps


def test_eval_record_of_the_worst_case_is_no_weaker_than_any_member_and_erm_raises_no_flag(trained):
    """The quick profile's reduced worst-case attacks through `evaluate`: in the record, aa <= apgd-ce, apgd-t,
    square and PGD-10; its stages end at its accuracy; the record states each attack's images and parameters (the
    declared defaults filled in); the masking probe ran, its convergence check on the probe's images, and no flag
    fires on this ERM cnn (the transfer check is None: ERM is its own source); every explanation metric is present
    and in range."""
    bench, model, _ = trained
    profile = PROFILES.get("e2e")  # the quick profile's attacks; OOD, probe and explanations on fewer images
    members = ("pgd", "apgd-ce", "apgd-t", "square", "aa")
    metrics = evaluate(model, bench, "studio", attacks=members, eps=(0.02,), profile=profile, seed=0,
                       device=torch.device("cpu"), progress=False)
    acc = {attack: metrics["aAcc"][attack]["0.02"] for attack in members}
    assert all(acc["aa"] <= acc[m] for m in members), acc
    assert metrics["aa_stages"]["0.02"]["square"] == acc["aa"]
    flags = metrics["masking"]["flags"]
    assert flags.pop("transfer_beats_white_box") is None and not any(flags.values()), metrics["masking"]
    assert metrics["masking"]["large_eps"] == profile.large_eps
    budgets = metrics["attack_budgets"]  # the reduced split's 400 test images: fewer than the quick aa's 500
    standard = {"n_iter": 100, "n_targets": 9, "n_queries": 5000, "n_restarts": 1, "early_exit": True}
    assert budgets["aa"] == {"images": 400, "params": {**standard, **profile.attack_params("aa")}, "chained": []}
    assert budgets["pgd"] == {"images": 400, "params": {"steps": 10, "alpha": None, "random_start": True},
                              "chained": []}
    assert set(budgets) == set(members)
    restart = metrics["masking"]
    assert restart["restart_images"] == profile.probe_images and restart["aa_restart_aAcc"] <= acc["aa"]
    for key in ("Comp", "Suff", "Comp_blur", "Suff_blur"):
        assert -100 <= metrics[key] <= 100
    assert set(metrics["calibration"]) == {"random", "mask", "inverse_mask"}
    assert all(0 <= v <= 1 for v in metrics["localization"].values())
    assert -1 <= metrics["stability"]["spearman"] <= 1 and 0 <= metrics["stability"]["topk_intersection"] <= 1
    assert metrics["randomization"]["flagged"] is False


def test_an_attack_set_to_the_first_images_attacks_those_only(trained):
    """An attack whose profile setting names `images` runs on the first ones and its record says how many; the others
    attack the whole split; the grid keeps each attack's robust mask at the table eps, over the images it attacked."""
    bench, model, _ = trained
    e2e = PROFILES.get("e2e")
    profile = replace(e2e, attack_settings={**e2e.attack_settings, "aa": replace(e2e.attack_settings["aa"], images=50)})
    ev = Evaluation(model, bench.domain("studio"), bench, profile, 0, torch.device("cpu"), ("pgd", "aa"), (0.02,),
                    False, {}, None)
    attack_grid(ev)
    assert {a: b["images"] for a, b in ev.metrics["attack_budgets"].items()} == {"pgd": 400, "aa": 50}
    assert len(ev.robust["pgd"]) == 400 and len(ev.robust["aa"]) == 50
    first = [{k: v[:50] for k, v in ev.test_batches[0].items()}]
    assert ev.metrics["aAcc"]["aa"]["0.02"] == percent(ev.robust["aa"]) == adversarial_accuracy(
        model, first, "aa", 0.02, steps=10, seed=0, params=profile.attack_params("aa"))
