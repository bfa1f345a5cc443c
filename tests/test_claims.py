"""claims.md: golden output from the fixture; the statistics (t intervals, Holm) on hand-made units with known
answers; each claim's logic; the point comparison on the paper's own published numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.artefacts import ARTEFACTS
from benchmark.claims import (
    ablation,
    best_aacc,
    check_claims,
    explainers,
    guide_quality,
    ood_rank,
    overhead,
    published_cells,
    render_claims,
)
from benchmark.reference import reference_frames
from benchmark.results import Results
from benchmark.verdicts import (
    CONTRADICTED,
    FAIL,
    INCONCLUSIVE,
    MARGIN,
    NOT_RUN,
    PASS,
    SUPPORTED,
    UNIT,
    Claim,
    holm,
    interval,
    verdict,
)
from tests.report_helpers import PROFILE, assert_golden, eval_record, fixture_results


def cells(rows: list[tuple]) -> pd.DataFrame:
    """Cells from (dataset, train, test, seed, method, metric, value) rows."""
    return pd.DataFrame(rows, columns=[*UNIT, "method", "metric", "value"])


def statuses(checks) -> list[str]:
    return [c.status for c in checks]


def test_claims_match_golden_file(tmp_path):
    assert_golden(render_claims(fixture_results(), tmp_path / "claims.md"))


def test_interval_is_scipys_t_interval_and_its_verdicts_have_known_answers():
    diffs = [2.0, 3.5, 1.0, 2.5]
    found = interval(diffs, 0.0, "above")
    ci = stats.t.interval(0.95, 3, loc=np.mean(diffs), scale=stats.sem(diffs))
    assert (found.low, found.high, found.n) == pytest.approx((*ci, 4))
    assert verdict(found) == SUPPORTED  # a clear win
    assert verdict(interval([-2.0, -3.5, -1.0, -2.5], 0.0, "above")) == CONTRADICTED  # a clear loss
    assert verdict(interval([0.4, -0.6, 0.3, -0.2], 0.0, "above")) == INCONCLUSIVE  # no difference, noise
    assert verdict(interval([9.0], 0.0, "above")) == INCONCLUSIVE  # n = 1: never a verdict
    assert verdict(interval([-9.0], 0.0, "above")) == INCONCLUSIVE
    # a ">=" claim with its margin: -0.5 points throughout is non-inferior, -3 is not
    assert verdict(interval([-0.5, -0.4, -0.6], -MARGIN, "above")) == SUPPORTED
    assert verdict(interval([-3.0, -3.2, -2.9], -MARGIN, "above")) == CONTRADICTED
    # every unit the same difference: the interval is that value
    same = interval([1.0, 1.0, 1.0], 0.0, "below")
    assert (same.low, same.high) == (1.0, 1.0) and verdict(same) == CONTRADICTED


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.02, math.nan, 0.01])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)


def _aacc_rows(values: dict[str, dict[str, list[float]]]) -> list[tuple]:
    return [("d", dom, dom, seed, m, "aAcc", v) for dom, by_m in values.items() for m, vs in by_m.items()
            for seed, v in enumerate(vs)]


def test_best_aacc_verdicts_per_domain_with_holm():
    frame = cells(_aacc_rows({
        "win": {"egat": [50, 52, 51, 53], "erm": [40, 41, 39, 42], "dre": [30, 31, 29, 30]},  # vs the strongest
        "loss": {"egat": [40, 41, 39, 40], "dre": [50, 52, 51, 50]},
        "noise": {"egat": [50, 48, 51, 49], "erm": [49.5, 49, 50, 49.5]},
        "single": {"egat": [60], "erm": [10]},
        "alone": {"erm": [10, 11]},
    }))
    checks = best_aacc(frame)
    assert [(c.label, c.status) for c in checks] == [("d/win", SUPPORTED), ("d/loss", CONTRADICTED),
                                                     ("d/noise", INCONCLUSIVE), ("d/single", INCONCLUSIVE),
                                                     ("d/alone", NOT_RUN)]
    assert "best other (ERM)" in checks[0].detail and "Holm-adjusted p" in checks[0].detail
    assert "n = 1" in checks[3].detail
    assert statuses(best_aacc(cells([]))) == [NOT_RUN]
    # under another metric (claim 1b's AA) a domain that lacks it is NOT RUN: "every domain" is not read off the others
    with_aa = frame[frame["train_domain"] == "win"].assign(metric="AA")
    by_aa = best_aacc(pd.concat([frame, with_aa]), metric="AA")
    assert [(c.label, c.status) for c in by_aa] == [("d/win", SUPPORTED), ("d/loss", NOT_RUN), ("d/noise", NOT_RUN),
                                                    ("d/single", NOT_RUN), ("d/alone", NOT_RUN)]
    assert by_aa[1].detail == "no AA record"


def test_ood_rank_per_seed():
    def ranks(egat: list[float], other: list[float], seeds: int = 3) -> pd.DataFrame:
        rows = []
        for seed in range(seeds):
            for i, (e, o) in enumerate(zip(egat, other, strict=True)):
                rows += [("d", "a", f"t{i}", seed, "egat", "cAcc", e + seed * 0.01),
                         ("d", "a", f"t{i}", seed, "sgdrop", "cAcc", o + seed * 0.01)]
        return cells(rows)

    assert statuses(ood_rank(ranks([60, 61, 62], [50, 51, 52]))) == [SUPPORTED, SUPPORTED, SUPPORTED]
    assert statuses(ood_rank(ranks([40, 41, 42], [50, 51, 52]))) == [CONTRADICTED, SUPPORTED, SUPPORTED]
    assert statuses(ood_rank(ranks([60, 61, 62], [50, 51, 52], seeds=1))) == [INCONCLUSIVE] * 3
    assert statuses(ood_rank(cells([]))) == [NOT_RUN] * 3


def test_ablation_directions():
    rows = []
    for domain, offset in (("x", 0.0), ("y", 1.0)):
        for seed in range(3):
            jitter = seed * 0.3 + offset
            for method, (a, comp, suff) in (("egat", (50, 30, 20)), ("egat-noat", (10, 28, 22)),
                                            ("egat-noegl", (50.2, 25, 25))):
                rows += [("d", domain, domain, seed, method, "aAcc", a + jitter * (method == "egat-noegl")),
                         ("d", domain, domain, seed, method, "Comp", comp + jitter),
                         ("d", domain, domain, seed, method, "Suff", suff + jitter)]
    checks = ablation(cells(rows))
    assert statuses(checks) == [SUPPORTED, SUPPORTED, SUPPORTED, SUPPORTED]
    assert "n = 6" in checks[1].detail
    only_full = cells([r for r in rows if r[4] == "egat"])
    assert statuses(ablation(only_full)) == [NOT_RUN] * 4


def test_guide_quality_and_explainers_use_ood_domains_only():
    ood = {"egat-golden": 60, "egat": 55, "egat-noise0.01": 55.5, "egat-noise0.5": 40, "egat-sg": 57, "egat-ig": 50}
    rows = [("d", "a", "a", s, m, "cAcc", 99.0 - i) for i, m in enumerate(ood) for s in range(2)]  # never compared
    rows += [("d", "a", t, s, m, "cAcc", float(v) + 0.1 * s + 0.05 * (t == "c") * (m == "egat"))
             for m, v in ood.items() for t in ("b", "c") for s in range(2)]
    assert statuses(guide_quality(cells(rows))) == [SUPPORTED, SUPPORTED, SUPPORTED, SUPPORTED]
    assert statuses(explainers(cells(rows))) == [SUPPORTED, CONTRADICTED, NOT_RUN]  # no egat-finercam record


def test_overhead_against_erm_and_madry_at_on_common_domains():
    records = [eval_record("shapes", "studio", "erm", s, time=1.0 + 0.01 * s) for s in range(3)]
    records += [eval_record("shapes", "studio", "egat", s, time=1.05 + 0.01 * s) for s in range(3)]
    records += [eval_record("shapes", "studio", "at", s, time=0.5 + 0.02 * s) for s in range(3)]
    records += [eval_record("shapes", "street", "egat", 0, time=9.0)]  # no ERM here: not compared
    records += [eval_record("digits", "day", "erm", 0, time=1.0), eval_record("digits", "day", "egat", 0, time=1.5)]
    checks = overhead(Results.from_records(records, PROFILE, allow_stale=True))
    assert [(c.label.split(":")[0], c.label.split("<= ")[1][:5], c.status) for c in checks] == [
        ("shapes", "ERM's", SUPPORTED), ("shapes", "AT (M", CONTRADICTED), ("digits", "ERM's", INCONCLUSIVE),
        ("digits", "AT (M", NOT_RUN)]
    assert "+5%" in checks[0].detail and "n = 3" in checks[0].detail and "n = 1" in checks[2].detail


def test_rules_on_the_published_numbers_are_point_comparisons():
    frames = reference_frames(map(ARTEFACTS.get, ARTEFACTS))
    published = {name: published_cells(frame) for name, frame in frames.items()}
    assert set(statuses(best_aacc(published["table1"], published=True))) == {PASS}
    assert len(best_aacc(published["table1"], published=True)) == 8
    assert statuses(ood_rank(published["table2"], published=True)) == [PASS, PASS, PASS]
    # the paper's own Table IV: EGAT's Suff is lower than w/o EGL's only on Caltech101 and Location 38
    assert statuses(ablation(published["table4"], published=True)) == [PASS, PASS, PASS, FAIL]
    assert statuses(guide_quality(published["table3"], published=True)) == [PASS] * 4
    assert statuses(explainers(published["table3"], published=True)) == [PASS] * 3


def test_claim_verdicts_and_published_column_on_the_fixture():
    claims = check_claims(fixture_results())
    assert [c.number for c in claims] == ["1a", "1b", "2", "3", "4", "5", "6"]
    # invented records with 2 seeds: DRE's lead on digits/night is not resolved at n = 2 after Holm
    assert [c.status for c in claims] == [INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE, SUPPORTED, INCONCLUSIVE,
                                          INCONCLUSIVE, CONTRADICTED]
    assert claims[0].checks[-1].label == "digits/night" and claims[0].checks[-1].status == INCONCLUSIVE
    assert claims[0].checks[0].status == SUPPORTED and "n = 2" in claims[0].checks[0].detail
    # 1b: shapes' records have AA, digits' do not: every domain is listed, digits' NOT RUN, so not SUPPORTED
    assert [(c.label, c.status) for c in claims[1].checks] == [
        ("shapes/studio", SUPPORTED), ("shapes/street", SUPPORTED), ("shapes/scene", SUPPORTED),
        ("digits/day", NOT_RUN), ("digits/night", NOT_RUN)]
    assert claims[1].published == "not in the paper: it reports no AA"
    assert claims[3].published == "FAIL (3/4 checks pass)"
    assert claims[2].checks[0].published.startswith("PASS: EGAT 2.17")


def _claim_one(records: list[dict]) -> tuple[Claim, Claim]:
    claims = {c.number: c for c in check_claims(Results.from_records(records, PROFILE, allow_stale=True))}
    return claims["1a"], claims["1b"]


def test_claim_one_is_checked_under_pgd10_and_under_aa_each_with_its_verdict():
    """The worst case can reverse the PGD-10 verdict: EGAT leads under PGD-10 but not under AA (a model whose PGD-10
    accuracy is not its robustness); each check names its own strongest rival."""
    def record(method: str, seed: int, pgd: float, aa: float) -> dict:
        return eval_record("shapes", "studio", method, seed, aacc={"pgd": {"0.02": pgd}, "aa": {"0.02": aa}})

    records = [record("egat", s, 70.0 + s, 40.0 + 0.3 * s) for s in range(3)]
    records += [record("igr", s, 55.0 + 0.5 * s, 50.0 + 0.2 * s) for s in range(3)]
    records += [record("dre", s, 60.0 - s, 20.0) for s in range(3)]
    pgd, aa = _claim_one(records)
    assert (pgd.status, aa.status) == (SUPPORTED, CONTRADICTED)
    assert "(DRE)" in pgd.checks[0].detail and "(IGR)" in aa.checks[0].detail and "n = 3" in aa.checks[0].detail
    assert pgd.published.startswith("PASS") and aa.published.startswith("not in the paper")


def test_claim_one_under_aa_is_not_run_on_records_without_aa():
    records = [eval_record("shapes", "studio", m, s, aacc={"pgd": {"0.02": 50.0 + s + 20 * (m == "egat")}})
               for m in ("egat", "erm") for s in range(2)]
    pgd, aa = _claim_one(records)
    assert pgd.status == SUPPORTED
    assert aa.status == NOT_RUN and [(c.label, c.detail) for c in aa.checks] == [("Table I", "no AA records")]
