"""The verdict study (Table VI, Fig. 6, the verdicts across settings) on a tiny hand-built fixture: golden outputs, a
setting's records kept out of Table I, the jobs a setting shares, and a known verdict that flips between settings."""

from __future__ import annotations

import itertools

import pytest

from benchmark import rendering, study
from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.config import PROFILES, SETTINGS
from benchmark.grid import build_jobs
from benchmark.reproduction import run_flags
from benchmark.results import Results
from benchmark.tables import table1
from tests.report_helpers import PROFILE, assert_golden, assert_texts_inside, eval_record

PGD_METHODS = {"egat", "egat-noegl", "egat-noat", "egat-advce", "at"}
DOMAINS = {"shapes": ("studio", "street"), "digits": ("day", "night")}
#: invented AA accuracy per method; under `budget` EGAT's rises above every rival's (the verdict that flips)
AA = {"erm": 2.0, "dre": 20.0, "ign": 15.0, "egat": 10.0, "egat-noegl": 12.0, "egat-noat": 1.0, "egat-advce": 30.0,
      "at": 40.0}


def _record(setting: str, dataset: str, method: str, seed: int) -> dict:
    """An eval record of the study's grid with every metric Table VI reads, values a function of the cell."""
    base = 60 + 3 * list(AA).index(method) + seed + (5 if setting == "budget" else 0)
    aa = AA[method] + 0.7 * seed + (40 if setting == "budget" and method == "egat" else 0)
    domain, other = DOMAINS[dataset]
    model, steps = ("resnet20" if setting == "resnet" else "cnn"), (1600 if setting == "budget" else 400)
    record = eval_record(dataset, domain, method, seed, cacc=base, ood={other: base - 20 + seed},
                         aacc={"pgd": {"0.02": aa + 10}, "aa": {"0.02": aa}}, comp=20.0 + seed + (method == "egat"),
                         suff=30.0 - seed, model=model, steps=steps, key=f"e-{setting}-{dataset}-{method}-{seed}")
    record["train_key"] = f"t-{setting}-{dataset}-{method}-{seed}"
    record["metrics"].update({"cAcc_cue_free": base - 10, "Comp_blur": 10.0 + seed, "Suff_blur": 5.0 + seed,
                              "localization": {"relevance_mass": 0.3 + 0.01 * seed}})
    train = record["config"]["train"]
    train["hparams"] = {"pgd_steps": 3 if setting == "short-attack" else 10} if method in PGD_METHODS else {}
    if setting != "quick":
        train["setting"] = setting
    return record


def study_records() -> list[dict]:
    """The grid's records, with the jobs a setting does not change shared (only short-attack shares: ERM, DRE, IGN),
    and a setting run that a Table I render must never pick up."""
    records = []
    for setting, dataset, method, seed in itertools.product(study.STUDY_SETTINGS, DOMAINS, study.STUDY_METHODS,
                                                            (0, 1, 2)):
        if setting == "short-attack" and method not in PGD_METHODS:
            continue  # shared with quick
        records.append(_record(setting, dataset, method, seed))
    return records


@pytest.fixture(scope="module")
def results() -> Results:
    return Results.from_records(study_records(), PROFILE, allow_stale=True)


def test_table6_and_fig6_match_golden_files(results, tmp_path):
    written = rendering.render(results, tmp_path, only=["table6", "fig6"])
    assert [p.name for p in written] == ["table6.csv", "table6.md", "fig6.png"]
    for path in written[:2]:
        assert_golden(path)
    points = study.forest_points(results)
    (tmp_path / "fig6_points.csv").write_text(points.to_csv(index=False, float_format="%.4f"), encoding="utf-8")
    assert_golden(tmp_path / "fig6_points.csv")
    assert written[2].stat().st_size > 10_000


@pytest.mark.parametrize("datasets", [("shapes",), ("shapes", "digits")])
def test_fig6_keeps_its_title_and_legend_inside_the_figure(datasets, tmp_path, monkeypatch):
    """A one-panel Fig. 6 (a one-dataset run, as issue 30's slice) once cut its title and legend at both edges."""
    kept = Results.from_records([r for r in study_records() if r["dataset"] in datasets], PROFILE, allow_stale=True)
    figures = []
    monkeypatch.setattr(study, "save_png", lambda fig, out: figures.append(fig) or out)
    study.figure6(kept, tmp_path / "fig6.png")
    assert_texts_inside(figures[0])
    study.plt.close(figures[0])


def test_a_settings_records_never_appear_in_table_1(results):
    assert {r["config"]["train"].get("setting") for r in results.runs} == {None}
    assert {r["config"]["train"]["steps"] for r in results.runs} == {400}  # budget's 1600 steps never win the unit
    frame = table1(results).frame
    egat = frame[(frame["method"] == "egat") & (frame["metric"] == "AA") & (frame["dataset"] == "shapes")]
    assert egat["mean"].tolist() == [pytest.approx(10.7)]  # quick's seeds 0-2: 10, 10.7, 11.4
    assert len(table1(results).runs) == len([r for r in results.runs if r["method"] in ARTEFACTS.get("table1").methods])


def test_a_setting_reads_its_own_records_and_the_jobs_it_shares(results):
    short = results.under("short-attack")
    by_method = {(r["method"], r["seed"]): r["config"]["train"].get("setting") for r in short.runs
                 if r["dataset"] == "shapes"}
    assert {m for (m, _), s in by_method.items() if s is None} == {"erm", "dre", "ign"}
    assert {m for (m, _), s in by_method.items() if s == "short-attack"} == PGD_METHODS
    assert {r["config"]["train"].get("setting") for r in results.under("budget").runs} == {"budget"}
    assert {r["config"]["train"]["model"] for r in results.under("resnet").runs} == {"resnet20"}
    without_quick_pgd = [r for r in study_records() if not (r["config"]["train"].get("setting") is None
                                                            and r["method"] in PGD_METHODS)]
    missing = Results.from_records(without_quick_pgd, PROFILE, allow_stale=True).under("short-attack")
    assert {r["method"] for r in missing.runs} == PGD_METHODS | {"erm", "dre", "ign"}  # never quick's PGD models


def test_a_verdict_that_flips_between_settings_is_reported_as_not_stable(results):
    lines = study.verdict_lines(results)
    flip = next(line for line in lines if line.startswith("claim 1b: EGAT has the best AA accuracy, shapes"))
    assert "quick CONTRADICTED" in flip and "budget SUPPORTED" in flip and flip.endswith("**NOT STABLE**")
    steady = next(line for line in lines if line.startswith("claim 3: removing AT lowers PGD-10 accuracy, digits"))
    assert steady.count("SUPPORTED") == 4 and steady.endswith("**stable**")
    section = "\n".join(study.claims_section(results))
    assert "| claim 1b: EGAT has the best AA accuracy | shapes | CONTRADICTED: EGAT - DRE" in section


def test_without_study_records_nothing_is_drawn_and_claims_say_not_run(tmp_path):
    quick_only = [r for r in study_records() if r["config"]["train"].get("setting") is None]
    results = Results.from_records(quick_only, PROFILE, allow_stale=True)
    assert rendering.render(results, tmp_path, only=["table6", "fig6"]) == []
    assert "NOT RUN: no records of the study's settings yet" in "\n".join(study.claims_section(results))


def test_the_grid_plans_8_methods_x_2_domains_x_3_seeds_x_4_settings_sharing_the_quick_cells():
    quick = PROFILES.get("quick")
    selections = ARTEFACTS.get("table6").selections(quick)
    assert [s.profile.setting for s in selections] == [None, "short-attack", "budget", "resnet"]
    jobs = [job for s in selections for job in build_jobs(s)]
    assert len(jobs) == 8 * 2 * 3 * 4
    assert {(j.train.dataset, j.train.domain) for j in jobs} == {("shapes", "studio"), ("digits", "day")}
    keys = {j.train.key for j in jobs}
    assert len(keys) == 8 * 2 * 3 * 4 - 3 * 2 * 3  # short-attack shares ERM, DRE and IGN with quick
    tables = {j.train.key for name in ("table1", "table4") for s in ARTEFACTS.get(name).selections(quick)
              for j in build_jobs(s)}
    assert {j.train.key for j in build_jobs(selections[0])} <= tables  # the quick cells are Tables I and IV's
    assert run_flags(selections[2], quick).endswith("--setting budget")
    assert SETTINGS.get("budget").apply(quick).steps == 1600



def test_the_study_varies_the_quick_profile_only(tmp_path, capsys):
    """Under the paper profile `budget` would train ResNet-50 for 20000 steps and `resnet` swap it for ResNet-20:
    `all` runs none of the study's grids there, and `table6` says in one line which profile it is declared for."""
    from benchmark.cli import reproduce
    from benchmark.reproduction import grids_of

    paper = PROFILES.get("paper")
    assert ARTEFACTS.get("table6").selections(paper) == []
    assert {s.profile.setting for s in grids_of(artefact_order(), paper)} == {None}
    assert reproduce.main(["table6", "--profile", "paper", "--dry-run", "--results-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("error: table6 is declared for the quick profile only; valid choices: "
                                               "--profile quick")
    assert not any(tmp_path.iterdir())


def test_reproduce_table6_prints_the_whole_plan_and_each_settings_grid(tmp_path, monkeypatch, capsys):
    """`./reproduce.sh table6 --dry-run` from a clean store: one line for the four grids (the jobs they share counted
    once), then each grid's plan naming its setting; the estimate's probes are replaced by a fixed time per job."""
    from benchmark import execute
    from benchmark.cli import reproduce

    monkeypatch.setattr(execute, "estimate_job_seconds", lambda plan, *a, **k: ([60.0] * len(plan.pending), []))
    monkeypatch.setattr(execute, "pretraining_seconds", lambda profiles: 0.0)
    monkeypatch.setattr(execute, "resource_seconds", lambda jobs, **k: {})
    monkeypatch.setattr(execute, "load_dataset_for", lambda *a: None)  # the data folder check: built-in data
    assert reproduce.main(["table6", "--dry-run", "--results-dir", str(tmp_path), "--workers", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("== table6: plan of 4 grids: 174 distinct jobs, 174 to run; estimated 87.0 min on 2 workers "
                      "(processes), one grid after the other")  # 192 jobs, 18 of short-attack's are quick's
    plans = [line for line in out if line.startswith("plan: ")]
    assert [line.split(":")[1] for line in plans] == [
        " 48 jobs (quick profile)", " 48 jobs (quick profile, setting short-attack)",
        " 48 jobs (quick profile, setting budget)", " 48 jobs (quick profile, setting resnet)"]
    assert "--setting resnet" in out[-2] and not any(tmp_path.iterdir())


def test_reproduce_table6_renders_fig6_and_the_claims_with_it(tmp_path, monkeypatch):
    from benchmark.cli import render, reproduce

    monkeypatch.setattr(reproduce, "execute", lambda jobs, launch, **k: None)
    monkeypatch.setattr(reproduce, "plan_grids", lambda grids, launch: "plan")
    monkeypatch.setattr(reproduce, "has_pending", lambda selection, results_dir: False)
    rendered = []
    monkeypatch.setattr(render, "main", lambda argv: rendered.append(argv) or 0)
    assert reproduce.main(["table6", "--results-dir", str(tmp_path)]) == 0
    assert rendered[0][-2:] == ["--only", "table6,fig6,claims"]
