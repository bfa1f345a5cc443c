"""Tables I-IV of the paper, rendered from eval records as CSV and Markdown.

Tables are pure functions of the records (benchmark/store.py). Each table is first built as a long
frame with the published reference's columns (dataset, train_domain, test_domain, method, metric)
plus `mean`, `se` and `n` (seeds), so the same code (and claims.py) reads ours and the paper's
numbers. The CSV is that frame, after `# ` lines stating profile, data and settings; the Markdown is
the paper's layout after the same statement as a header paragraph.

- Aggregation: mean over seeds and its standard error SE = sample std (ddof=1) / sqrt(n), shown when
  n > 1. Figures and claims compare means.
- Table II ranks the methods of each train->test column by the displayed (2-decimal) mean,
  descending, ties sharing the best rank (competition ranking: the paper's 97.87 [2], 97.87 [2]);
  each method's rank mean and population variance (ddof=0) over its columns: this reproduces every
  published rank and the paper's "2.17 +- 0.81".
- Table III: trained on the benchmark's first domain (the paper's caption says VOC2007, but its
  numbers are the Caltech101 row of Tables I-II); the training domain's column is its test split.
- Only records of the profile's model enter the tables (other backbones are for Fig. 3); of several
  trainings of one (dataset, domain, method, model, seed), e.g. a `--steps` smoke run beside the full
  run, the one with the most steps is kept and the others are listed in the notes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import PROFILES, Profile
from benchmark.data import DATASETS
from benchmark.evaluate import eps_label
from benchmark.store import Store

MAIN_METHODS = ("erm", "igr", "ign", "dmada", "irm", "dre", "sgdrop", "egat")
#: Table II and Fig. 2: the paper drops DMADA and IRM after Table I (Sec. V-D)
OOD_METHODS = ("erm", "igr", "ign", "dre", "sgdrop", "egat")
SENSITIVITY_METHODS = ("igr", "sgdrop", "egat", "egat-sg", "egat-ig", "egat-finercam", "egat-noise0.01",
                       "egat-noise0.5", "egat-golden")
ABLATION_METHODS = ("erm", "egat-noegl", "egat-noat", "egat")
TABLE_METRICS = ("cAcc", "aAcc", "Comp", "Suff")
#: Markdown bolds the best value of each column: higher cAcc, aAcc, Comp; lower Suff (paper Sec. V-B)
HIGHER_IS_BETTER = {"cAcc": True, "aAcc": True, "Comp": True, "Suff": False}
METRIC_ORDER = (*TABLE_METRICS, "rank", "rank_mean", "rank_var")

#: The paper's names (as in benchmark/reference/paper_tables.csv); other methods show their registry name.
DISPLAY_NAMES = {
    "erm": "ERM", "igr": "IGR", "ign": "IGN", "dmada": "DMADA", "irm": "IRM", "dre": "DRE", "sgdrop": "SGDrop",
    "egat": "EGAT", "at": "AT (Madry)", "egat-noegl": "w/o EGL", "egat-noat": "w/o AT",
    "egat-sg": "EGAT w SmoothGrad", "egat-ig": "EGAT w IntegratedGradients", "egat-finercam": "EGAT w Finer-CAM",
    "egat-noise0.01": "EGAT w N(0,0.01^2)", "egat-noise0.5": "EGAT w N(0,0.5^2)", "egat-golden": "EGAT w golden guide",
}
TABLE_DISPLAY_NAMES = {"table3": {"egat": "EGAT (base)"}}
#: The paper's benchmarks, in the roles the profile's datasets play (first: VLCS-like, second: TerraIncognita-like)
PAPER_ROLES = ("VLCS", "TerraIncognita")
PAPER_DATASET_NAMES = {"vlcs": "VLCS", "terra_incognita": "TerraIncognita"}
TABLE_NUMERALS = {"table1": "I", "table2": "II", "table3": "III", "table4": "IV"}
COLUMNS = ["dataset", "train_domain", "test_domain", "method", "name", "metric", "mean", "se", "n"]
MISSING = "–"


def display_name(method: str, table: str | None = None) -> str:
    """The paper's name of a method (per table: Table III calls EGAT "EGAT (base)")."""
    return TABLE_DISPLAY_NAMES.get(table or "", {}).get(method) or DISPLAY_NAMES.get(method, method)


def standard_error(values: Iterable[float]) -> float:
    """Standard error of the mean over seeds: sample std (ddof=1) / sqrt(n); NaN below two values."""
    arr = np.asarray(list(values), dtype=float)
    return float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else math.nan


def competition_ranks(values: dict[str, float], decimals: int = 2) -> dict[str, int]:
    """Rank 1 = highest value after rounding to the displayed decimals; ties share the best rank."""
    rounded = {k: round(v, decimals) for k, v in values.items()}
    return {k: 1 + sum(other > v for other in rounded.values()) for k, v in rounded.items()}


def rank_summary(ranks: Sequence[float]) -> tuple[float, float]:
    """Mean and population variance (ddof=0) of a method's ranks, as the paper's Table II."""
    arr = np.asarray(ranks, dtype=float)
    return float(arr.mean()), float(arr.var(ddof=0))


def _model(record: dict[str, Any]) -> str:
    return record.get("config", {}).get("train", {}).get("model", "")


def _recency(record: dict[str, Any]) -> tuple[int, int, int, str]:
    """Sort key of competing trainings of one unit: code version, data version, steps, train_key."""
    train = record["config"]["train"]
    return train.get("version", 0), train.get("data_version", 0), train.get("steps", 0), record["train_key"]


def merge_runs(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per trained model, and notes on what was set aside.

    Eval records of one `train_key` (e.g. Table I's PGD-only evaluation and Fig. 2's full grid) are
    merged, attack results united (the first record by key wins a conflict). Of several trainings of
    one (dataset, domain, method, model, seed) the one of the newest training code and data version
    is kept, then the one with the most steps (ties: highest train_key, for determinism): results of
    an older generator or a `--steps` smoke run never mix with the current full run.
    """
    by_train: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r["key"]):
        merged = by_train.get(record["train_key"])
        if merged is None:
            by_train[record["train_key"]] = copy.deepcopy(record)
            continue
        for name, value in record["metrics"].items():
            if name == "aAcc":
                for attack, by_eps in value.items():
                    for eps, acc in by_eps.items():
                        merged["metrics"].setdefault("aAcc", {}).setdefault(attack, {}).setdefault(eps, acc)
            else:
                merged["metrics"].setdefault(name, value)
    units: dict[tuple, list[dict[str, Any]]] = {}
    for record in by_train.values():
        unit = (record["dataset"], record["train_domain"], record["method"], _model(record), record["seed"])
        units.setdefault(unit, []).append(record)
    runs, notes = [], []
    for unit, group in units.items():
        group.sort(key=_recency)
        runs.append(group[-1])
        if len(group) > 1:
            dropped = ", ".join(f"{r['train_key']} ({r['config']['train'].get('steps')} steps)" for r in group[:-1])
            notes.append(f"{'/'.join(map(str, unit))}: kept training {group[-1]['train_key']} "
                         f"({group[-1]['config']['train'].get('steps')} steps), set aside {dropped}")
    return sorted(runs, key=lambda r: r["key"]), notes


OBS_COLUMNS = ["dataset", "train_domain", "test_domain", "method", "model", "seed", "metric", "attack", "eps",
               "value"]


def observations(runs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Every number of every run, one row each: cAcc per test domain (the training domain's test split
    or another domain whole), aAcc per attack and eps (label as recorded), Comp, Suff, time per epoch."""
    rows = []
    for r in runs:
        m, own = r["metrics"], r["train_domain"]
        cells = [(own, "cAcc", "", "", m.get("cAcc"))]
        cells += [(other, "cAcc", "", "", value) for other, value in m.get("ood_cAcc", {}).items()]
        cells += [(own, "aAcc", attack, eps, value) for attack, by_eps in m.get("aAcc", {}).items()
                  for eps, value in by_eps.items()]
        cells += [(own, metric, "", "", m.get(metric)) for metric in ("Comp", "Suff", "time_per_epoch_s")]
        rows += [(r["dataset"], own, test, r["method"], _model(r), r["seed"], metric, attack, eps, float(value))
                 for test, metric, attack, eps, value in cells if value is not None]
    return pd.DataFrame(rows, columns=OBS_COLUMNS)


def summarize(obs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean, standard error (ddof=1) and count of `value` per group of `keys` (groups in input order)."""
    if obs.empty:
        return pd.DataFrame(columns=[*keys, "mean", "se", "n"])
    out = obs.groupby(keys, sort=False)["value"].agg(mean="mean", se=standard_error, n="size").reset_index()
    return out.astype({"n": "Int64"})


@dataclass
class Results:
    """The eval records of one profile, merged per trained model, and their observations."""

    profile: Profile
    runs: list[dict[str, Any]]
    notes: list[str]
    obs: pd.DataFrame

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], profile: str | Profile) -> Results:
        profile = PROFILES.get(profile) if isinstance(profile, str) else profile
        runs, notes = merge_runs(r for r in records if r.get("kind", "eval") == "eval")
        return cls(profile, runs, notes, observations(runs))

    @classmethod
    def load(cls, results_dir: str | Path, profile: str) -> Results:
        """Read `<results_dir>/<profile>/runs/eval/*.json`."""
        return cls.from_records(Store(results_dir, profile).records("eval"), profile)

    @property
    def table_obs(self) -> pd.DataFrame:
        """Observations of the profile's model (the tables' backbone)."""
        return self.obs[self.obs["model"] == self.profile.model]

    def datasets(self) -> list[str]:
        """Datasets with records: the profile's first, in its order, then any others by name."""
        present = set(self.obs["dataset"])
        return [d for d in self.profile.datasets if d in present] + sorted(present - set(self.profile.datasets))

    def domains(self, dataset: str) -> list[str]:
        """The dataset's domain order (registry), then any unregistered names found in records."""
        known = list(DATASETS.get(dataset).domain_names) if dataset in DATASETS else []
        seen = set(self.obs.loc[self.obs["dataset"] == dataset, ["train_domain", "test_domain"]].to_numpy().ravel())
        return known + sorted(seen - set(known))

    def vlcs_like(self) -> str:
        """The benchmark of Tables II-III: the profile's first dataset."""
        return self.profile.datasets[0]

    def role(self, dataset: str) -> str:
        """How a dataset is titled: its name, and the paper benchmark whose role it plays."""
        if dataset in PAPER_DATASET_NAMES:
            return PAPER_DATASET_NAMES[dataset]
        if dataset in self.profile.datasets[: len(PAPER_ROLES)]:
            return f"{dataset} (in the role of {PAPER_ROLES[self.profile.datasets.index(dataset)]})"
        return dataset

    def runs_of(self, pairs: set[tuple[str, str]], models: set[str] | None = None) -> list[dict[str, Any]]:
        """Runs of these (dataset, method) pairs, of the profile's model unless `models` says otherwise."""
        models = models if models is not None else {self.profile.model}
        return [r for r in self.runs if (r["dataset"], r["method"]) in pairs and _model(r) in models]

    def header(self, runs: list[dict[str, Any]], *, compare: bool = False) -> list[str]:
        """What produced these numbers, one statement a line: profile, data, settings, aggregation."""
        p = self.profile
        if p.name == "paper":
            lines = ["paper profile: the paper's setting (Sec. V-A)" + (
                "; published values (arXiv 2603.01938, benchmark/reference/paper_tables.csv) in parentheses in "
                "Markdown and in the CSV column `paper`" if compare else "")]
        else:
            lines = [f"NOT THE PAPER'S RESULTS: {p.name}-profile numbers on the built-in synthetic benchmarks; "
                     "never present them as the paper's (published values: benchmark/reference/paper_tables.csv)"]
        lines.append(f"profile: {p.name}. {p.notes}")
        data = {d: sorted({str(r.get("data", "unknown")) for r in runs if r["dataset"] == d}) for d in self.datasets()}
        lines.append("data: " + ("; ".join(f"{d}: {' | '.join(v)}" for d, v in data.items() if v) or "no records"))
        if runs:
            train = [r["config"]["train"] for r in runs]
            cfg = [r["config"] for r in runs]
            lines.append(
                f"settings: model {_join(t.get('model') for t in train)}; {_join(t.get('steps') for t in train)} "
                f"training steps, batch {_join(t.get('batch_size') for t in train)}, "
                f"lr {_join(t.get('lr') for t in train)}; evaluation attacks "
                f"{_join(a for c in cfg for a in c.get('attacks', []))} at eps "
                f"{_join((eps_label(e) for c in cfg for e in c.get('eps', [])), numeric=True)}, "
                f"{_join(c.get('attack_steps') for c in cfg)} attack steps (alpha eps/4); "
                f"aAcc in tables = PGD at eps {eps_label(p.table_eps)}; "
                f"seeds {_join((r['seed'] for r in runs), numeric=True)}; "
                f"code {_join(r.get('versions', {}).get('code') for r in runs)}, "
                f"torch {_join(r.get('versions', {}).get('torch') for r in runs)}")
        lines.append("aggregation: mean ± standard error over seeds, SE = sample std (ddof=1) / sqrt(n), "
                     "shown when n > 1; n = seeds per cell; – = no record")
        return lines


def _join(values: Iterable[Any], *, numeric: bool = False) -> str:
    """Distinct values, sorted (numerically if asked), comma-joined; `?` when none."""
    distinct = {str(v) for v in values if v is not None}
    ordered = sorted(distinct, key=float) if numeric else sorted(distinct)
    return ", ".join(ordered) or "?"


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
    frame = frame.assign(name=[display_name(m, table) for m in frame["method"]])
    return _sorted(frame[COLUMNS], results, methods)


def format_cell(mean: float, se: float = math.nan, n: Any = 1, *, paper: float = math.nan) -> str:
    """`mean ± se` (se when n > 1), 2 decimals, `(paper)` appended when a published value is given."""
    if mean is None or pd.isna(mean):
        return MISSING
    text = f"{mean:.2f}" + (f" ± {se:.2f}" if not pd.isna(n) and n > 1 and not pd.isna(se) else "")
    return text + (f" ({paper:.2f})" if not pd.isna(paper) else "")


def _per_domain(results: Results, name: str, title: str, methods: Sequence[str], compare: bool) -> Table:
    """Tables I and IV: per dataset and training domain, cAcc / aAcc (PGD at table_eps) / Comp / Suff."""
    obs = results.table_obs
    obs = obs[obs["method"].isin(methods) & (obs["test_domain"] == obs["train_domain"])]
    table_aacc = (obs["metric"] == "aAcc") & (obs["attack"] == "pgd") & (obs["eps"] == eps_label(
        results.profile.table_eps))
    obs = obs[obs["metric"].isin(["cAcc", "Comp", "Suff"]) | table_aacc]
    frame = _finish(summarize(obs, ["dataset", "train_domain", "test_domain", "method", "metric"]), name, results,
                    methods)
    if compare:
        frame = with_paper(frame, name)
    sections = []
    for dataset in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == dataset]
        domains = [d for d in results.domains(dataset) if d in set(part["train_domain"])]
        rows = [m for m in methods if m in set(part["method"])]
        wide = pd.DataFrame(index=[display_name(m, name) for m in rows],
                            columns=[f"{d} {metric}" for d in domains for metric in TABLE_METRICS], data=MISSING)
        for d in domains:
            for metric in TABLE_METRICS:
                cells = part[(part["train_domain"] == d) & (part["metric"] == metric)]
                if cells.empty:
                    continue
                best = cells["mean"].max() if HIGHER_IS_BETTER[metric] else cells["mean"].min()
                for row in cells.itertuples():
                    text = format_cell(row.mean, row.se, row.n, paper=getattr(row, "paper", math.nan))
                    is_best = len(cells) > 1 and round(row.mean, 2) == round(best, 2)
                    wide.loc[display_name(row.method, name), f"{d} {metric}"] = f"**{text}**" if is_best else text
        sections.append((results.role(dataset), wide))
    notes = ["aAcc: accuracy under PGD at eps " + eps_label(results.profile.table_eps) + " on the training "
             "domain's test split; cAcc on the same split; Comp / Suff: ERASER-style AOPC of Grad-CAM (x100, "
             "Comp higher and Suff lower is better); bold: best mean of each column"]
    return Table(name, title, frame, sections, notes, _runs(results, frame))


def _runs(results: Results, frame: pd.DataFrame) -> list[dict[str, Any]]:
    return results.runs_of(set(zip(frame["dataset"], frame["method"], strict=True)))


def table1(results: Results, *, methods: Sequence[str] = MAIN_METHODS, compare: bool = False) -> Table:
    """Table I: in-domain cAcc, aAcc, Comp, Suff of the main methods, per dataset and training domain."""
    return _per_domain(results, "table1", "Table I: performance per training domain (cAcc, aAcc, Comp, Suff)",
                       methods, compare)


def table4(results: Results, *, compare: bool = False) -> Table:
    """Table IV: the ablation (ERM, w/o EGL, w/o AT, EGAT) with Table I's columns."""
    return _per_domain(results, "table4", "Table IV: ablation of EGAT's adversarial (AT) and explanation-guided "
                       "(EGL) losses", ABLATION_METHODS, compare)


def table2(results: Results, *, compare: bool = False) -> Table:
    """Table II: OOD cAcc per train -> test pair on the VLCS-like benchmark, with per-column ranks and
    each method's rank mean and variance."""
    dataset = results.vlcs_like()
    obs = results.table_obs
    obs = obs[(obs["dataset"] == dataset) & obs["method"].isin(OOD_METHODS) & (obs["metric"] == "cAcc")
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
    frame = _finish(frame.astype({"n": "Int64", "mean": float, "se": float}), "table2", results, OOD_METHODS)
    if compare:
        frame = with_paper(frame, "table2")
    domains = results.domains(dataset)
    columns = [(tr, te) for tr in domains for te in domains
               if ((frame["train_domain"] == tr) & (frame["test_domain"] == te)).any()]
    rows = [m for m in OOD_METHODS if m in set(frame["method"])]
    wide = pd.DataFrame(index=[display_name(m) for m in rows],
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
                wide.loc[display_name(m), f"{tr} → {te}"] = text
        mean_row, var_row = value(m, "all", "all", "rank_mean"), value(m, "all", "all", "rank_var")
        if mean_row is not None:
            text = f"{mean_row['mean']:.2f} ± {var_row['mean']:.2f}"
            if compare and not pd.isna(mean_row.get("paper")):
                text += f" ({mean_row['paper']:.2f} ± {var_row['paper']:.2f})"
            wide.loc[display_name(m), "Ranking Avg. ± Var."] = text
    notes = [f"cAcc (%) of models trained on one domain of {dataset} and tested on another domain, whole; "
             "[rank] within the column among the methods shown (by the 2-decimal mean, descending, ties share "
             "the best rank); last column: mean ± population variance (ddof=0) of each method's ranks, as the "
             "paper computes them (its 2.17 ± 0.81 for EGAT). DMADA and IRM are left out as in the paper "
             "(Sec. V-D)"]
    return Table("table2", "Table II: out-of-domain clean accuracy and ranking per train -> test pair",
                 frame, [(results.role(dataset), wide)] if rows else [], notes, _runs(results, frame))


def table3(results: Results, *, compare: bool = False) -> Table:
    """Table III: EGAT's explainer and guide-map variants beside IGR and SGDrop, trained on the first
    domain of the VLCS-like benchmark and tested on every domain."""
    dataset = results.vlcs_like()
    domains = list(DATASETS.get(dataset).domain_names) if dataset in DATASETS else results.domains(dataset)
    first = domains[0]
    obs = results.table_obs
    obs = obs[(obs["dataset"] == dataset) & (obs["train_domain"] == first) & obs["method"].isin(SENSITIVITY_METHODS)
              & (obs["metric"] == "cAcc")]
    frame = _finish(summarize(obs, ["dataset", "train_domain", "test_domain", "method", "metric"]), "table3",
                    results, SENSITIVITY_METHODS)
    if compare:
        frame = with_paper(frame, "table3")
    rows = [m for m in SENSITIVITY_METHODS if m in set(frame["method"])]
    tests = [d for d in results.domains(dataset) if d in set(frame["test_domain"])]
    wide = pd.DataFrame(index=[display_name(m, "table3") for m in rows], columns=tests, data=MISSING)
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


def reference() -> pd.DataFrame:
    """The published numbers, long format (table, dataset, train_domain, test_domain, method, metric, value)."""
    with resources.files("benchmark").joinpath("reference/paper_tables.csv").open() as f:
        return pd.read_csv(f)


def _paper_domain(domain: str) -> str:
    """Our domain name as the paper writes it (TerraIncognita's L38 is "Location 38")."""
    return f"Location {domain[1:]}" if domain[:1] == "L" and domain[1:].isdigit() else domain


def with_paper(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """`frame` with a `paper` column: the published value of each row (NaN where none)."""
    ref = reference()
    ref = ref[ref["table"] == TABLE_NUMERALS[table]]
    lookup = {tuple(k): v for *k, v in ref[["dataset", "train_domain", "test_domain", "method", "metric",
                                            "value"]].itertuples(index=False)}
    values = [lookup.get((PAPER_DATASET_NAMES.get(r.dataset, r.dataset), _paper_domain(r.train_domain),
                          _paper_domain(r.test_domain), r.name, r.metric), math.nan)
              for r in frame.itertuples()]
    return frame.assign(paper=pd.Series(values, index=frame.index, dtype=float))


def _our_domain(domain: str) -> str:
    """The paper's domain name as our dataset spells it ("Location 38" is L38)."""
    return f"L{domain.split()[1]}" if domain.startswith("Location ") else domain


def reference_frames(*, our_names: bool = False) -> dict[str, pd.DataFrame]:
    """The published Tables I-IV in our long schema (method = registry name), for claims.py;
    `our_names`: datasets and domains as the paper profile names them (vlcs, L38, ...)."""
    ref = reference()
    if our_names:
        datasets = {v: k for k, v in PAPER_DATASET_NAMES.items()}
        ref = ref.assign(dataset=ref["dataset"].map(datasets), train_domain=ref["train_domain"].map(_our_domain),
                         test_domain=ref["test_domain"].map(_our_domain))
    out = {}
    for table, numeral in TABLE_NUMERALS.items():
        names = {display_name(m, table): m for m in (*DISPLAY_NAMES, *TABLE_DISPLAY_NAMES.get(table, {}))}
        part = ref[ref["table"] == numeral]
        out[table] = pd.DataFrame({
            "dataset": part["dataset"], "train_domain": part["train_domain"], "test_domain": part["test_domain"],
            "method": part["method"].map(names), "name": part["method"], "metric": part["metric"],
            "mean": part["value"].astype(float), "se": math.nan, "n": pd.array([pd.NA] * len(part), dtype="Int64"),
        }).reset_index(drop=True)
    return out


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


TABLES = ("table1", "table2", "table3", "table4")


def build_tables(results: Results, *, names: Sequence[str] = TABLES, methods: Sequence[str] | None = None,
                 compare: bool = False) -> dict[str, Table]:
    """Tables by name; `methods` replaces Table I's rows (default: the paper's eight)."""
    builders = {
        "table1": lambda: table1(results, methods=tuple(methods or MAIN_METHODS), compare=compare),
        "table2": lambda: table2(results, compare=compare),
        "table3": lambda: table3(results, compare=compare),
        "table4": lambda: table4(results, compare=compare),
    }
    return {name: builders[name]() for name in names}


def render_tables(results: Results, out_dir: str | Path, *, names: Sequence[str] = TABLES,
                  methods: Sequence[str] | None = None, compare: bool | None = None) -> list[Path]:
    """Write the named tables as CSV + Markdown; `compare` (default: paper profile) adds published values."""
    compare = results.profile.name == "paper" if compare is None else compare
    written = []
    for table in build_tables(results, names=names, methods=methods, compare=compare).values():
        written += write_table(table, [*results.header(table.runs, compare=compare),
                                       *(f"set aside: {n}" for n in results.notes)], out_dir)
    return written
