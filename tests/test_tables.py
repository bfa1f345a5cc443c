"""Tables I-IV: golden outputs from the committed fixture, the SE and rank arithmetic on hand-computed
examples (and on the paper's own Table II), missing data, merged and superseded records, the header,
the published-values comparison and the render entry point."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmark import rendering
from benchmark.cli import render
from benchmark.reference import reference
from benchmark.results import Results, standard_error
from benchmark.tables import competition_ranks, rank_summary, table1, table2, table3, table5
from tests.report_helpers import PROFILE, RECORDS, assert_golden, eval_record, fixture_results


@pytest.fixture(scope="module")
def fixture() -> Results:
    return fixture_results()


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "table4", "table5"])
def test_tables_match_golden_files(fixture, tmp_path, name):
    written = rendering.render(fixture, tmp_path, only=[name])
    assert [p.name for p in written] == [f"{name}.csv", f"{name}.md"]
    for path in written:
        assert_golden(path)


def test_csv_states_profile_data_settings_and_reads_back(fixture, tmp_path):
    (csv, md) = rendering.render(fixture, tmp_path, only=["table1"])
    header = [line for line in csv.read_text().splitlines() if line.startswith("# ")]
    assert header[1].startswith("# NOT THE PAPER'S RESULTS")
    for word in ("# profile: quick", "# data: shapes: built-in synthetic benchmark", "# settings: model cnn; 400 "
                 "training steps", "aAcc in tables = PGD at eps 0.02", "seeds 0, 1", "code 75a2d90", "ddof=1"):
        assert any(word in line for line in header), word
    frame = pd.read_csv(csv, comment="#")
    assert list(frame.columns) == ["dataset", "train_domain", "test_domain", "method", "name", "metric", "mean",
                                   "se", "n"]
    assert md.read_text().splitlines()[2].startswith("**NOT THE PAPER'S RESULTS")


def test_missing_methods_and_domains_have_no_rows(fixture):
    frame = table1(fixture).frame
    assert "irm" not in set(frame["method"])  # never run
    assert "photo" not in set(frame["train_domain"])  # no records trained on photo
    assert set(frame[frame["dataset"] == "digits"]["method"]) == {"erm", "igr", "dre", "sgdrop", "egat"}
    md = table1(fixture).sections[1][1]
    assert list(md.index) == ["ERM", "IGR", "DRE", "SGDrop", "EGAT"]


def test_smoke_run_is_set_aside_and_repeated_evaluations_merge(fixture):
    assert len(fixture.notes) == 1 and "(20 steps)" in fixture.notes[0]
    erm = [r for r in fixture.runs if (r["dataset"], r["train_domain"], r["method"], r["seed"])
           == ("shapes", "studio", "erm", 0)]
    assert len(erm) == 1 and erm[0]["config"]["train"]["steps"] == 400
    egat = [r for r in fixture.runs if (r["dataset"], r["train_domain"], r["method"], r["seed"])
            == ("digits", "day", "egat", 0)]
    assert len(egat) == 1 and set(egat[0]["metrics"]["aAcc"]) == {"pgd", "mifgsm"}


def test_a_training_timed_twice_keeps_its_least_disturbed_time_whichever_record_sorts_first():
    """Two evaluations of one retrained checkpoint (Table I's and Fig. 2's) carry two timings of the same training;
    the merged run takes the minimum, not whichever eval key happens to sort first."""
    for first, second in [(3.0, 2.0), (2.0, 3.0)]:
        table = eval_record("shapes", "studio", "erm", time=first, key="e-a")
        figure = eval_record("shapes", "studio", "erm", time=second, key="e-b", aacc={"fgsm": {"0.02": 50.0}})
        [run] = Results.from_records([figure, table], PROFILE, allow_stale=True).runs
        assert run["metrics"]["time_per_epoch_s"] == 2.0
        assert set(run["metrics"]["aAcc"]) == {"fgsm"}


def test_records_of_an_older_data_version_are_set_aside():
    """After a generator change the old results stay on disk; the tables use only the newest data."""
    old = eval_record("digits", "day", "erm", cacc=82.0, steps=1000, data_version=1)
    new = eval_record("digits", "day", "erm", cacc=91.0, data_version=2)
    results = Results.from_records([new, old], PROFILE, allow_stale=True)
    assert [r["metrics"]["cAcc"] for r in results.runs] == [91.0]
    assert len(results.notes) == 1 and old["train_key"] in results.notes[0]


def test_standard_error_and_ranks_by_hand():
    assert standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert standard_error([60.0, 62.0]) == pytest.approx(1.0)
    assert math.isnan(standard_error([5.0]))
    assert competition_ranks({"a": 97.87, "b": 97.87, "c": 98.67, "d": 97.58}) == {"a": 2, "b": 2, "c": 1, "d": 4}
    assert competition_ranks({"a": 50.004, "b": 49.996, "c": 49.0}) == {"a": 1, "b": 1, "c": 3}  # as displayed
    mean, var = rank_summary([1, 3, 3, 1, 3, 2, 1, 1, 3, 2, 3, 3])  # EGAT's ranks in the paper's Table II
    assert (round(mean, 2), round(var, 2)) == (2.17, 0.81)


def test_ranks_reproduce_the_papers_table_2():
    ref = reference()
    ref = ref[ref["table"] == "II"]
    acc = ref[ref["metric"] == "cAcc"]
    for (train, test), column in acc.groupby(["train_domain", "test_domain"]):
        ranks = competition_ranks(dict(zip(column["method"], column["value"], strict=True)))
        published = ref[(ref["metric"] == "rank") & (ref["train_domain"] == train) & (ref["test_domain"] == test)]
        assert ranks == dict(zip(published["method"], published["value"].astype(int), strict=True))
    for method, group in ref[ref["metric"] == "rank"].groupby("method"):
        mean, var = rank_summary(group["value"])
        summary = ref[(ref["method"] == method) & ref["metric"].isin(["rank_mean", "rank_var"])]
        assert [round(mean, 2), round(var, 2)] == summary.sort_values("metric")["value"].tolist()


def test_table_2_on_a_hand_computed_example():
    ood = {("a", "erm"): [{"b": 60.0, "c": 40.0}, {"b": 62.0, "c": 40.0}],
           ("a", "egat"): [{"b": 70.0, "c": 30.0}, {"b": 70.0, "c": 32.0}],
           ("a", "sgdrop"): [{"b": 61.0, "c": 31.0}, {"b": 61.0, "c": 31.0}]}
    records = [eval_record("shapes", domain, method, seed, ood=values)
               for (domain, method), by_seed in ood.items() for seed, values in enumerate(by_seed)]
    results = Results.from_records(records, PROFILE, allow_stale=True)
    frame = table2(results).frame.set_index(["train_domain", "test_domain", "method", "metric"])
    assert frame.loc[("a", "b", "erm", "cAcc"), ["mean", "se", "n"]].tolist() == [61.0, 1.0, 2]
    ranks = {(t, m): frame.loc[("a", t, m, "rank"), "mean"] for t in "bc" for m in ("erm", "egat", "sgdrop")}
    assert ranks == {("b", "erm"): 2, ("b", "egat"): 1, ("b", "sgdrop"): 2, ("c", "erm"): 1, ("c", "egat"): 2,
                     ("c", "sgdrop"): 2}  # 61.00 = 61.00 tie; 31.00 = 31.00 tie
    assert frame.loc[("all", "all", "erm", "rank_mean"), "mean"] == 1.5
    assert frame.loc[("all", "all", "erm", "rank_var"), "mean"] == 0.25  # population variance of (2, 1)
    assert frame.loc[("all", "all", "sgdrop", "rank_var"), "mean"] == 0.0


def test_single_seed_cells_have_no_standard_error(fixture):
    frame = table3(fixture).frame
    ig = frame[frame["method"] == "egat-ig"]
    assert set(ig["n"]) == {1} and ig["se"].isna().all()
    wide = table3(fixture).sections[0][1]
    assert "±" not in wide.loc["EGAT w IntegratedGradients", "studio"]
    assert "±" in wide.loc["EGAT (base)", "studio"]


def test_paper_profile_prints_published_values_beside_ours(tmp_path):
    from benchmark.config import PROFILES

    records = [eval_record("vlcs", "Caltech101", "egat", aacc={"pgd": {"0.02": 90.0}}),
               eval_record("vlcs", "Caltech101", "erm", aacc={"pgd": {"0.02": 30.0}}),
               eval_record("terra_incognita", "L38", "egat", aacc={"pgd": {"0.02": 50.0}})]
    for r in records:
        r["config"]["train"]["model"] = "resnet50"
    results = Results.from_records(records, PROFILES.get("paper"), allow_stale=True)
    frame = table1(results, compare=True).frame.set_index(["train_domain", "method", "metric"])
    assert frame.loc[("Caltech101", "egat", "aAcc"), "paper"] == 98.23
    assert frame.loc[("L38", "egat", "aAcc"), "paper"] == 54.52  # TerraIncognita's "Location 38"
    csv, md = rendering.render(results, tmp_path, only=["table1"])
    assert "90.00 (98.23)" in md.read_text() and md.read_text().splitlines()[2].startswith("**paper profile")
    assert "paper" in pd.read_csv(csv, comment="#").columns


def test_render_entry_point(tmp_path, capsys):
    import shutil

    shutil.copytree(RECORDS, tmp_path, dirs_exist_ok=True)
    assert render.main(["--results-dir", str(tmp_path), "--only", "table2,claims"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "quick" / "tables" / f"table2.{ext}") for ext in ("csv", "md")] + [
        str(tmp_path / "quick" / "claims.md")]
    assert render.main(["--results-dir", str(tmp_path), "--only", "table9"]) == 2
    assert "unknown artefact 'table9'" in capsys.readouterr().err
    assert render.main(["--results-dir", str(tmp_path / "empty"), "--only", "table1,fig2"]) == 0
    assert "no records" in capsys.readouterr().err


def test_flags_are_recomputed_from_merged_records_and_marked_with_a_legend(fixture):
    """The fixture's DM-ADA fakes gradient masking (AA far below PGD, Square below the white-box stages) and IGR has
    zero gradients on seed 0 only: the markers appear beside aAcc, IGR's with (1/2), with one legend line each."""
    table = table1(fixture)
    wide = dict(table.sections)["shapes (in the role of VLCS)"]
    assert wide.loc["DMADA", "studio aAcc"].endswith(" †‡")
    assert wide.loc["IGR", "studio aAcc"].endswith(" #(1/2)")
    assert not any(marker in wide.loc["EGAT", "studio aAcc"] for marker in "†‡§¶#^")
    legend = next(n for n in table.notes if n.startswith("gradient-masking flags"))
    assert "† the black-box Square" in legend and "# many test images" in legend and "§" not in legend


def test_flags_follow_the_merged_run_not_the_record_that_carried_them():
    """A record's own flags said nothing (it had no AA); merged with a second record that has an AA far below PGD,
    the run's flag fires: the tables recompute flags from the merged metrics."""
    masking = {"zero_grad_share": 0.0, "nonfinite_grad_share": 0.0, "transfer_aAcc": 60.0, "large_eps": 0.1,
               "large_eps_aAcc": 0.0, "flags": {"aa_far_below_pgd": None}}
    pgd = eval_record("shapes", "studio", "egat", aacc={"pgd": {"0": 90.0, "0.02": 50.0}}, key="e1")
    pgd["metrics"]["masking"] = masking
    aa = eval_record("shapes", "studio", "egat", aacc={"aa": {"0.02": 30.0}}, key="e2")
    results = Results.from_records([pgd, aa], PROFILE, allow_stale=True)
    assert results.runs[0]["metrics"]["masking"]["flags"]["aa_far_below_pgd"] is True
    flags = results.obs[results.obs["metric"] == "flag:aa_far_below_pgd"]
    assert flags["value"].tolist() == [1.0]


def test_table5_scorecard_has_every_metric_the_calibration_rows_and_no_paper_values(fixture):
    table = table5(fixture)
    sections = dict(table.sections)
    card = sections["shapes (in the role of VLCS): robustness and explanations"]
    assert list(card.columns) == ["cAcc", "PGD-10", "AA", "Comp", "Suff", "Comp (blur)", "Suff (blur)", "rel. mass",
                                  "top-k in mask", "pointing", "top-k ∩ (adv)", "Spearman (adv)",
                                  "Spearman (rand. weights)", "flags"]
    assert card.loc["studio · DMADA", "flags"] == "†‡" and card.loc["studio · EGAT", "flags"] == "none"
    calibration = sections["shapes (in the role of VLCS): calibration (reference maps on each method's models, mean "
                           "over training domains and seeds)"]
    assert "mask: Comp" in calibration.columns and "inverse mask: Suff (blur)" in calibration.columns
    assert calibration.loc["ERM", "random: Comp"].endswith("(n=6)")  # 3 domains x 2 seeds
    assert "paper" not in table.frame.columns
    assert "ours, not in the paper" in table.notes[0]


def test_every_header_names_the_cpus_its_records_were_made_on():
    records = [eval_record("shapes", "studio", "erm", seed) for seed in (0, 1, 2)]
    records[0]["machine"] = {"cpu": "AMD EPYC", "cpu_capability": "AVX512"}
    records[1]["machine"] = {"cpu": "AMD EPYC", "cpu_capability": "AVX2"}
    results = Results.from_records(records, PROFILE, allow_stale=True)  # hand-made: no code fingerprint
    [settings] = [line for line in results.header(results.runs) if line.startswith("settings:")]
    assert "; CPU AVX2 (AMD EPYC), AVX512 (AMD EPYC), not recorded (bit-identical per CPU capability" in settings


def _worst_case_records(budgets: list[dict | None]) -> list[dict]:
    """One AA-evaluated model per entry (seeds 0, 1, ...), its record stating `budgets` (None: a record made before
    records stated them)."""
    records = []
    for seed, budget in enumerate(budgets):
        record = eval_record("shapes", "studio", "egat", seed, aacc={"pgd": {"0.02": 60.0}, "aa": {"0.02": 50.0}})
        if budget is not None:
            record["metrics"]["attack_budgets"] = {"aa": budget}
        records.append(record)
    return records


STANDARD = {"n_iter": 100, "n_targets": 4, "n_queries": 5000, "n_restarts": 1}


def test_table_notes_state_the_images_and_budgets_the_records_give_for_aa():
    one = Results.from_records(_worst_case_records([{"images": 500, "params": STANDARD}] * 2), PROFILE,
                               allow_stale=True)
    setting = "on the first 500 test images, iterations 100, targets 4, queries 5000, restarts 1"
    for table in (table1(one), table5(one)):
        assert "AA: the per-sample worst case of APGD-CE, APGD-T and Square at eps 0.02" in table.notes[0]
        assert f"not in the paper, {setting}; " in table.notes[0]  # one setting: no count
    # records that disagree: each distinct setting with its number of models, then those that state none
    mixed = _worst_case_records([{"images": 500, "params": STANDARD}, {"images": 1000, "params": STANDARD},
                                 {"images": 500, "params": STANDARD}, None])
    note = table1(Results.from_records(mixed, PROFILE, allow_stale=True)).notes[0]
    assert (f"not in the paper, {setting} (2 models); on the first 1000 test images, iterations 100, targets 4, "
            "queries 5000, restarts 1 (1 model); images and budgets not recorded (1 model: records made before "
            "they were; the quick profile now runs it on the first 500 test images, iterations 20, targets 4, the "
            "others AutoAttack's standard values)") in note


def test_table_notes_of_records_without_budgets_name_the_profiles_setting_as_not_recorded():
    from benchmark.config import PROFILES

    old = _worst_case_records([None, None])
    note = table1(Results.from_records(old, PROFILE, allow_stale=True)).notes[0]
    assert "images and budgets not recorded (2 models: records made before they were; the quick profile now" in note
    for r in old:
        r["config"]["train"]["model"] = "resnet50"
        r["dataset"], r["train_domain"] = "vlcs", "Caltech101"
    paper = table1(Results.from_records(old, PROFILES.get("paper"), allow_stale=True)).notes[0]
    assert "the paper profile now runs it on the whole test split, AutoAttack's standard budgets)" in paper
    # no AA record: no AA sentence
    pgd_only = [eval_record("shapes", "studio", "egat", aacc={"pgd": {"0.02": 60.0}})]
    assert "AA:" not in table1(Results.from_records(pgd_only, PROFILE, allow_stale=True)).notes[0]


def test_merged_records_keep_each_attacks_recorded_budget():
    """Table I's evaluation and Fig. 2's of one model merge: aa's budget survives beside another attack's."""
    pgd = eval_record("shapes", "studio", "egat", aacc={"pgd": {"0.02": 60.0}}, key="e1")
    pgd["metrics"]["attack_budgets"] = {"pgd": {"images": 1000, "params": {}}}
    [aa] = _worst_case_records([{"images": 500, "params": STANDARD}])
    aa["key"] = "e2"
    [run] = Results.from_records([pgd, aa], PROFILE, allow_stale=True).runs
    assert set(run["metrics"]["attack_budgets"]) == {"pgd", "aa"}
