"""claims.md: golden output from the fixture, and each claim's PASS / FAIL / NOT RUN logic on small
hand-built inputs and on the paper's own published numbers."""

from __future__ import annotations

import pandas as pd

from benchmark.claims import (
    FAIL,
    NOT_RUN,
    PASS,
    ablation,
    best_aacc,
    check_claims,
    explainers,
    guide_quality,
    ood_rank,
    overhead,
    render_claims,
)
from benchmark.reference import COLUMNS, reference_frames
from benchmark.results import Results
from tests.report_helpers import PROFILE, assert_golden, eval_record, fixture_results


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A long table frame from (dataset, train, test, method, metric, mean) rows."""
    return pd.DataFrame([(d, tr, te, m, m.upper(), metric, v, float("nan"), 1) for d, tr, te, m, metric, v in rows],
                        columns=COLUMNS)


def statuses(checks) -> list[str]:
    return [c.status for c in checks]


def test_claims_match_golden_file(tmp_path):
    assert_golden(render_claims(fixture_results(), tmp_path / "claims.md"))


def test_best_aacc_pass_fail_not_run():
    table = frame([("d", "x", "x", "egat", "aAcc", 50.0), ("d", "x", "x", "erm", "aAcc", 50.0),
                   ("d", "y", "y", "egat", "aAcc", 40.0), ("d", "y", "y", "dre", "aAcc", 41.0),
                   ("d", "z", "z", "erm", "aAcc", 10.0), ("d", "w", "w", "egat", "aAcc", 10.0),
                   ("d", "x", "x", "dre", "cAcc", 99.0)])
    checks = best_aacc(table)
    assert [(c.label, c.status) for c in checks] == [("d/x", PASS), ("d/y", FAIL), ("d/z", NOT_RUN),
                                                     ("d/w", NOT_RUN)]
    assert "DRE 41.00" in checks[1].detail
    assert statuses(best_aacc(frame([]))) == [NOT_RUN]


def test_ood_rank_checks():
    def ranks(egat: list[int], other: list[int]) -> pd.DataFrame:
        rows = []
        for method, values in (("egat", egat), ("sgdrop", other)):
            rows += [("d", "a", f"t{i}", method, "rank", float(r)) for i, r in enumerate(values)]
            rows += [("d", "all", "all", method, "rank_mean", sum(values) / len(values)),
                     ("d", "all", "all", method, "rank_var", float(pd.Series(values).var(ddof=0)))]
        return frame(rows)

    assert statuses(ood_rank(ranks([1, 2, 1], [2, 1, 2]))) == [PASS, PASS, PASS]
    assert statuses(ood_rank(ranks([1, 4, 1], [2, 1, 2]))) == [FAIL, FAIL, FAIL]
    assert statuses(ood_rank(ranks([1, 1], [1, 1]))) == [PASS, PASS, PASS]  # ties count as best
    assert statuses(ood_rank(frame([]))) == [NOT_RUN] * 3


def test_ablation_directions():
    rows = []
    for domain, (full, noat, noegl) in {"x": ((50, 30, 20), (10, 28, 22), (52, 25, 25)),
                                        "y": ((40, 30, 20), (12, 30, 20), (39, 24, 26))}.items():
        for method, (a, comp, suff) in (("egat", full), ("egat-noat", noat), ("egat-noegl", noegl)):
            rows += [("d", domain, domain, method, "aAcc", a), ("d", domain, domain, method, "Comp", comp),
                     ("d", domain, domain, method, "Suff", suff)]
    checks = ablation(frame(rows))
    assert statuses(checks) == [PASS, PASS, PASS, PASS]
    assert "mean over 2 domains (w/o EGL higher in 1/2)" in checks[1].detail  # 45.5 >= 45 on the pooled mean
    only_full = frame([r for r in rows if r[3] == "egat"])
    assert statuses(ablation(only_full)) == [NOT_RUN] * 4


def test_guide_quality_and_explainers_use_ood_domains_only():
    ood = {"egat-golden": 60, "egat": 55, "egat-noise0.01": 56, "egat-noise0.5": 40, "egat-sg": 57, "egat-ig": 50}
    rows = [("d", "a", "a", m, "cAcc", 99.0 - i) for i, m in enumerate(ood)]  # in-domain: never compared
    rows += [("d", "a", t, m, "cAcc", float(v)) for m, v in ood.items() for t in ("b", "c")]
    assert statuses(guide_quality(frame(rows))) == [PASS, FAIL, PASS, PASS]
    assert statuses(explainers(frame(rows))) == [PASS, FAIL, NOT_RUN]  # no egat-finercam record


def test_overhead_against_erm_on_common_domains():
    records = [eval_record("shapes", "studio", "erm", time=1.0), eval_record("shapes", "studio", "egat", time=1.1),
               eval_record("shapes", "street", "egat", time=9.0),  # no ERM here: not compared
               eval_record("digits", "day", "erm", time=1.0), eval_record("digits", "day", "egat", time=1.5),
               eval_record("digits", "night", "egat", time=1.0)]
    checks = overhead(Results.from_records(records, PROFILE))
    assert [(c.label.split(":")[0], c.status) for c in checks] == [("shapes", PASS), ("digits", FAIL)]
    assert "+10%" in checks[0].detail and "+50%" in checks[1].detail
    assert statuses(overhead(Results.from_records(records[2:3], PROFILE))) == [NOT_RUN]


def test_rules_on_the_published_numbers():
    published = reference_frames()
    assert set(statuses(best_aacc(published["table1"]))) == {PASS} and len(best_aacc(published["table1"])) == 8
    assert statuses(ood_rank(published["table2"])) == [PASS, PASS, PASS]
    # the paper's own Table IV: EGAT's Suff is lower than w/o EGL's only on Caltech101 and Location 38
    assert statuses(ablation(published["table4"])) == [PASS, PASS, PASS, FAIL]
    assert statuses(guide_quality(published["table3"])) == [PASS] * 4
    assert statuses(explainers(published["table3"])) == [PASS] * 3


def test_claim_status_and_published_column_on_the_fixture():
    claims = check_claims(fixture_results())
    assert [c.status for c in claims] == [FAIL, FAIL, PASS, FAIL, PASS, FAIL]
    assert claims[0].checks[-1].label == "digits/night" and claims[0].checks[-1].status == FAIL
    assert claims[2].published == "FAIL (3/4 checks pass)"
    assert claims[1].checks[0].published.startswith("PASS: EGAT 2.17")
