"""Tables I-IV of the paper and our Table V, rendered from the results model (benchmark/results.py) as CSV and Markdown.

Each table is first built as a long frame with the published reference's columns (dataset,
train_domain, test_domain, method, metric) plus `mean`, `se` and `n` (seeds), so the same code (and
claims.py) reads ours and the paper's numbers. The CSV is that frame, after `# ` lines stating
profile, data and settings; the Markdown is the paper's layout after the same statement as a header
paragraph. Each table is declared once, at the end of this file (benchmark/artefacts.py).

- Table II ranks the methods of each train->test column by the displayed (2-decimal) mean,
  descending, ties sharing the best rank (competition ranking: the paper's 97.87 [2], 97.87 [2]);
  each method's rank mean and population variance (ddof=0) over its columns: this reproduces every
  published rank and the paper's "2.17 +- 0.81".
- Table III: trained on the benchmark's first domain (the paper's caption says VOC2007, but its
  numbers are the Caltech101 row of Tables I-II); the training domain's column is its test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import artefacts
from benchmark.artefacts import ARTEFACTS, Artefact, Grid, RenderRequest
from benchmark.catalog import Catalog
from benchmark.flags import FLAGS
from benchmark.reference import COLUMNS, with_paper
from benchmark.results import CALIBRATION_MAPS, CALIBRATION_METRICS, Results, summarize
from benchmark.store import eps_label

#: Table I's rows: the paper's eight methods
MAIN_METHODS = ("erm", "igr", "ign", "dmada", "irm", "dre", "sgdrop", "egat")
#: Reference rows Table I adds after the paper's, marked as not in the paper (claims compare the paper's rows only)
NOT_IN_PAPER = {"egat-advce": "EGAT with L_cls = CE on x_adv, our second reading of Eq. 5",
                "at": "Madry PGD adversarial training, the robustness reference the paper omits"}
#: Table II and Fig. 2: the paper drops DMADA and IRM after Table I (Sec. V-D)
OOD_METHODS = ("erm", "igr", "ign", "dre", "sgdrop", "egat")
#: Tables I and IV's columns per domain; the cue-free accuracy (built-in data) and AA (the worst case, ours) appear
#: only where records have them
TABLE_METRICS = ("cAcc", "cAcc_cue_free", "aAcc", "AA", "Comp", "Suff")
OPTIONAL_METRICS = ("cAcc_cue_free", "AA")
#: the worst-case attack whose accuracy is the AA column (attacks/autoattack.py)
WORST_CASE = "aa"
#: Table V's columns (ours, not in the paper), in order, with their display names; flags are a column of markers
SCORECARD_METRICS = {
    "cAcc": "cAcc", "cAcc_cue_free": "cue-free cAcc", "aAcc": "PGD-10", "AA": "AA",
    "Comp": "Comp", "Suff": "Suff", "Comp_blur": "Comp (blur)", "Suff_blur": "Suff (blur)",
    "relevance_mass": "rel. mass", "relevance_rank": "top-k in mask", "pointing_game": "pointing",
    "stability_topk": "top-k ∩ (adv)", "stability_spearman": "Spearman (adv)",
    "randomization_spearman": "Spearman (rand. weights)",
}
#: Markdown bolds the best value of each column: higher cAcc, aAcc, Comp; lower Suff (paper Sec. V-B); ours likewise
HIGHER_IS_BETTER = {"cAcc": True, "cAcc_cue_free": True, "aAcc": True, "AA": True, "Comp": True, "Suff": False,
                    "Comp_blur": True, "Suff_blur": False, "relevance_mass": True, "relevance_rank": True,
                    "pointing_game": True, "stability_topk": True, "stability_spearman": True,
                    "randomization_spearman": False}
METRIC_ORDER = (*dict.fromkeys([*TABLE_METRICS, *SCORECARD_METRICS]), "rank", "rank_mean", "rank_var")
MISSING = "–"


def competition_ranks(values: dict[str, float], decimals: int = 2) -> dict[str, int]:
    """Rank 1 = highest value after rounding to the displayed decimals; ties share the best rank."""
    rounded = {k: round(v, decimals) for k, v in values.items()}
    return {k: 1 + sum(other > v for other in rounded.values()) for k, v in rounded.items()}


def rank_summary(ranks: Sequence[float]) -> tuple[float, float]:
    """Mean and population variance (ddof=0) of a method's ranks, as the paper's Table II."""
    arr = np.asarray(ranks, dtype=float)
    return float(arr.mean()), float(arr.var(ddof=0))


@dataclass
class Table:
    """A rendered table: the long frame (CSV) and the Markdown sections in the paper's layout."""

    name: str
    title: str
    frame: pd.DataFrame
    sections: list[tuple[str, pd.DataFrame]]
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def _sorted(frame: pd.DataFrame, results: Results, methods: Sequence[str]) -> pd.DataFrame:
    """Rows in table order: dataset, training domain, test domain, method (given order), metric."""
    datasets = results.datasets()
    domains = {d: [*results.domains(d), "all"] for d in set(frame["dataset"])}
    keys = [(datasets.index(r.dataset), domains[r.dataset].index(r.train_domain),
             domains[r.dataset].index(r.test_domain), list(methods).index(r.method), METRIC_ORDER.index(r.metric))
            for r in frame.itertuples()]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def _finish(frame: pd.DataFrame, table: str, results: Results, methods: Sequence[str]) -> pd.DataFrame:
    """The long frame of a table: display names added, columns and rows in order."""
    frame = frame.assign(name=[artefacts.label(results.catalog, m, table) for m in frame["method"]])
    return _sorted(frame[COLUMNS], results, methods)


def format_cell(mean: float, se: float = math.nan, n: Any = 1, *, paper: float = math.nan) -> str:
    """`mean ± se` (se when n > 1), 2 decimals, `(paper)` appended when a published value is given."""
    if mean is None or pd.isna(mean):
        return MISSING
    text = f"{mean:.2f}" + (f" ± {se:.2f}" if not pd.isna(n) and n > 1 and not pd.isna(se) else "")
    return text + (f" ({paper:.2f})" if not pd.isna(paper) else "")


def in_domain_obs(results: Results, methods: Sequence[str], metrics: Iterable[str]) -> pd.DataFrame:
    """The in-domain observations of `methods` for `metrics`, where "aAcc" is PGD-10 and "AA" the worst case, both
    at the profile's table eps (the attack column cleared, so they group like the other metrics)."""
    obs = results.table_obs
    obs = obs[obs["method"].isin(methods) & (obs["test_domain"] == obs["train_domain"])]
    at_table_eps = (obs["metric"] == "aAcc") & (obs["eps"] == eps_label(results.profile.table_eps))
    pgd, worst = obs[at_table_eps & (obs["attack"] == "pgd")], obs[at_table_eps & (obs["attack"] == WORST_CASE)]
    parts = [obs[obs["metric"].isin([m for m in metrics if m not in ("aAcc", "AA")])]]
    parts += [pgd.assign(attack="", eps="")] if "aAcc" in metrics else []
    parts += [worst.assign(metric="AA", attack="", eps="")] if "AA" in metrics else []
    return pd.concat(parts, ignore_index=True)


def flag_markers(results: Results) -> dict[tuple[str, str, str], str]:
    """(dataset, train_domain, method) -> the markers of the gradient-masking flags that fired on any of its seeds,
    each followed by `(k/n)` when it fired on k of n seeds only (benchmark/flags.py)."""
    obs = results.table_obs
    obs = obs[obs["metric"].str.startswith("flag:")]
    found: dict[tuple[str, str, str], str] = {}
    for (dataset, domain, method), group in obs.groupby(["dataset", "train_domain", "method"], sort=False):
        text = ""
        for flag in FLAGS:
            values = group.loc[group["metric"] == f"flag:{flag.name}", "value"]
            fired = int(values.sum())
            if fired:
                text += flag.marker + ("" if fired == len(values) else f"({fired}/{len(values)})")
        if text:
            found[(dataset, domain, method)] = text
    return found


def flag_legend(results: Results, methods: Iterable[str], markers: dict[tuple[str, str, str], str]) -> list[str]:
    """The legend of the flags shown for `methods` (a line saying none fired, or that no record was checked)."""
    methods = set(methods)
    markers = {k: v for k, v in markers.items() if k[2] in methods}
    obs = results.table_obs
    if not (obs["metric"].str.startswith("flag:") & obs["method"].isin(methods)).any():
        return ["gradient-masking checks (benchmark/flags.py): not in these records (made before the checks)"]
    shown = [f for f in FLAGS if any(f.marker in text for text in markers.values())]
    if not shown:
        return ["gradient-masking checks (benchmark/flags.py): none fired"]
    return ["gradient-masking flags beside aAcc (benchmark/flags.py; (k/n): on k of n seeds only): "
            + "; ".join(f"{f.marker} {f.meaning}" for f in shown)]


def _per_domain(results: Results, name: str, title: str, methods: Sequence[str], compare: bool) -> Table:
    """Tables I and IV: per dataset and training domain, cAcc / aAcc (PGD at table_eps) / AA / Comp / Suff, the
    aAcc cell marked with the gradient-masking flags that fired."""
    obs = in_domain_obs(results, methods, TABLE_METRICS)
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
        metrics = [m for m in TABLE_METRICS if m not in OPTIONAL_METRICS or (part["metric"] == m).any()]
        wide = pd.DataFrame(index=[artefacts.label(results.catalog, m, name) for m in rows],
                            columns=[f"{d} {metric}" for d in domains for metric in metrics], data=MISSING)
        for d in domains:
            for metric in metrics:
                cells = part[(part["train_domain"] == d) & (part["metric"] == metric)]
                if cells.empty:
                    continue
                best = cells["mean"].max() if HIGHER_IS_BETTER[metric] else cells["mean"].min()
                for row in cells.itertuples():
                    text = format_cell(row.mean, row.se, row.n, paper=getattr(row, "paper", math.nan))
                    is_best = len(cells) > 1 and round(row.mean, 2) == round(best, 2)
                    text = f"**{text}**" if is_best else text
                    if metric == "aAcc" and (dataset, d, row.method) in markers:
                        text += " " + markers[(dataset, d, row.method)]
                    wide.loc[artefacts.label(results.catalog, row.method, name), f"{d} {metric}"] = text
        sections.append((results.role(dataset), wide))
    cue_free = ("cAcc_cue_free: on the same split's cue-free twins, the same objects with the spurious cue drawn "
                "independently of the class; " if (frame["metric"] == "cAcc_cue_free").any() else "")
    worst = ("AA: the per-sample worst case of APGD-CE, APGD-T and Square (AutoAttack's count" + (
        f"; {results.profile.name} profile: {_worst_case_setting(results)}" if WORST_CASE in
        results.profile.attack_settings else "; standard version") + "), not in the paper; "
        if (frame["metric"] == "AA").any() else "")
    notes = ["aAcc: accuracy under PGD-10 at eps " + eps_label(results.profile.table_eps) + " on the training "
             f"domain's test split; cAcc on the same split; {cue_free}{worst}Comp / Suff: ERASER-style AOPC of "
             "Grad-CAM (x100, Comp higher and Suff lower is better); bold: best mean of each column",
             *flag_legend(results, set(frame["method"]), markers)]
    notes += [f"{artefacts.label(results.catalog, m, name)}: {why}" for m, why in NOT_IN_PAPER.items()
              if m in set(frame["method"])]
    return Table(name, title, frame, sections, notes, _runs(results, frame))


def _worst_case_setting(results: Results) -> str:
    params = results.profile.attack_settings[WORST_CASE].params
    return "reduced, " + ", ".join(f"{k} {v}" for k, v in params.items())


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
    domains = list(results.catalog.datasets.get(dataset, ())) or results.domains(dataset)
    first = domains[0]
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
    obs = in_domain_obs(results, methods, SCORECARD_METRICS)
    keys = ["dataset", "train_domain", "test_domain", "method", "metric"]
    frame = _finish(summarize(obs, keys), "table5", results, methods)
    markers = flag_markers(results)
    sections = []
    for dataset in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == dataset]
        metrics = [m for m in SCORECARD_METRICS if (part["metric"] == m).any()]
        rows = [(d, m) for d in results.domains(dataset) for m in methods
                if ((part["train_domain"] == d) & (part["method"] == m)).any()]
        wide = pd.DataFrame(index=[f"{d} · {artefacts.label(results.catalog, m, 'table5')}" for d, m in rows],
                            columns=[*(SCORECARD_METRICS[m] for m in metrics), "flags"], data=MISSING)
        for (d, m), index in zip(rows, wide.index, strict=True):
            for row in part[(part["train_domain"] == d) & (part["method"] == m)].itertuples():
                wide.loc[index, SCORECARD_METRICS[row.metric]] = format_cell(row.mean, row.se, row.n)
            wide.loc[index, "flags"] = markers.get((dataset, d, m), "") or "none"
        sections.append((f"{results.role(dataset)}: robustness and explanations", wide))
        calibration = _calibration(results, dataset, methods)
        if calibration is not None:
            sections.append((f"{results.role(dataset)}: calibration (reference maps on each method's models, mean "
                             "over training domains and seeds)", calibration))
    notes = [f"ours, not in the paper. PGD-10 and AA at eps {eps_label(results.profile.table_eps)} on the training "
             "domain's test split; Comp / Suff (x100): ERASER AOPC of Grad-CAM with removed pixels set to black (the "
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
    names = {f"{metric}@{ref}": f"{ref.replace('_', ' ')}: {SCORECARD_METRICS[metric]}"
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


def markdown_table(frame: pd.DataFrame, corner: str = "Model") -> str:
    """A GitHub pipe table of a frame of strings (index = first column)."""
    def row(cells: Iterable[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row([corner, *frame.columns]), "|" + "|".join(["---"] * (len(frame.columns) + 1)) + "|"]
    lines += [row([index, *values]) for index, values in zip(frame.index, frame.to_numpy().tolist(), strict=True)]
    return "\n".join(lines)


def write_table(table: Table, header: list[str], out_dir: str | Path) -> list[Path]:
    """Write `<name>.csv` (header as `# ` lines, readable by pd.read_csv(comment="#")) and `<name>.md`
    (header as a paragraph: its first line, the status of the numbers, in bold)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    statements = [*header, *(f"note: {n}" for n in table.notes)]
    csv_path, md_path = out / f"{table.name}.csv", out / f"{table.name}.md"
    csv_text = "".join(f"# {line}\n" for line in [table.title, *statements])
    csv_path.write_text(csv_text + table.frame.to_csv(index=False, float_format="%.4f", lineterminator="\n"),
                        encoding="utf-8")
    md = [f"# {table.title}", "", f"**{statements[0]}**", "", *(f"- {line}" for line in statements[1:]), ""]
    for heading, wide in table.sections:
        md += [f"## {heading}", "", markdown_table(wide), ""]
    if not table.sections:
        md += ["_No records for this table yet._", ""]
    md_path.write_text("\n".join(md), encoding="utf-8")
    return [csv_path, md_path]


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
