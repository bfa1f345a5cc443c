"""Table helpers: what table builders (benchmark/tables.py), the sweep's report, figures and claims share.

A `Table` (its long frame for the CSV and its Markdown sections), cells (`mean ± se`), GitHub pipe tables, the
CSV + Markdown files with their header, the in-domain observations of declared metrics (benchmark/metrics.py), the
gradient-masking markers and legend (benchmark/flags.py), and the statement of the images and budgets the worst case
(AA) ran at. Torch-free.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.flags import FLAGS
from benchmark.metrics import METRICS
from benchmark.results import Results
from benchmark.store import eps_label

MISSING = "–"


@dataclass
class Table:
    """A rendered table: the long frame (CSV) and the Markdown sections in the paper's layout."""

    name: str
    title: str
    frame: pd.DataFrame
    sections: list[tuple[str, pd.DataFrame]]
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def format_cell(mean: float, se: float = math.nan, n: Any = 1, *, paper: float = math.nan) -> str:
    """`mean ± se` (se when n > 1), 2 decimals, `(paper)` appended when a published value is given."""
    if mean is None or pd.isna(mean):
        return MISSING
    text = f"{mean:.2f}" + (f" ± {se:.2f}" if not pd.isna(n) and n > 1 and not pd.isna(se) else "")
    return text + (f" ({paper:.2f})" if not pd.isna(paper) else "")


def in_domain_obs(results: Results, methods: Sequence[str], metrics: Iterable[str]) -> pd.DataFrame:
    """The in-domain observations of `methods` for the declared `metrics` (benchmark/metrics.py); a metric that is an
    attack's accuracy (PGD-10's aAcc, the worst case's AA) is that attack's at the profile's table eps, named after the
    metric with the attack column cleared, so that it groups like the other metrics."""
    declared = [METRICS.get(name) for name in metrics]
    obs = results.table_obs
    obs = obs[obs["method"].isin(methods) & (obs["test_domain"] == obs["train_domain"])]
    at_table_eps = (obs["metric"] == "aAcc") & (obs["eps"] == eps_label(results.profile.table_eps))
    parts = [obs[obs["metric"].isin([m.name for m in declared if m.attack is None])]]
    parts += [obs[at_table_eps & (obs["attack"] == m.attack)].assign(metric=m.name, attack="", eps="")
              for m in declared if m.attack is not None]
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


#: how the worst case's budgets read in a note: the `aa` attack's parameters (attacks/autoattack.py)
_BUDGET_NAMES = {"n_iter": "iterations", "n_targets": "targets", "n_queries": "queries", "n_restarts": "restarts"}


def _worst_case_budget(images: int | None, params: dict[str, Any]) -> str:
    """`on the first 500 test images, iterations 100, targets 9, queries 5000, restarts 1` (_BUDGET_NAMES' order)."""
    where = "the whole test split" if images is None else f"the first {images} test images"
    order = [*(name for name in _BUDGET_NAMES if name in params), *sorted(set(params) - set(_BUDGET_NAMES))]
    return f"on {where}, " + ", ".join(f"{_BUDGET_NAMES.get(name, name)} {params[name]}" for name in order)


def _models(n: int) -> str:
    return f"{n} model" + "s" * (n != 1)


def worst_case_setting(results: Results, runs: Iterable[dict[str, Any]]) -> str:
    """The images and budgets AA ran at in those of `runs` that have it, as their records state them
    (`metrics.attack_budgets.aa`): one setting, or each distinct one with its number of models, the most common first.
    Records made before they stated it are said to be so, beside the profile's current setting, which is never
    assumed to be theirs."""
    attack, eps = METRICS.get("AA").attack, eps_label(results.profile.table_eps)
    found: Counter[str | None] = Counter()
    for run in runs:
        if eps in run["metrics"].get("aAcc", {}).get(attack, {}):
            budget = run["metrics"].get("attack_budgets", {}).get(attack)
            found[None if budget is None else _worst_case_budget(budget["images"], budget["params"])] += 1
    recorded = sorted((text for text in found if text is not None), key=lambda text: (-found[text], text))
    parts = recorded if len(recorded) == 1 and not found[None] else [f"{text} ({_models(found[text])})"
                                                                      for text in recorded]
    if found[None]:
        setting = results.profile.attack_settings.get(attack)
        now = "on the whole test split, AutoAttack's standard budgets" if setting is None else (
            _worst_case_budget(setting.images, setting.params)
            + ("" if set(_BUDGET_NAMES) <= set(setting.params) else ", the others AutoAttack's standard values"))
        parts.append(f"images and budgets not recorded ({_models(found[None])}: records made before they were; the "
                     f"{results.profile.name} profile now runs it {now})")
    return "; ".join(parts)


def worst_case_note(results: Results, runs: Iterable[dict[str, Any]]) -> str:
    """What AA is and how it ran in `runs` (worst_case_setting), for the notes of the tables and Fig. 5 that show it."""
    eps = eps_label(results.profile.table_eps)
    runs = list(runs)
    attack = METRICS.get("AA").attack
    chained = any(run["metrics"].get("attack_budgets", {}).get(attack, {}).get("chained") for run in runs)
    return (f"AA: the per-sample worst case of APGD-CE, APGD-T and Square at eps {eps} (AutoAttack's count: a point "
            f"is robust only if all three fail), not in the paper, {worst_case_setting(results, runs)}"
            + (f"; at eps {eps} an independent run on every point (the records' other eps but the first are chained: "
               f"the accuracy at any budget up to them, `attack_budgets.{attack}.chained`)" if chained else ""))


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
