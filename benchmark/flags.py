"""Gradient-masking flags: warnings that a model's robust accuracy under gradient attacks may be an illusion.

A model that hides or breaks its loss gradient (shattered, vanishing or non-finite gradients; Athalye et
al. 2018) defeats PGD without being robust. The checks are those of AutoAttack's `checks.py` and of
RobustBench's and Carlini et al.'s ("On evaluating adversarial robustness", 2019) evaluation advice: a
black-box attack should not beat the white-box ones, a transfer attack should not beat a white-box one,
accuracy should not rise with the budget and should reach ~0 at a large one, input gradients should
be neither zero nor non-finite, and the worst case should have converged (a second restart of its
white-box members breaks almost nothing more). Each flag is declared once in FLAGS (name, table marker, legend
sentence) and computed from an eval record's `metrics` alone (masking_flags), laid out as:

- metrics["aAcc"][attack][eps_label] -> accuracy (%) (benchmark/store.py's eps_label, e.g. "0.02");
- metrics["aa_stages"][eps_label] -> {"apgd-ce", "apgd-t", "square": cumulative robust accuracy (%)
  after each of aa's members} (where aa ran; attacks/autoattack.py's worst_case_stages);
- metrics["chain_check"][attack] -> {"eps", "independent_aAcc", "chain_aAcc"}: a chained attack's independent run at
  the table eps and its chain there (benchmark/evaluate.py attack_grid);
- metrics["masking"] -> {"zero_grad_share", "nonfinite_grad_share", "probe_images", "transfer_aAcc" (PGD-10
  from the dataset's ERM model at the table eps on the first probe_images test images; None for ERM itself),
  "white_box_aAcc" (white-box PGD-10 on the same images), "large_eps", "large_eps_aAcc" (PGD-10 at large_eps),
  "restart_images", "aa_restart_base_aAcc" (aa's accuracy at the table eps on the first restart_images test images),
  "aa_restart_aAcc" (after a second restart of aa's white-box members on the points it left robust; None where aa
  did not run at the table eps)}, measured by benchmark/evaluate.py's masking_probe.

A flag is None where the record lacks what it needs. Thresholds are fixed by the reasons in their
comments, not tuned on results. Torch-free: the tables recompute the flags of merged records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.metrics import METRICS
from benchmark.store import eps_label


@dataclass(frozen=True)
class Flag:
    """One gradient-masking check: its key in the flags dict, its marker in tables and its legend sentence."""

    name: str
    marker: str
    meaning: str


FLAGS: tuple[Flag, ...] = (
    Flag("square_beats_white_box", "†",
         "the black-box Square attack lowers robust accuracy below the white-box attacks (PGD, APGD)"),
    Flag("aa_far_below_pgd", "‡", "AutoAttack's worst case is more than 5 points below PGD-10 at the table eps"),
    Flag("non_monotone_eps", "§", "an attack's accuracy rises with the budget eps (or, for an attack whose larger eps "
         "are chained, its independent run at the table eps keeps points a smaller eps broke)"),
    Flag("large_eps_not_zero", "¶", "PGD-10 at a large eps does not drive accuracy near zero"),
    Flag("zero_gradients", "#", "many test images have an all-zero or non-finite input gradient"),
    Flag("transfer_beats_white_box", "^",
         "PGD-10 examples crafted on the dataset's ERM model beat white-box PGD-10 on this model"),
    Flag("aa_not_converged", "°",
         "a second restart of AutoAttack's white-box members lowers its robust accuracy by more than 1 point"),
)

#: AutoAttack's checks.py (check_square_sr) flags Square lowering robust accuracy by more than 0.2 points
SQUARE_TOLERANCE = 0.2
#: points by which aa may undercut PGD-10: AutoAttack reports it a few points below PGD on sound models
#: (Croce & Hein 2020, Table 2), a gap beyond 5 says PGD's gradients mislead
AA_PGD_GAP = 5.0
#: points of sampling noise between two attack runs on a 1000-image test split (1 point = 10 images)
ACCURACY_TOLERANCE = 1.0
#: accuracy (%) PGD-10 must reach at the large eps: an undefended model goes below it (tests/test_attack_sanity)
LARGE_EPS_ACCURACY = 5.0
#: share (%) of test images with a zero or non-finite gradient beyond which gradient attacks cannot be trusted
GRADIENT_SHARE = 5.0
#: points a second restart of aa's white-box members may gain: the convergence criterion its budgets are chosen by
#: (issue 28: the quick aa within 1 point of aa at AutoAttack's standard budgets); a restart only breaks points, so
#: anything it gains is aa's error, not sampling noise
RESTART_GAIN = 1.0

WHITE_BOX = ("pgd", "apgd-ce", "apgd-t")


def _square_beats_white_box(metrics: dict[str, Any]) -> bool | None:
    """aa's Square stage below its white-box stages, or standalone Square below the best white-box attack."""
    found = []
    for stages in metrics.get("aa_stages", {}).values():
        found.append(stages["square"] < min(stages["apgd-ce"], stages["apgd-t"]) - SQUARE_TOLERANCE)
    aacc = metrics.get("aAcc", {})
    for label, square in aacc.get("square", {}).items():
        white = [aacc[a][label] for a in WHITE_BOX if label in aacc.get(a, {})]
        if white:
            found.append(square < min(white) - SQUARE_TOLERANCE)
    return any(found) if found else None


def _aa_far_below_pgd(metrics: dict[str, Any], table_eps: float) -> bool | None:
    """AA (the worst case: benchmark/metrics.py) more than AA_PGD_GAP below PGD-10 at the table eps, where Table I
    shows them side by side (at smaller eps, on the steep part of an undefended model's curve, any stronger attack
    gains that much without masking)."""
    label = eps_label(table_eps)
    pgd_acc, aa_acc = (METRICS.get(name).value(metrics, label) for name in ("aAcc", "AA"))
    return None if pgd_acc is None or aa_acc is None else aa_acc < pgd_acc - AA_PGD_GAP


def _non_monotone_eps(metrics: dict[str, Any]) -> bool | None:
    """Some attack's accuracy exceeds its lowest at a smaller eps by more than the tolerance (pgd's series
    includes the large eps), or a chained attack's independent run at the table eps exceeds its chain there (the
    points robust at every eps up to it) by more than the tolerance: it leaves robust points a smaller budget broke,
    an attack that fails to optimize, which the chain's own numbers, monotone by construction, cannot show."""
    series = {attack: {float(label): acc for label, acc in by_eps.items()}
              for attack, by_eps in metrics.get("aAcc", {}).items()}
    masking = metrics.get("masking", {})
    if masking.get("large_eps_aAcc") is not None and "pgd" in series:
        series["pgd"][float(masking["large_eps"])] = masking["large_eps_aAcc"]
    found = []
    for by_eps in series.values():
        if len(by_eps) < 2:
            continue
        lowest = float("inf")
        rises = False
        for eps in sorted(by_eps):
            rises |= by_eps[eps] > lowest + ACCURACY_TOLERANCE
            lowest = min(lowest, by_eps[eps])
        found.append(rises)
    for check in metrics.get("chain_check", {}).values():
        found.append(check["independent_aAcc"] > check["chain_aAcc"] + ACCURACY_TOLERANCE)
    return any(found) if found else None


def _aa_not_converged(masking: dict[str, Any]) -> bool | None:
    """A second restart of aa's white-box members lowers aa's robust accuracy on the probe's images by more than
    RESTART_GAIN (None where aa did not run at the table eps, or the record predates the check)."""
    base, restarted = masking.get("aa_restart_base_aAcc"), masking.get("aa_restart_aAcc")
    return None if base is None or restarted is None else restarted < base - RESTART_GAIN


def masking_flags(metrics: dict[str, Any], *, table_eps: float, large_eps: float) -> dict[str, bool | None]:
    """Each flag of FLAGS from an eval record's metrics (module docstring), None where the record lacks its data.

    `large_eps_not_zero` reads the record's large-eps PGD accuracy only when it was measured at `large_eps`; the
    transfer check compares with white-box PGD-10 at `table_eps` on the same images."""
    masking = metrics.get("masking", {})
    large = masking.get("large_eps_aAcc")
    if large is not None and eps_label(masking["large_eps"]) != eps_label(large_eps):
        large = None
    shares = [masking.get("zero_grad_share"), masking.get("nonfinite_grad_share")]
    transfer = masking.get("transfer_aAcc")
    white = masking.get("white_box_aAcc")  # on the transfer's images; records before it: the whole split's
    if white is None:
        white = metrics.get("aAcc", {}).get("pgd", {}).get(eps_label(table_eps))
    flags = {
        "square_beats_white_box": _square_beats_white_box(metrics),
        "aa_far_below_pgd": _aa_far_below_pgd(metrics, table_eps),
        "non_monotone_eps": _non_monotone_eps(metrics),
        "large_eps_not_zero": None if large is None else large > LARGE_EPS_ACCURACY,
        "zero_gradients": None if None in shares else max(shares) > GRADIENT_SHARE,
        "transfer_beats_white_box": (None if transfer is None or white is None
                                     else transfer < white - ACCURACY_TOLERANCE),
        "aa_not_converged": _aa_not_converged(masking),
    }
    return {flag.name: flags[flag.name] for flag in FLAGS}
