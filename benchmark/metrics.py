"""The metrics: one declaration each (README "How robustness and explanations are measured").

A metric is declared once with `register_metric(name, ...)`: its display name, range and direction (which way is
better), where its value lives in an eval record's `metrics` (`path`), the artefacts that show it, its cost per
image relative to PGD-10, and how it is computed. Tables (Table V is the scorecard of every metric that names it),
Fig. 5, the grid's summary line and `--list` read these declarations; a plugin file adds a metric the same way
(benchmark/plugins.py: its content digest enters the key of every eval job, since every evaluation computes it).

A metric's value comes from one of three places:
- `compute(evaluation)`: the evaluator (benchmark/evaluate.py) calls it after the evaluation part it names (`part`,
  one of PARTS) and writes the result at `path` (None: nothing is written, e.g. no cue-free twins). `evaluation`
  holds the shared inputs: `model`, `profile`, `seed`, `device`, `domain` (its `test`, `cue_free` splits),
  `test_batches` (on the device, with "mask" where the dataset has object masks), `metrics` (the record so far:
  the attack grid's accuracies, ...) and `accuracy(split)`;
- a shared pass of its part writes it at `path` (`compute` None): the explanation pass computes faithfulness,
  localization, stability and randomization over the same maps at once (benchmark/explanation_metrics.py);
- `attack`: the accuracy (%) under that attack at the profile's table eps, from the attack grid (`aAcc`).

Torch-free: rendering reads the declarations without importing the harness.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.registry import Registry, UserError

#: the evaluation's parts in the order they run (benchmark/evaluate.py), also the keys of a record's eval_parts_s
PARTS = ("clean_and_ood", "attacks", "masking_probe", "explanations", "heatmaps")


@dataclass(frozen=True)
class Metric:
    """A declared metric: what it means, where the record keeps it, who shows it and how it is computed."""

    name: str
    #: column title in tables (Table V) and the summary line
    display: str
    #: the range of its values, and whether a higher value is better (tables bold the best)
    low: float
    high: float
    higher_is_better: bool
    #: the artefacts that show it as a column or an axis (e.g. table1, table4, table5, fig5)
    artefacts: tuple[str, ...]
    #: cost per image relative to PGD-10 (README's metric table; explanation costs count forward passes); an attack's
    #: accuracy costs what its attack declares
    cost: float
    #: where its value lives in an eval record's `metrics` (empty for an attack's accuracy)
    path: tuple[str, ...] = ()
    #: the evaluation part that writes it, or after which `compute` runs (PARTS; None: the eval job records it)
    part: str | None = None
    compute: Callable[[Any], Any] | None = None
    #: its value is this attack's accuracy at the profile's table eps (the attack grid's, `aAcc`)
    attack: str | None = None
    #: a column of the paper's own tables (Tables I and IV show it even where no record has it)
    in_paper: bool = False
    #: shown on the grid's summary line (benchmark/execute.py), in declaration order
    summary: bool = False

    def description(self) -> str:
        """`Comp; -100..100, higher is better; at Comp, cost 0.3x PGD-10; in table1 table4 table5` (`--list`)."""
        if self.attack is not None:
            source = f"{self.attack}'s accuracy at the table eps"
        else:
            cost = f"cost {self.cost:g}x PGD-10" if self.cost else "no cost of its own"
            source = f"at {'.'.join(self.path)}, {cost}"
        shown = f"; in {' '.join(self.artefacts)}" if self.artefacts else ""
        return (f"{self.display}; {self.low:g}..{self.high:g}, {'higher' if self.higher_is_better else 'lower'} is "
                f"better; {source}{shown}")

    def value(self, metrics: dict[str, Any], table_eps_label: str) -> Any:
        """Its value in an eval record's `metrics` (None where the record lacks it)."""
        path = ("aAcc", self.attack, table_eps_label) if self.attack is not None else self.path
        for name in path:
            if not isinstance(metrics, dict) or name not in metrics:
                return None
            metrics = metrics[name]
        return metrics


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, *, display: str, range: tuple[float, float], higher_is_better: bool,
                    artefacts: tuple[str, ...] = (), cost: float = 0.0, path: tuple[str, ...] = (),
                    part: str | None = None, compute: Callable[[Any], Any] | None = None, attack: str | None = None,
                    in_paper: bool = False, summary: bool = False) -> Metric:
    """Declare a metric (module docstring). A declaration that breaks the contract (no path and no attack, both,
    a `compute` that does not take the evaluation alone or runs after no part, an empty range, a negative cost) is
    a UserError naming the metric."""
    low, high = range
    problem = None
    if (attack is None) == (not path):
        problem = "it needs exactly one of path= (where the record keeps it) and attack= (an attack's accuracy)"
    elif (compute is not None or part is not None) and part not in PARTS:
        problem = f"compute= runs after a part of the evaluation: part= one of {', '.join(PARTS)}, got {part!r}"
    elif compute is not None and len(inspect.signature(compute).parameters) != 1:
        problem = "compute= must take one argument, the evaluation's shared inputs"
    elif not (math.isfinite(low) and low < high):
        problem = f"its range needs a finite low < high, got {range!r}"
    elif not math.isfinite(cost) or cost < 0:
        problem = f"its cost must be a number >= 0 (PGD-10 = 1), got {cost!r}"
    if problem:
        raise UserError(f"metric {name!r} breaks the metric contract: {problem}")
    metric = Metric(name, display, float(low), float(high), higher_is_better, tuple(artefacts), float(cost),
                    tuple(path), part, compute, attack, in_paper, summary)
    METRICS.add(name, metric)
    return metric


def shown_in(artefact: str) -> list[Metric]:
    """The metrics an artefact shows, in declaration order (plugins' last)."""
    return [METRICS.get(name) for name in METRICS if artefact in METRICS.get(name).artefacts]


def recorded() -> list[Metric]:
    """The metrics kept at a path of the eval record (every one but the attack grid's), in declaration order."""
    return [METRICS.get(name) for name in METRICS if METRICS.get(name).path]


_RESULTS = ("table1", "table4", "table5")
_EXPLANATIONS = ("table5",)

register_metric("cAcc", display="cAcc", range=(0, 100), higher_is_better=True, artefacts=_RESULTS, cost=0.1,
                path=("cAcc",), part="clean_and_ood", compute=lambda ev: ev.accuracy(ev.domain.test),
                in_paper=True, summary=True)
register_metric("cAcc_cue_free", display="cue-free cAcc", range=(0, 100), higher_is_better=True, artefacts=_RESULTS,
                cost=0.1, path=("cAcc_cue_free",), part="clean_and_ood",
                compute=lambda ev: None if ev.domain.cue_free is None else ev.accuracy(ev.domain.cue_free))
register_metric("aAcc", display="PGD-10", range=(0, 100), higher_is_better=True, artefacts=_RESULTS, attack="pgd",
                in_paper=True)
register_metric("AA", display="AA", range=(0, 100), higher_is_better=True, artefacts=(*_RESULTS, "fig5"),
                attack="aa")
register_metric("Comp", display="Comp", range=(-100, 100), higher_is_better=True, artefacts=_RESULTS, cost=0.3,
                path=("Comp",), part="explanations", in_paper=True, summary=True)
register_metric("Suff", display="Suff", range=(-100, 100), higher_is_better=False, artefacts=_RESULTS,
                path=("Suff",), part="explanations", in_paper=True, summary=True)
register_metric("Comp_blur", display="Comp (blur)", range=(-100, 100), higher_is_better=True,
                artefacts=_EXPLANATIONS, cost=0.3, path=("Comp_blur",), part="explanations")
register_metric("Suff_blur", display="Suff (blur)", range=(-100, 100), higher_is_better=False,
                artefacts=_EXPLANATIONS, path=("Suff_blur",), part="explanations")
register_metric("relevance_mass", display="rel. mass", range=(0, 1), higher_is_better=True,
                artefacts=(*_EXPLANATIONS, "fig5"), path=("localization", "relevance_mass"), part="explanations")
register_metric("relevance_rank", display="top-k in mask", range=(0, 1), higher_is_better=True,
                artefacts=_EXPLANATIONS, path=("localization", "relevance_rank"), part="explanations")
register_metric("pointing_game", display="pointing", range=(0, 1), higher_is_better=True, artefacts=_EXPLANATIONS,
                path=("localization", "pointing_game"), part="explanations")
register_metric("stability_topk", display="top-k ∩ (adv)", range=(0, 1), higher_is_better=True,
                artefacts=_EXPLANATIONS, cost=0.1, path=("stability", "topk_intersection"), part="explanations")
register_metric("stability_spearman", display="Spearman (adv)", range=(-1, 1), higher_is_better=True,
                artefacts=_EXPLANATIONS, path=("stability", "spearman"), part="explanations")
register_metric("randomization_spearman", display="Spearman (rand. weights)", range=(-1, 1),
                higher_is_better=False, artefacts=_EXPLANATIONS, path=("randomization", "spearman"),
                part="explanations")
register_metric("time_per_epoch_s", display="time per epoch (s)", range=(0, math.inf), higher_is_better=False,
                path=("time_per_epoch_s",))
