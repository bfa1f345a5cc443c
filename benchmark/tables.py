"""Tables I-IV of the paper and our Table V, rendered from the results model (benchmark/results.py) as CSV and Markdown.

Each table is first built as a long frame with the published reference's columns (dataset,
train_domain, test_domain, method, metric) plus `mean`, `se` and `n` (seeds), so the same code (and
claims.py) reads ours and the paper's numbers. The CSV is that frame, after `# ` lines stating
profile, data and settings; the Markdown is the paper's layout after the same statement as a header
paragraph. Each table is declared once, at the end of this file (benchmark/artefacts.py). Its metric columns
are the metrics declared for it (benchmark/metrics.py: Tables I and IV show those naming them, Table V every one
naming table5, plugins' included); the helpers that sweep, figures and claims share are benchmark/tabulation.py.

- Table II ranks the methods of each train->test column by the displayed (2-decimal) mean,
  descending, ties sharing the best rank (competition ranking: the paper's 97.87 [2], 97.87 [2]);
  each method's rank mean and population variance (ddof=0) over its columns: this reproduces every
  published rank and the paper's "2.17 +- 0.81".
- Table III: trained on the benchmark's first domain (the paper's caption says VOC2007, but its
  numbers are the Caltech101 row of Tables I-II); the training domain's column is its test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import artefacts
from benchmark.artefacts import ARTEFACTS, Artefact, Grid, RenderRequest
from benchmark.display_catalog import Catalog
from benchmark.metrics import METRICS, shown_in
from benchmark.reference import COLUMNS, with_paper
from benchmark.results import CALIBRATION_MAPS, CALIBRATION_METRICS, Results, summarize
from benchmark.store import eps_label
from benchmark.tabulation import (
    MISSING,
    Table,
    flag_legend,
    flag_markers,
    format_cell,
    in_domain_obs,
    worst_case_note,
    write_table,
)

#: Table I's rows: the paper's eight methods
MAIN_METHODS = ("erm", "igr", "ign", "dmada", "irm", "dre", "sgdrop", "egat")
#: Reference rows Table I adds after the paper's, marked as not in the paper (claims compare the paper's rows only)
NOT_IN_PAPER = {"egat-advce": "EGAT with L_cls = CE on x_adv, our second reading of Eq. 5",
                "at": "Madry PGD adversarial training, the robustness reference the paper omits"}
#: Table II and Fig. 2: the paper drops DMADA and IRM after Table I (Sec. V-D)
OOD_METHODS = ("erm", "igr", "ign", "dre", "sgdrop", "egat")
#: Table II's rows besides its metric (cAcc): the ranks per column, then each method's rank mean and variance
RANK_ROWS = ("rank", "rank_mean", "rank_var")


def competition_ranks(values: dict[str, float], decimals: int = 2) -> dict[str, int]:
    """Rank 1 = highest value after rounding to the displayed decimals; ties share the best rank."""
    rounded = {k: round(v, decimals) for k, v in values.items()}
    return {k: 1 + sum(other > v for other in rounded.values()) for k, v in rounded.items()}


def rank_summary(ranks: Sequence[float]) -> tuple[float, float]:
    """Mean and population variance (ddof=0) of a method's ranks, as the paper's Table II."""
    arr = np.asarray(ranks, dtype=float)
    return float(arr.mean()), float(arr.var(ddof=0))


def _sorted(frame: pd.DataFrame, results: Results, methods: Sequence[str]) -> pd.DataFrame:
    """Rows in table order: dataset, training domain, test domain, method (given order), metric."""
    datasets = results.datasets()
    domains = {d: [*results.domains(d), "all"] for d in set(frame["dataset"])}
    metric_order = [*METRICS, *RANK_ROWS]  # declaration order
    keys = [(datasets.index(r.dataset), domains[r.dataset].index(r.train_domain),
             domains[r.dataset].index(r.test_domain), list(methods).index(r.method), metric_order.index(r.metric))
            for r in frame.itertuples()]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def _finish(frame: pd.DataFrame, table: str, results: Results, methods: Sequence[str]) -> pd.DataFrame:
    """The long frame of a table: display names added, columns and rows in order."""
    frame = frame.assign(name=[artefacts.label(results.catalog, m, table) for m in frame["method"]])
    return _sorted(frame[COLUMNS], results, methods)


def _per_domain(results: Results, name: str, title: str, methods: Sequence[str], compare: bool) -> Table:
    """Tables I and IV: per dataset and training domain, the metrics declared for the table (cAcc / aAcc (PGD at
    table_eps) / AA / Comp / Suff; those not in the paper's table only where records have them), the aAcc cell marked
    with the gradient-masking flags that fired."""
    declared = shown_in(name)
    obs = in_domain_obs(results, methods, [m.name for m in declared])
    frame = _finish(summarize(obs, ["dataset", "train_domain", "test_domain", "method", "metric"]), name, results,
                    methods)
    markers = flag_markers(results)
    if compare:
        frame = with_paper(frame, name)
    sections = []
    for dataset in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == dataset]
        domains = [d for d in results.domains(dataset) if d in set(part["train_domain"])]
        rows = [m for m in methods if m in set(part["method"])]
        metrics = [m for m in declared if m.in_paper or (part["metric"] == m.name).any()]
        wide = pd.DataFrame(index=[artefacts.label(results.catalog, m, name) for m in rows],
                            columns=[f"{d} {metric.name}" for d in domains for metric in metrics], data=MISSING)
        for d in domains:
            for metric in metrics:
                cells = part[(part["train_domain"] == d) & (part["metric"] == metric.name)]
                if cells.empty:
                    continue
                best = cells["mean"].max() if metric.higher_is_better else cells["mean"].min()
                for row in cells.itertuples():
                    text = format_cell(row.mean, row.se, row.n, paper=getattr(row, "paper", math.nan))
                    is_best = len(cells) > 1 and round(row.mean, 2) == round(best, 2)
                    text = f"**{text}**" if is_best else text
                    if metric.name == "aAcc" and (dataset, d, row.method) in markers:
                        text += " " + markers[(dataset, d, row.method)]
                    wide.loc[artefacts.label(results.catalog, row.method, name), f"{d} {metric.name}"] = text
        sections.append((results.role(dataset), wide))
    cue_free = ("cAcc_cue_free: on the same split's cue-free twins, the same objects with the spurious cue drawn "
                "independently of the class; " if (frame["metric"] == "cAcc_cue_free").any() else "")
    worst = f"{worst_case_note(results, _runs(results, frame))}; " if (frame["metric"] == "AA").any() else ""
    notes = ["aAcc: accuracy under PGD-10 at eps " + eps_label(results.profile.table_eps) + " on the training "
             f"domain's test split; cAcc on the same split; {cue_free}{worst}Comp / Suff: ERASER-style AOPC of "
             "Grad-CAM (x100, Comp higher and Suff lower is better); bold: best mean of each column",
             *flag_legend(results, set(frame["method"]), markers)]
    notes += [f"{artefacts.label(results.catalog, m, name)}: {why}" for m, why in NOT_IN_PAPER.items()
              if m in set(frame["method"])]
    return Table(name, title, frame, sections, notes, _runs(results, frame))


def _runs(results: Results, frame: pd.DataFrame) -> list[dict[str, Any]]:
    return results.runs_of(set(zip(frame["dataset"], frame["method"], strict=True)))


def table1(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table I: in-domain cAcc, aAcc, Comp, Suff of the main methods, per dataset and training domain."""
    return _per_domain(results, "table1", "Table I: performance per training domain (cAcc, aAcc, Comp, Suff)",
                       _methods("table1", methods), compare)


def table4(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table IV: the ablation (ERM, w/o EGL, w/o AT, EGAT) with Table I's columns."""
    return _per_domain(results, "table4", "Table IV: ablation of EGAT's adversarial (AT) and explanation-guided "
                       "(EGL) losses", _methods("table4", methods), compare)


def table2(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table II: OOD cAcc per train -> test pair on the VLCS-like benchmark, with per-column ranks and
    each method's rank mean and variance."""
    methods = _methods("table2", methods)
    dataset = results.vlcs_like()
    obs = results.table_obs
    obs = obs[(obs["dataset"] == dataset) & obs["method"].isin(methods) & (obs["metric"] == "cAcc")
              & (obs["test_domain"] != obs["train_domain"])]
    acc = summarize(obs, ["dataset", "train_domain", "test_domain", "method", "metric"])
    ranks = []
    for (train, test), column in acc.groupby(["train_domain", "test_domain"], sort=False):
        for method, rank in competition_ranks(dict(zip(column["method"], column["mean"], strict=True))).items():
            ranks.append((dataset, train, test, method, "rank", float(rank), math.nan, pd.NA))
    rank_rows = pd.DataFrame(ranks, columns=[*COLUMNS[:4], *COLUMNS[5:]])
    summary = []
    for method, group in rank_rows.groupby("method", sort=False):
        mean, var = rank_summary(group["mean"])
        summary += [(dataset, "all", "all", method, "rank_mean", mean, math.nan, len(group)),
                    (dataset, "all", "all", method, "rank_var", var, math.nan, len(group))]
    parts = [p for p in (acc, rank_rows, pd.DataFrame(summary, columns=rank_rows.columns)) if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=rank_rows.columns)
    frame = _finish(frame.astype({"n": "Int64", "mean": float, "se": float}), "table2", results, methods)
    if compare:
        frame = with_paper(frame, "table2")
    domains = results.domains(dataset)
    columns = [(tr, te) for tr in domains for te in domains
               if ((frame["train_domain"] == tr) & (frame["test_domain"] == te)).any()]
    rows = [m for m in methods if m in set(frame["method"])]
    wide = pd.DataFrame(index=[artefacts.label(results.catalog, m, "table2") for m in rows],
                        columns=[f"{tr} → {te}" for tr, te in columns] + ["Ranking Avg. ± Var."], data=MISSING)

    def value(method: str, train: str, test: str, metric: str) -> pd.Series | None:
        hit = frame[(frame["method"] == method) & (frame["train_domain"] == train) & (frame["test_domain"] == test)
                    & (frame["metric"] == metric)]
        return hit.iloc[0] if len(hit) else None

    for m in rows:
        for tr, te in columns:
            acc_row, rank_row = value(m, tr, te, "cAcc"), value(m, tr, te, "rank")
            if acc_row is not None:
                text = format_cell(acc_row["mean"], acc_row["se"], acc_row["n"]) + f" [{int(rank_row['mean'])}]"
                if compare and not pd.isna(acc_row.get("paper")):
                    text += f" ({acc_row['paper']:.2f} [{int(rank_row['paper'])}])"
                wide.loc[artefacts.label(results.catalog, m, "table2"), f"{tr} → {te}"] = text
        mean_row, var_row = value(m, "all", "all", "rank_mean"), value(m, "all", "all", "rank_var")
        if mean_row is not None:
            text = f"{mean_row['mean']:.2f} ± {var_row['mean']:.2f}"
            if compare and not pd.isna(mean_row.get("paper")):
                text += f" ({mean_row['paper']:.2f} ± {var_row['paper']:.2f})"
            wide.loc[artefacts.label(results.catalog, m, "table2"), "Ranking Avg. ± Var."] = text
    notes = [f"cAcc (%) of models trained on one domain of {dataset} and tested on another domain, whole; "
             "[rank] within the column among the methods shown (by the 2-decimal mean, descending, ties share "
             "the best rank); last column: mean ± population variance (ddof=0) of each method's ranks, as the "
             "paper computes them (its 2.17 ± 0.81 for EGAT). DMADA and IRM are left out as in the paper "
             "(Sec. V-D)"]
    return Table("table2", "Table II: out-of-domain clean accuracy and ranking per train -> test pair",
                 frame, [(results.role(dataset), wide)] if rows else [], notes, _runs(results, frame))


def table3(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table III: EGAT's explainer and guide-map variants beside IGR and SGDrop, trained on the first
    domain of the VLCS-like benchmark and tested on every domain."""
    methods = _methods("table3", methods)
    dataset = results.vlcs_like()
    first = results.first_domain(dataset)
    obs = results.table_obs
    obs = obs[(obs["dataset"] == dataset) & (obs["train_domain"] == first) & obs["method"].isin(methods)
              & (obs["metric"] == "cAcc")]
    frame = _finish(summarize(obs, ["dataset", "train_domain", "test_domain", "method", "metric"]), "table3",
                    results, methods)
    if compare:
        frame = with_paper(frame, "table3")
    rows = [m for m in methods if m in set(frame["method"])]
    tests = [d for d in results.domains(dataset) if d in set(frame["test_domain"])]
    wide = pd.DataFrame(index=[artefacts.label(results.catalog, m, "table3") for m in rows], columns=tests,
                        data=MISSING)
    for row in frame.itertuples():
        wide.loc[row.name, row.test_domain] = format_cell(row.mean, row.se, row.n,
                                                          paper=getattr(row, "paper", math.nan))
    notes = [f"trained on {first}, the first domain of {dataset}, and tested on every domain: the {first} column "
             "is its test split (in-domain cAcc), the others are whole domains (OOD cAcc). The paper's caption "
             "says its models are trained on VOC2007, but its numbers are the Caltech101 row of Tables I-II "
             "(Caltech101 = VLCS's first domain), so the first domain is used",
             "rows: IGR and SGDrop; EGAT (base) = Grad-CAM with the gray guide; w SmoothGrad / IntegratedGradients "
             "/ Finer-CAM replace the explainer; N(0, sigma^2) adds Gaussian noise to the gray guide; golden uses "
             "the object masks"]
    return Table("table3", "Table III: sensitivity to the explanation method and the guide-map quality (OOD)",
                 frame, [(results.role(dataset), wide)] if rows else [], notes, _runs(results, frame))


def table5(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table V (ours, not in the paper): per method and training domain, robustness (PGD-10, AA, masking flags)
    beside explanation quality (Comp / Suff at both fills, localization against the object masks, stability
    under PGD, the randomization check); a second section per dataset holds the calibration rows: Comp / Suff of
    a random map, the exact object mask and its inverse on each method's models, averaged over domains."""
    methods = _methods("table5", methods)
    del compare  # the paper has no such table
    declared = shown_in("table5")
    obs = in_domain_obs(results, methods, [m.name for m in declared])
    keys = ["dataset", "train_domain", "test_domain", "method", "metric"]
    frame = _finish(summarize(obs, keys), "table5", results, methods)
    markers = flag_markers(results)
    sections = []
    for dataset in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == dataset]
        metrics = [m for m in declared if (part["metric"] == m.name).any()]
        rows = [(d, m) for d in results.domains(dataset) for m in methods
                if ((part["train_domain"] == d) & (part["method"] == m)).any()]
        wide = pd.DataFrame(index=[f"{d} · {artefacts.label(results.catalog, m, 'table5')}" for d, m in rows],
                            columns=[*(m.display for m in metrics), "flags"], data=MISSING)
        for (d, m), index in zip(rows, wide.index, strict=True):
            for row in part[(part["train_domain"] == d) & (part["method"] == m)].itertuples():
                wide.loc[index, METRICS.get(row.metric).display] = format_cell(row.mean, row.se, row.n)
            wide.loc[index, "flags"] = markers.get((dataset, d, m), "") or "none"
        sections.append((f"{results.role(dataset)}: robustness and explanations", wide))
        calibration = _calibration(results, dataset, methods)
        if calibration is not None:
            sections.append((f"{results.role(dataset)}: calibration (reference maps on each method's models, mean "
                             "over training domains and seeds)", calibration))
    worst = f"{worst_case_note(results, _runs(results, frame))}; " if (frame["metric"] == "AA").any() else ""
    notes = [f"ours, not in the paper. PGD-10 at eps {eps_label(results.profile.table_eps)} on the training domain's "
             f"test split; {worst}Comp / Suff (x100): ERASER AOPC of Grad-CAM with removed pixels set to black (the "
             "paper's) or to a blurred copy of the image (blur); rel. mass: share of the map's positive mass on the "
             "object mask; top-k in mask: share of the k highest pixels on the object, k = its area; pointing: share "
             "of images whose map maximum is on the object; top-k ∩ / Spearman (adv): top-10% intersection and rank "
             "correlation of Grad-CAM(x) and Grad-CAM(x_adv) under PGD-10 at the table eps; Spearman (rand. "
             "weights): rank correlation of the maps of the trained model and of its randomized copy (lower is "
             "better; benchmark/explanation_metrics.py); mean ± SE over n seeds (README \"How robustness and "
             "explanations are measured\")",
             *flag_legend(results, set(frame["method"]), markers)]
    return Table("table5", "Table V: robustness and explanation scorecard (ours, not in the paper)", frame, sections,
                 notes, _runs(results, frame))


def _calibration(results: Results, dataset: str, methods: Sequence[str]) -> pd.DataFrame | None:
    """Per method: Comp / Suff at both fills of the calibration maps, mean over domains and seeds (n in the cell)."""
    obs = results.table_obs
    names = {f"{metric}@{ref}": f"{ref.replace('_', ' ')}: {METRICS.get(metric).display}"
             for ref in CALIBRATION_MAPS for metric in CALIBRATION_METRICS}
    obs = obs[(obs["dataset"] == dataset) & obs["method"].isin(methods) & obs["metric"].isin(list(names))]
    if obs.empty:
        return None
    rows = [m for m in methods if m in set(obs["method"])]
    columns = [n for n in names if n in set(obs["metric"])]
    wide = pd.DataFrame(index=[artefacts.label(results.catalog, m, "table5") for m in rows],
                        columns=[names[n] for n in columns], data=MISSING)
    for m, index in zip(rows, wide.index, strict=True):
        for name, column in zip(columns, wide.columns, strict=True):
            values = obs.loc[(obs["method"] == m) & (obs["metric"] == name), "value"]
            if len(values):
                wide.loc[index, column] = f"{values.mean():.2f} (n={len(values)})"
    return wide


def _methods(name: str, methods: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(methods) if methods else ARTEFACTS.get(name).methods


def declare_table(name: str, builder: Callable[..., Table], methods: tuple[str, ...], *, numeral: str | None = None,
                  grids: tuple[Grid, ...] = (Grid(),), labels: dict[str, str] | None = None,
                  custom_methods: bool = False) -> Artefact:
    """Register a table: `builder(results, methods=..., compare=...)` -> Table, written as CSV + Markdown under
    `<results>/<profile>/tables/` after the header saying what produced it."""

    def render(results: Results, artefact: Artefact, request: RenderRequest) -> list[Path]:
        table = builder(results, methods=artefact.methods_for(request), compare=request.compare)
        header = [*results.header(table.runs, compare=request.compare), *(f"set aside: {n}" for n in results.notes)]
        return write_table(table, header, request.out / "tables")

    artefact = Artefact(name, "table", methods, render, grids, builder, labels or {}, numeral, custom_methods)
    ARTEFACTS.add(name, artefact)
    return artefact


declare_table("table1", table1, (*MAIN_METHODS, *NOT_IN_PAPER), numeral="I", custom_methods=True,
              labels={m: f"{Catalog.builtin().method(m)} (not in the paper)" for m in NOT_IN_PAPER})
declare_table("table2", table2, OOD_METHODS, numeral="II", grids=(Grid(first_dataset_only=True),))
declare_table("table3", table3, ("igr", "sgdrop", "egat", "egat-sg", "egat-ig", "egat-finercam", "egat-noise0.01",
                                 "egat-noise0.5", "egat-golden"), numeral="III",
              grids=(Grid(domains="0", first_dataset_only=True),), labels={"egat": "EGAT (base)"})
declare_table("table4", table4, ("erm", "egat-noegl", "egat-noat", "egat"), numeral="IV")
declare_table("table5", table5, (*MAIN_METHODS, *NOT_IN_PAPER), custom_methods=True,
              labels={m: f"{Catalog.builtin().method(m)} (not in the paper)" for m in NOT_IN_PAPER})
