"""The verdict study (ours, not in the paper): Table VI, its verdicts across settings, and Fig. 6.

Do the verdicts of claims.md survive a change of budget? The study trains Table VI's methods (STUDY_METHODS) on
the first training domain of each dataset, for the profile's seeds, under each study setting
(benchmark/config.py SETTINGS: `quick` itself, `short-attack`, `budget`, `resnet`), evaluates them as Table I's jobs
are, and re-checks every claim it can check per setting with claims.md's statistics (benchmark/verdicts.py):

- 1a / 1b: EGAT's PGD-10 / AA accuracy minus the strongest other paper method's in the grid (ERM, DRE, IGN),
  paired by seed, > -MARGIN; Holm over the datasets (claims.md: over the domains, one per dataset here);
- 2 (a proxy of claim 2 on these models): EGAT's mean rank over Table II's train -> test columns (the first domain
  against every other) among ERM, DRE, IGN and EGAT, minus the best other's, per seed, < RANK_MARGIN;
- 3: the ablation directions of claims.md (removing AT lowers aAcc; removing EGL keeps aAcc, lowers Comp, raises
  Suff);
- two questions of ours: EGAT >= Madry AT under AA (non-inferiority, MARGIN), EGAT > ERM on cue-free accuracy.

Every check is made per dataset (units: seeds): Fig. 6's panels are the intervals behind the verdicts. A check is
**stable** when its verdict is the same in every setting (incomplete where a setting lacks its records). Declared
before any of the study's numbers were seen. Torch-free.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark import artefacts
from benchmark.artefacts import ARTEFACTS, Artefact, Grid, RenderRequest
from benchmark.config import SETTINGS
from benchmark.display_catalog import Catalog
from benchmark.figures import MARKERS
from benchmark.plotting import plt, save_png, wrap_title
from benchmark.results import Results, setting_of, summarize
from benchmark.tables import competition_ranks, rank_summary
from benchmark.tabulation import MISSING, Table, format_cell, in_domain_obs, write_table
from benchmark.verdicts import (
    CONTRADICTED,
    INCONCLUSIVE,
    MARGIN,
    NOT_RUN,
    RANK_MARGIN,
    SUPPORTED,
    Interval,
    Rule,
    holm,
    interval,
    pairs,
    verdict,
)

#: Table VI's rows: the paper's methods that the study can afford, EGAT's ablations and second reading, Madry AT
STUDY_METHODS = ("erm", "dre", "ign", "egat", "egat-noegl", "egat-noat", "egat-advce", "at")
#: the paper's methods among them: claim 1's rivals and claim 2's ranking
PAPER_METHODS = ("erm", "dre", "ign", "egat")
#: the settings, in Table VI's order (the first is the reference: the profile itself)
STUDY_SETTINGS = ("quick", "short-attack", "budget", "resnet")
#: Table VI's columns: (metric in the records, column title); `ood` is the mean over the other domains' cAcc
COLUMNS = (("cAcc", "cAcc"), ("cAcc_cue_free", "cue-free cAcc"), ("ood", "mean OOD cAcc"), ("aAcc", "PGD-10"),
           ("AA", "AA"), ("relevance_mass", "rel. mass"), ("Comp_blur", "Comp (blur)"), ("Suff_blur", "Suff (blur)"))
STABLE, UNSTABLE, INCOMPLETE = "stable", "NOT STABLE", "incomplete"


def study_cells(results: Results) -> pd.DataFrame:
    """Per (dataset, first domain, method, seed): Table VI's metrics as cells (UNIT + method, metric, value), plus
    Comp and Suff (black fill: claims.md's ablation rules) and the per-column OOD cAcc the rank check reads
    (metric `cAcc` with its test domain)."""
    obs = results.table_obs
    if obs.empty:
        return pd.DataFrame(columns=["dataset", "train_domain", "test_domain", "seed", "method", "metric", "value"])
    firsts = {d: results.first_domain(d) for d in set(obs["dataset"])}
    obs = obs[obs["method"].isin(STUDY_METHODS) & (obs["train_domain"] == obs["dataset"].map(firsts))]
    own = in_domain_obs(results, STUDY_METHODS, [name for name, _ in COLUMNS if name != "ood"] + ["Comp", "Suff"])
    own = own[own["train_domain"] == own["dataset"].map(firsts)]
    other = obs[(obs["metric"] == "cAcc") & (obs["test_domain"] != obs["train_domain"])]
    mean_ood = (other.groupby(["dataset", "train_domain", "method", "seed"], sort=False)["value"].mean()
                .reset_index().assign(metric="ood"))
    mean_ood["test_domain"] = mean_ood["train_domain"]
    columns = ["dataset", "train_domain", "test_domain", "seed", "method", "metric", "value"]
    return pd.concat([own[columns], mean_ood[columns], other[columns]], ignore_index=True)


@dataclass(frozen=True)
class StudyCheck:
    """One declared check of the study: its name, what it compares and how, per dataset."""

    key: str
    title: str
    #: (cells of one dataset) -> (paired differences per seed, their text) or None without the records
    differences: Callable[[pd.DataFrame], tuple[pd.Series, str] | None]
    threshold: float
    side: str  # "above": the claim is difference > threshold; "below": < threshold
    unit: str  # what the difference is measured in (Fig. 6)
    #: Holm over the datasets (claim 1, as claims.md corrects it over domains)
    family: bool = False


def _best_other(metric: str) -> Callable[[pd.DataFrame], tuple[pd.Series, str] | None]:
    """EGAT minus the strongest other paper method's `metric` (by mean), per seed."""
    def differences(cells: pd.DataFrame) -> tuple[pd.Series, str] | None:
        cell = cells[(cells["metric"] == metric) & cells["method"].isin(PAPER_METHODS)
                     & (cells["test_domain"] == cells["train_domain"])]
        others = cell[cell["method"] != "egat"].groupby("method")["value"].mean()
        if "egat" not in set(cell["method"]) or others.empty:
            return None
        rival = others.idxmax()
        both = pairs(cell, metric, "egat", rival)
        return (both["egat"] - both[rival]).reset_index(drop=True), f"EGAT - {_name(rival)}"
    return differences


def _rule(rule: Rule) -> Callable[[pd.DataFrame], tuple[pd.Series, str] | None]:
    """rule.a minus rule.b on rule.metric, in-domain, per seed."""
    def differences(cells: pd.DataFrame) -> tuple[pd.Series, str] | None:
        both = pairs(cells[cells["test_domain"] == cells["train_domain"]], rule.metric, rule.a, rule.b)
        if both.empty:
            return None
        return (both[rule.a] - both[rule.b]).reset_index(drop=True), f"{_name(rule.a)} - {_name(rule.b)}"
    return differences


def _rank_difference(cells: pd.DataFrame) -> tuple[pd.Series, str] | None:
    """Per seed: EGAT's mean rank over the train -> test columns (Table II's competition ranks among the paper
    methods) minus the best other method's."""
    ood = cells[(cells["metric"] == "cAcc") & cells["method"].isin(PAPER_METHODS)
                & (cells["test_domain"] != cells["train_domain"])]
    found = []
    for _seed, part in ood.groupby("seed"):
        ranks: dict[str, list[int]] = {}
        for _, column in part.groupby("test_domain", sort=False):
            for method, rank in competition_ranks(dict(zip(column["method"], column["value"], strict=True))).items():
                ranks.setdefault(method, []).append(rank)
        means = {m: rank_summary(r)[0] for m, r in ranks.items()}
        if "egat" in means and len(means) > 1:
            found.append(means["egat"] - min(v for m, v in means.items() if m != "egat"))
    return (pd.Series(found, dtype=float), "EGAT's mean rank - best other's") if found else None


def _name(method: str) -> str:
    """A method's name as Table VI labels it (the built-in declarations': the checks are about them)."""
    return artefacts.label(Catalog.builtin(), method, "table6")


CHECKS = (
    StudyCheck("1a", "claim 1a: EGAT has the best PGD-10 accuracy", _best_other("aAcc"), -MARGIN, "above",
               "points", family=True),
    StudyCheck("1b", "claim 1b: EGAT has the best AA accuracy", _best_other("AA"), -MARGIN, "above", "points",
               family=True),
    StudyCheck("2", "claim 2 (proxy): EGAT has the best mean OOD rank", _rank_difference, RANK_MARGIN, "below",
               "ranks"),
    StudyCheck("3 AT", "claim 3: removing AT lowers PGD-10 accuracy", _rule(Rule("aAcc", "egat-noat", "egat", "<")),
               0.0, "below", "points"),
    StudyCheck("3 EGL aAcc", "claim 3: removing EGL keeps or raises PGD-10 accuracy",
               _rule(Rule("aAcc", "egat-noegl", "egat", ">=")), -MARGIN, "above", "points"),
    StudyCheck("3 EGL Comp", "claim 3: removing EGL lowers Comp", _rule(Rule("Comp", "egat-noegl", "egat", "<")),
               0.0, "below", "points"),
    StudyCheck("3 EGL Suff", "claim 3: removing EGL raises Suff", _rule(Rule("Suff", "egat-noegl", "egat", ">")),
               0.0, "above", "points"),
    StudyCheck("ours AT", "ours: EGAT is at least as robust as Madry AT under AA",
               _rule(Rule("AA", "egat", "at", ">=")), -MARGIN, "above", "points"),
    StudyCheck("ours cue", "ours: EGAT beats ERM on cue-free accuracy",
               _rule(Rule("cAcc_cue_free", "egat", "erm", ">")), 0.0, "above", "points"),
)


@dataclass
class Outcome:
    """A check on one dataset under one setting."""

    check: StudyCheck
    setting: str
    dataset: str
    status: str
    found: Interval | None
    detail: str


def check_setting(results: Results, setting: str) -> list[Outcome]:
    """Every check on every dataset of one setting's results (`results` already under it)."""
    cells = study_cells(results)
    outcomes = []
    for check in CHECKS:
        found_family = []
        for dataset in results.profile.datasets:
            mine = cells[cells["dataset"] == dataset]
            made = check.differences(mine) if not mine.empty else None
            if made is None:
                outcomes.append(Outcome(check, setting, dataset, NOT_RUN, None, "no records"))
                continue
            diffs, what = made
            found = interval(diffs, check.threshold, check.side)
            outcome = Outcome(check, setting, dataset, verdict(found), found, f"{what} = {found.text()} seeds")
            outcomes.append(outcome)
            found_family.append(outcome)
        if check.family and found_family:
            claim_p = holm([o.found.p_claim for o in found_family])
            other_p = holm([o.found.p_other for o in found_family])
            for outcome, pc, po in zip(found_family, claim_p, other_p, strict=True):
                outcome.status = verdict(outcome.found, pc, po)
                if outcome.found.n >= 2:
                    outcome.detail += f"; Holm-adjusted p {pc:.3f} (of {len(found_family)} datasets)"
    return outcomes


def settings_results(results: Results) -> dict[str, Results]:
    """The results under each study setting (the reference: `results` itself)."""
    return {name: results.under(name) for name in STUDY_SETTINGS}


def has_study_records(by_setting: dict[str, Results]) -> bool:
    """Whether any setting other than the reference has records of its own: without them there is nothing to
    compare, and Table VI and Fig. 6 are not drawn."""
    return any(r.profile.setting is not None and any(setting_of(run) for run in r.runs)
               for r in by_setting.values())


def stability(outcomes: Sequence[Outcome]) -> list[tuple[StudyCheck, str, str, dict[str, Outcome]]]:
    """Per (check, dataset): whether its verdict is stable across the settings, with each setting's outcome."""
    rows = []
    for check in CHECKS:
        for dataset in dict.fromkeys(o.dataset for o in outcomes):
            mine = {o.setting: o for o in outcomes if o.check is check and o.dataset == dataset}
            statuses = [mine[s].status for s in STUDY_SETTINGS if s in mine]
            state = (INCOMPLETE if NOT_RUN in statuses or len(statuses) < len(STUDY_SETTINGS)
                     else STABLE if len(set(statuses)) == 1 else UNSTABLE)
            rows.append((check, dataset, state, mine))
    return rows


def verdict_lines(results: Results) -> list[str]:
    """One Markdown line per (check, dataset): its verdict in each setting and whether it is stable (claims.md's
    section, Table VI's notes and the README quote them)."""
    by_setting = settings_results(results)
    outcomes = [o for name, r in by_setting.items() for o in check_setting(r, name)]
    lines = []
    for check, dataset, state, mine in stability(outcomes):
        cells = ", ".join(f"{s} {mine[s].status}" for s in STUDY_SETTINGS if s in mine)
        lines.append(f"{check.title}, {dataset}: {cells}: **{state}**")
    return lines


def claims_section(results: Results) -> list[str]:
    """claims.md's section on the verdicts across settings."""
    lines = ["", "## Do the verdicts survive a larger budget? (Table VI, ours)", ""]
    by_setting = settings_results(results)
    if not has_study_records(by_setting):
        return [*lines, "NOT RUN: no records of the study's settings yet (`./reproduce.sh table6` runs them)."]
    lines += [f"Settings: {'; '.join(f'{n}: {SETTINGS.get(n).description}' for n in STUDY_SETTINGS)}. Methods "
              f"{', '.join(map(_name, STUDY_METHODS))} on the first training domain of each dataset; every check per "
              "dataset, paired by seed, with claims.md's rules (Student's t 95% interval; Holm over the datasets for "
              "claim 1); stable = the same verdict in every setting. Hyperparameters: the committed tuned values in "
              "every setting (no re-sweep).", "",
              "| check | dataset | " + " | ".join(STUDY_SETTINGS) + " | across settings |",
              "|---|---|" + "---|" * (len(STUDY_SETTINGS) + 1)]
    outcomes = [o for name, r in by_setting.items() for o in check_setting(r, name)]
    for check, dataset, state, mine in stability(outcomes):
        cells = [f"{mine[s].status}: {mine[s].detail}" if s in mine else MISSING for s in STUDY_SETTINGS]
        lines.append(f"| {check.title} | {dataset} | " + " | ".join(cells) + f" | **{state}** |")
    return lines


def table6(results: Results, *, methods: Sequence[str] | None = None, compare: bool = False) -> Table:
    """Table VI: per setting, dataset and method, Table VI's metrics (mean ± SE, n) on the first training domain."""
    methods = tuple(methods or STUDY_METHODS)
    by_setting = settings_results(results)
    frames = []
    for name, found in by_setting.items():
        cells = study_cells(found)
        cells = cells[cells["method"].isin(methods) & ((cells["metric"] != "cAcc")
                                                      | (cells["test_domain"] == cells["train_domain"]))]
        cells = cells[cells["metric"].isin([m for m, _ in COLUMNS])]
        summary = summarize(cells, ["dataset", "train_domain", "method", "metric"])
        frames.append(summary.assign(setting=name))
    frame = pd.concat(frames, ignore_index=True)[["setting", "dataset", "train_domain", "method", "metric", "mean",
                                                  "se", "n"]]
    datasets = [d for d in results.profile.datasets if d in set(frame["dataset"])]
    order = [frame["dataset"].map(datasets.index), frame["setting"].map(STUDY_SETTINGS.index),
             frame["method"].map(methods.index), frame["metric"].map([m for m, _ in COLUMNS].index)]
    frame = frame.iloc[sorted(range(len(frame)), key=lambda i: tuple(o.iloc[i] for o in order))].reset_index(drop=True)
    sections = []
    for dataset in datasets:
        part = frame[frame["dataset"] == dataset]
        rows = [(s, m) for s in STUDY_SETTINGS for m in methods
                if ((part["setting"] == s) & (part["method"] == m)).any()]
        wide = pd.DataFrame(index=[f"{s}: {_name(m)}" for s, m in rows], columns=[t for _, t in COLUMNS],
                            data=MISSING)
        for (s, m), index in zip(rows, wide.index, strict=True):
            for metric, title in COLUMNS:
                hit = part[(part["setting"] == s) & (part["method"] == m) & (part["metric"] == metric)]
                if len(hit):
                    row = hit.iloc[0]
                    wide.loc[index, title] = format_cell(row["mean"], row["se"], row["n"]) + f" (n={row['n']})"
        sections.append((f"{results.role(dataset)}, trained on {results.first_domain(dataset)}", wide))
    notes = [f"setting {n}: {SETTINGS.get(n).description}; {_setting_runs(by_setting[n])}" for n in STUDY_SETTINGS]
    notes += ["hyperparameters: the committed tuned values (benchmark/tuned/) in every setting, no re-sweep; the "
              "settings were declared before any of their numbers were seen and not changed after",
              "cAcc and cue-free cAcc on the training domain's test split; mean OOD cAcc: the mean over the other "
              "domains (whole) of each model; PGD-10 and AA at the table eps (AA: the worst case of APGD-CE, APGD-T "
              "and Square, as Table I's note states); rel. mass: Grad-CAM mass on the object; Comp / Suff (blur): "
              "AOPC with blurred removal (Table V); mean ± SE over seeds (n)",
              *(f"verdicts: {line}" for line in verdict_lines(results))]
    runs = [run for found in by_setting.values() for run in found.runs
            if run["method"] in methods and run["train_domain"] == found.first_domain(run["dataset"])]
    return Table("table6", "Table VI: do the verdicts survive other budgets and a ResNet? (ours, not in the paper)",
                 frame, sections, notes, runs)


def _setting_runs(results: Results) -> str:
    """What the setting's records say they are: models, steps and the number of runs."""
    runs = results.runs
    if not runs:
        return "no records"
    models = sorted({str(r["config"]["train"].get("model")) for r in runs})
    steps = sorted({int(r["config"]["train"].get("steps", 0)) for r in runs})
    return f"{len(runs)} runs of model {', '.join(models)}, {', '.join(map(str, steps))} training steps"


def forest_points(results: Results) -> pd.DataFrame:
    """Fig. 6's data: per check, dataset and setting, the mean paired difference, its 95% interval, n, the
    threshold and the verdict (checks without records are left out)."""
    rows = []
    for name, found in settings_results(results).items():
        for o in check_setting(found, name):
            if o.found is None:
                continue
            rows.append((o.dataset, o.check.key, o.check.title, o.check.unit, name, o.found.mean, o.found.low,
                         o.found.high, o.found.n, o.check.threshold, o.status))
    return pd.DataFrame(rows, columns=["dataset", "check", "title", "unit", "setting", "mean", "low", "high", "n",
                                       "threshold", "status"])


STATUS_COLORS = {SUPPORTED: "tab:green", CONTRADICTED: "tab:red", INCONCLUSIVE: "tab:gray"}


def figure6(results: Results, out: str | Path, *, methods: Sequence[str] | None = None) -> Path | None:
    """Fig. 6: a forest plot, one panel per dataset: per check (a row) and setting (an offset within the row), the
    paired difference and its 95% interval, coloured by verdict, with the check's decision threshold drawn as a
    black tick. None without records of the study's settings."""
    if not has_study_records(settings_results(results)):
        return None
    points = forest_points(results)
    datasets = [d for d in results.profile.datasets if d in set(points["dataset"])]
    checks = [c for c in CHECKS if c.key in set(points["check"])]
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.4 * len(datasets), 1.2 + 0.62 * len(checks)),
                             squeeze=False)
    title = wrap_title([
        "Fig. 6 (ours, not in the paper): the study's checks per setting; difference and 95% t interval over seeds; "
        "black tick: the decision threshold; colour: the verdict",
        f"{results.profile.name} profile, built-in benchmarks: not the paper's numbers"], fig.get_figwidth(), 9)
    offsets = {s: ((len(STUDY_SETTINGS) - 1) / 2 - i) * 0.18 for i, s in enumerate(STUDY_SETTINGS)}  # quick on top
    markers = dict(zip(STUDY_SETTINGS, MARKERS, strict=False))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = points[points["dataset"] == dataset]
        for row, check in enumerate(checks):
            y = len(checks) - 1 - row
            ax.plot([check.threshold] * 2, [y - 0.42, y + 0.42], color="black", linewidth=1.5)
            for p in part[part["check"] == check.key].itertuples():
                at = y + offsets[p.setting]
                color = STATUS_COLORS.get(p.status, "tab:gray")
                if not math.isnan(p.low):
                    ax.plot([p.low, p.high], [at, at], color=color, linewidth=1.2)
                ax.scatter([p.mean], [at], color=color, marker=markers[p.setting], s=22, zorder=3)
        ax.set_yticks(range(len(checks)))
        ax.set_yticklabels([textwrap.fill(f"{c.title} ({c.unit})", 44) for c in reversed(checks)], fontsize=7)
        ax.axvline(0.0, color="0.8", linewidth=0.8, zorder=0)
        ax.set_title(f"{dataset}: {results.role(dataset)}", fontsize=10)
        ax.set_xlabel("paired difference (per seed)")
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color="0.3", marker=markers[s], linestyle="", label=s) for s in STUDY_SETTINGS]
    handles += [plt.Line2D([], [], color=c, linewidth=2, label=s.lower()) for s, c in STATUS_COLORS.items()]
    columns = min(len(handles), 4 * len(datasets))  # a legend row of 4 entries per panel fits its width
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=columns)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 * math.ceil(len(handles) / columns), 1, 1))
    return save_png(fig, out)


def _render_table(results: Results, artefact: Artefact, request: RenderRequest) -> list[Path]:
    if not has_study_records(settings_results(results)):
        return []
    table = table6(results, methods=artefact.methods_for(request))
    header = [*results.header(table.runs), *(f"set aside: {n}" for n in results.notes)]
    return write_table(table, header, request.out / "tables")


def _render_figure(results: Results, artefact: Artefact, request: RenderRequest) -> list[Path]:
    return [path for path in [figure6(results, request.out / "figures" / "fig6.png")] if path is not None]


#: the study's grid: each setting, Table VI's methods, the first domain of each dataset, Table I's evaluation; the
#: settings vary the quick profile (under the paper's, `budget` would train ResNet-50 20000 steps, `resnet` swap it out)
STUDY_GRIDS = tuple(Grid(domains="0", setting=name, profiles=("quick",)) for name in STUDY_SETTINGS)
ARTEFACTS.add("table6", Artefact("table6", "table", STUDY_METHODS, _render_table, STUDY_GRIDS, table6,
                                 companions=("fig6",)))
ARTEFACTS.add("fig6", Artefact("fig6", "figure", STUDY_METHODS, _render_figure, STUDY_GRIDS))
