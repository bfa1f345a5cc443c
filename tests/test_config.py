"""Hyperparameters: profile overrides, typed CLI overrides, and their effect on job identity."""

from __future__ import annotations

import dataclasses

import pytest

from benchmark.config import PROFILES, SETTINGS, AttackSetting, parse_hparam_overrides
from benchmark.data import DATASETS
from benchmark.jobs import EvalJob, make_train_job
from benchmark.registry import UserError
from methods import METHODS, method_hparams


def test_every_registered_method_declares_its_hyperparameters_and_search_ranges():
    for name in METHODS:
        spec = METHODS.get(name)
        assert isinstance(spec.hparams, dict) and spec.display and set(spec.search) <= set(spec.hparams), name


def test_cli_overrides_are_typed_like_their_defaults():
    quick = PROFILES.get("quick")
    egat = method_hparams("egat", quick, {"lambda_adv": "1", "pgd_steps": "5", "guide": "golden"})
    assert egat["lambda_adv"] == 1.0 and isinstance(egat["lambda_adv"], float)
    assert egat["pgd_steps"] == 5 and egat["guide"] == "golden"
    with pytest.raises(UserError, match="egat.pgd_steps='2.5' must be a int"):
        method_hparams("egat", quick, {"pgd_steps": "2.5"})
    with pytest.raises(UserError, match="must be a int"):
        method_hparams("egat", quick, {"pgd_steps": "true"})


def test_profile_overrides_apply_before_cli_overrides():
    quick, paper = PROFILES.get("quick"), PROFILES.get("paper")
    assert method_hparams("egat", paper)["pgd_steps"] == 10
    assert method_hparams("egat", quick)["pgd_steps"] == 10
    assert method_hparams("egat", SETTINGS.get("short-attack").apply(quick))["pgd_steps"] == 3
    assert method_hparams("egat", quick, {"pgd_steps": "10"})["pgd_steps"] == 10


def test_overrides_change_the_job_key():
    quick = PROFILES.get("quick")
    base = make_train_job(quick, "shapes", "studio", "egat", 0)
    changed = make_train_job(quick, "shapes", "studio", "egat", 0, {"lambda_adv": "0.3"})
    assert base.key != changed.key and base.key == make_train_job(quick, "shapes", "studio", "egat", 0).key


def test_a_new_data_version_changes_the_job_key(monkeypatch):
    """Results of an older generator or loader are never reused for the current data."""
    quick = PROFILES.get("quick")
    before = make_train_job(quick, "digits", "day", "erm", 0).key
    spec = DATASETS.get("digits")
    monkeypatch.setitem(DATASETS._items, "digits", dataclasses.replace(spec, version=spec.version + 1))
    assert make_train_job(quick, "digits", "day", "erm", 0).key != before


def test_quick_profile_trains_on_the_papers_attack_and_no_sweep_searches_it():
    """The training attack defines AT and EGAT: every profile trains on the paper's PGD-10 of eps/4, tuned values
    cannot change it (a sweep would favour the weakest attack), and only the short-attack setting keeps v3's."""
    paper = PROFILES.get("paper")
    for method in ("at", "egat", "egat-advce", "egat-sg", "egat-golden"):
        assert not {"pgd_eps", "pgd_steps", "pgd_alpha_ratio"} & set(METHODS.get(method).search_space("quick"))
        for profile in (PROFILES.get("quick"), paper):
            training = method_hparams(method, profile)
            assert (training["pgd_eps"], training["pgd_steps"], training["pgd_alpha_ratio"]) == (0.02, 10, 0.25)
        job = make_train_job(PROFILES.get("quick"), "shapes", "studio", method, 0)
        assert (job.hparams["pgd_steps"], job.hparams["pgd_alpha_ratio"]) == (10, 0.25), method
    short = method_hparams("at", SETTINGS.get("short-attack").apply(PROFILES.get("quick")))
    assert (short["pgd_steps"], short["pgd_alpha_ratio"]) == (3, 2.5 / 3)


def test_a_study_setting_shares_the_jobs_it_does_not_change_and_names_itself_in_the_others():
    quick = PROFILES.get("quick")
    grid = ("erm", "dre", "ign", "at", "egat", "egat-noegl", "egat-advce", "egat-noat")
    changed = {"short-attack": {"at", "egat", "egat-noegl", "egat-advce", "egat-noat"}, "budget": set(grid),
               "resnet": set(grid)}
    assert SETTINGS.get("quick").apply(quick) is quick
    for name in changed:
        profile = SETTINGS.get(name).apply(quick)
        for method in grid:
            job, own = (make_train_job(p, "shapes", "studio", method, 0) for p in (profile, quick))
            if method in changed[name]:
                assert job.key != own.key and job.config()["setting"] == name, (name, method)
            else:
                assert job.key == own.key and "setting" not in job.config() and job.profile is quick, (name, method)
    assert SETTINGS.get("budget").apply(quick).steps == 4 * quick.steps
    assert SETTINGS.get("resnet").apply(quick).model == "resnet20"
    with pytest.raises(UserError, match="unknown setting 'nope'; valid choices: quick, short-attack"):
        SETTINGS.get("nope")


def test_parse_hparam_overrides():
    assert parse_hparam_overrides("egat.lambda_adv=0.3, at.pgd_steps=5") == {
        "egat": {"lambda_adv": "0.3"}, "at": {"pgd_steps": "5"}}
    with pytest.raises(UserError, match="expected METHOD.KEY=VALUE"):
        parse_hparam_overrides("egat=1")


def test_ood_images_enters_the_eval_key_only_where_a_profile_sets_it():
    """The built-in profiles read whole domains and their keys never name `ood_images`; the tests' e2e profile reads
    the first 200 images of each other domain, and its keys say so (no record of it can pass for a quick one)."""
    quick, e2e = PROFILES.get("quick"), PROFILES.get("e2e")
    assert quick.ood_images is None and PROFILES.get("paper").ood_images is None and e2e.ood_images == 200

    def eval_config(profile):
        return EvalJob(make_train_job(profile, "shapes", "studio", "erm", 0), ("pgd",), (0.02,)).config()

    assert "ood_images" not in eval_config(quick) and eval_config(e2e)["ood_images"] == 200
    whole = eval_config(dataclasses.replace(e2e, ood_images=None))
    assert {k: v for k, v in eval_config(e2e).items() if k != "ood_images"} == whole and "ood_images" not in whole


def test_quick_aa_attacks_a_stated_first_500_images_and_its_eval_key_says_so():
    """The quick `aa` runs on the first >= 500 test images (a binomial SE <= 2.24 points, at 50%), and the eval key
    names them; the paper profile attacks the whole split at the standard budgets, and its keys name no images."""
    quick, paper = PROFILES.get("quick"), PROFILES.get("paper")
    assert quick.attack_images("aa") >= 500 and quick.attack_images("pgd") is None
    assert paper.attack_settings == {} and paper.attack_images("aa") is None

    def eval_config(profile):
        return EvalJob(make_train_job(profile, "shapes", "studio", "erm", 0), ("pgd", "aa"), (0.02,)).config()

    assert eval_config(quick)["attack_images"] == {"aa": quick.attack_images("aa")}
    assert "attack_images" not in EvalJob(make_train_job(quick, "shapes", "studio", "erm", 0), ("pgd",),
                                          (0.02,)).config()
    fewer = dataclasses.replace(quick, attack_settings={
        **quick.attack_settings, "aa": dataclasses.replace(quick.attack_settings["aa"], images=300)})
    assert eval_config(fewer)["attack_images"] == {"aa": 300}


@pytest.mark.parametrize("images", [0, -1, 2.5, True])
def test_an_attack_settings_images_must_be_a_positive_count(images):
    with pytest.raises(UserError, match="images must be an integer >= 1"):
        AttackSetting({}, 1.0, "why", images=images)
