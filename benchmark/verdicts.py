"""The statistics engine of claims.md: paired differences, their t intervals, Holm's correction, and the verdicts.

It knows no claim of the paper (benchmark/claims.py declares them). Every check compares two quantities
through their **paired differences**: the same dataset, training domain, test domain and seed give one
unit (UNIT), so that what differs between the two sides is the method alone. The 95% confidence interval
of the mean difference is Student's t interval over the units (`scipy.stats.ttest_1samp`); when every
unit gives the same difference the interval is that value. Its verdict:

- SUPPORTED: the whole interval lies on the claim's side of the threshold;
- CONTRADICTED: the whole interval lies on the other side;
- INCONCLUSIVE: the interval straddles the threshold, or n = 1 (one unit has no interval: never
  SUPPORTED or CONTRADICTED);
- NOT RUN: the records a check needs are missing.

A strict rule (`a < b`, `a > b`) has threshold 0; a `>=` rule is a non-inferiority rule with a margin of
MARGIN accuracy points (a >= b is SUPPORTED when a - b > -MARGIN throughout the interval). A family of
checks tested together takes Holm's step-down adjustment of its one-sided p-values. A claim is SUPPORTED
when all its checks are, CONTRADICTED when any is, NOT RUN when none ran, else INCONCLUSIVE. Published
numbers have no seeds: on them a rule is a point comparison, PASS or FAIL.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT RUN"
PASS, FAIL = "PASS", "FAIL"
#: non-inferiority margin of ">=" rules, in accuracy points
MARGIN = 1.0
#: margin of the rank rules (a mean rank or a rank variance lower than another's), in ranks
RANK_MARGIN = 0.25
#: two-sided level of the intervals; each one-sided test runs at LEVEL / 2
LEVEL = 0.05
#: a unit of a paired comparison
UNIT = ["dataset", "train_domain", "test_domain", "seed"]


@dataclass
class Check:
    """One comparison: what is compared, the verdict on ours, the numbers behind it, the published outcome."""

    label: str
    status: str
    detail: str
    published: str = ""


@dataclass
class Claim:
    """A claim of the paper, numbered as claims.md lists it, with its checks on our results and its rule's outcome on
    the published numbers."""

    number: str
    title: str
    source: str
    rule: str
    checks: list[Check]
    published: str = ""

    @property
    def status(self) -> str:
        return summary_status(self.checks)

    def tally(self) -> str:
        counts = {s: sum(c.status == s for c in self.checks) for s in (SUPPORTED, CONTRADICTED, INCONCLUSIVE)}
        run = sum(counts.values())
        missing = len(self.checks) - run
        text = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n) or "none run"
        return f"{text} of {run}" + (f", {missing} not run" if missing else "") if run else text


def summary_status(checks: Sequence[Check]) -> str:
    """SUPPORTED when every check is, CONTRADICTED when any is, NOT RUN when none ran, else INCONCLUSIVE."""
    statuses = [c.status for c in checks]
    run = [s for s in statuses if s != NOT_RUN]
    if not run:
        return NOT_RUN
    if CONTRADICTED in run:
        return CONTRADICTED
    return SUPPORTED if all(s == SUPPORTED for s in statuses) else INCONCLUSIVE


def published_status(checks: Sequence[Check]) -> str:
    """The point comparisons' outcome on the published numbers: FAIL when any fails, PASS when any ran."""
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else PASS if PASS in statuses else NOT_RUN


@dataclass(frozen=True)
class Interval:
    """The mean paired difference, its 95% t interval, n, and the one-sided p-values of both sides."""

    mean: float
    low: float
    high: float
    n: int
    p_claim: float  # H0: the difference is not on the claim's side of the threshold
    p_other: float  # H0: it is not on the other side

    def text(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.2f} (n = 1, no interval)"
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}], n = {self.n}"


def interval(diffs: Sequence[float], threshold: float, side: str) -> Interval:
    """Paired differences against `threshold`; `side` "above" (the claim: difference > threshold) or "below"."""
    d = np.asarray(diffs, dtype=float)
    n, mean = len(d), float(d.mean())
    claim_alt, other_alt = ("greater", "less") if side == "above" else ("less", "greater")
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, math.nan, math.nan)
    if np.ptp(d) == 0:  # every unit gives the same difference: the interval is that value
        on_claim = mean > threshold if side == "above" else mean < threshold
        off_claim = mean < threshold if side == "above" else mean > threshold
        return Interval(mean, mean, mean, n, 0.0 if on_claim else 1.0, 0.0 if off_claim else 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(1 - LEVEL)
        p_claim = stats.ttest_1samp(d, threshold, alternative=claim_alt).pvalue
        p_other = stats.ttest_1samp(d, threshold, alternative=other_alt).pvalue
    return Interval(mean, float(ci.low), float(ci.high), n, float(p_claim), float(p_other))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN, and does not count)."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    adjusted = p.copy()
    order = valid[np.argsort(p[valid])]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def verdict(found: Interval, p_claim: float | None = None, p_other: float | None = None) -> str:
    """SUPPORTED / CONTRADICTED / INCONCLUSIVE from one-sided p-values at LEVEL / 2 (by default the interval's;
    Holm-adjusted ones where a family is tested). n = 1 is always INCONCLUSIVE."""
    if found.n < 2:
        return INCONCLUSIVE
    p_claim = found.p_claim if p_claim is None else p_claim
    p_other = found.p_other if p_other is None else p_other
    if p_claim < LEVEL / 2:
        return SUPPORTED
    if p_other < LEVEL / 2:
        return CONTRADICTED
    return INCONCLUSIVE


def pairs(frame: pd.DataFrame, metric: str, a: str, b: str) -> pd.DataFrame:
    """Units where both methods have `metric`: UNIT + columns a and b."""
    part = frame[(frame["metric"] == metric) & frame["method"].isin([a, b])]
    wide = part.pivot_table(index=UNIT, columns="method", values="value", aggfunc="mean")
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=[*UNIT, a, b])
    return wide[[a, b]].dropna().reset_index()


@dataclass(frozen=True)
class Rule:
    """`a` relation `b` on `metric`: ">=" (non-inferiority, margin MARGIN), ">" or "<" (strict)."""

    metric: str
    a: str
    b: str
    relation: str

    @property
    def threshold(self) -> float:
        return -MARGIN if self.relation == ">=" else 0.0

    @property
    def side(self) -> str:
        return "below" if self.relation == "<" else "above"

    def holds(self, difference: float) -> bool:
        """The point comparison (published numbers): plain >=, > or <."""
        return {">=": difference >= 0, ">": difference > 0, "<": difference < 0}[self.relation]


def compare(frame: pd.DataFrame, label: str, rule: Rule, names: tuple[str, str], *, cells_name: str,
            published: bool) -> Check:
    """One paired comparison of cells (UNIT + method, metric, value) as a Check: a verdict on ours, or PASS / FAIL
    on the published means; `names` are how the text calls rule.a and rule.b."""
    both = pairs(frame, rule.metric, rule.a, rule.b)
    name_a, name_b = names
    if both.empty:
        return Check(label, NOT_RUN, f"no {name_a} and {name_b} records on the same {cells_name}")
    diffs = both[rule.a] - both[rule.b]
    if published:
        mean = float(diffs.mean())
        return Check(label, PASS if rule.holds(mean) else FAIL,
                     f"{rule.metric} {name_a} {both[rule.a].mean():.2f} vs {name_b} {both[rule.b].mean():.2f}")
    found = interval(diffs, rule.threshold, rule.side)
    return Check(label, verdict(found), f"{rule.metric} {name_a} - {name_b} = {found.text()} over {cells_name} "
                                        f"(means {both[rule.a].mean():.2f} vs {both[rule.b].mean():.2f})")
