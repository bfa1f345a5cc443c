"""The results model: eval records merged per trained model, their observations, and what produced them.

Rendering (tables, figures, claims) is a pure function of a `Results`: the records of one profile
(benchmark/store.py), one merged run per trained model, every number as a row of `obs`, and the
`Catalog` of display names and domain orders. Torch-free.

- Aggregation: mean over seeds and its standard error SE = sample std (ddof=1) / sqrt(n), shown when
  n > 1. Figures and claims compare means.
- Only records of the profile's model enter the tables (other backbones are for Fig. 3); of several
  trainings of one (dataset, domain, method, model, seed), e.g. a `--steps` smoke run beside the full
  run, the one with the most steps is kept and the others are listed in the notes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import PAPER_DATASET_NAMES, PAPER_ROLES, PROFILES, SETTINGS, Profile
from benchmark.display_catalog import Catalog
from benchmark.fingerprint import record_is_current
from benchmark.flags import masking_flags
from benchmark.metrics import recorded
from benchmark.provenance import same_weights
from benchmark.store import Store, eps_label


def standard_error(values: Iterable[float]) -> float:
    """Standard error of the mean over seeds: sample std (ddof=1) / sqrt(n); NaN below two values."""
    arr = np.asarray(list(values), dtype=float)
    return float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else math.nan


def setting_of(record: dict[str, Any]) -> str | None:
    """The study setting a record's training was made under (benchmark/config.py SETTINGS), None for its profile's
    own jobs (among them the jobs a setting shares with it): a train record's config, or an eval record's `train`."""
    config = record.get("config", {})
    return config.get("train", config).get("setting")


def _reaches(profile: Profile, train: dict[str, Any]) -> bool:
    """Whether what a study setting changes (profile against profile.reference) reaches a job of the reference with
    this train config: a training setting (steps, model, ...) reaches every job, the training PGD the methods that
    train on it (their hyperparameters have its keys), as benchmark/jobs.py make_train_job decides."""
    reference = profile.reference
    if profile.train_settings() != reference.train_settings():
        return True
    return profile.training_pgd != reference.training_pgd and bool(set(profile.training_pgd)
                                                                   & set(train.get("hparams", {})))


def of_profile(records: Iterable[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    """The eval records of `profile`: under a study setting, its own and those of the reference's jobs it does not
    change (they are shared: benchmark/jobs.py); else the profile's own, never a setting's."""
    if profile.setting is None:
        return [r for r in records if setting_of(r) is None]
    return [r for r in records if setting_of(r) == profile.setting
            or setting_of(r) is None and profile.reference is not None
            and not _reaches(profile, r.get("config", {}).get("train", {}))]


def _model(record: dict[str, Any]) -> str:
    return record.get("config", {}).get("train", {}).get("model", "")


def _recency(record: dict[str, Any]) -> tuple[int, int, int, str]:
    """Sort key of competing trainings of one unit: code version, data version, steps, train_key."""
    train = record["config"]["train"]
    return train.get("version", 0), train.get("data_version", 0), train.get("steps", 0), record["train_key"]


def _of_recorded_weights(record: dict[str, Any], train_weights: dict[str, str]) -> bool:
    """Whether an eval record evaluated the weights its train record names."""
    evaluated = (record.get("weights_digest") or {}).get("model")
    return same_weights(evaluated, train_weights.get(record.get("train_key", "")))


def merge_runs(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per trained model, and notes on what was set aside.

    Eval records of one `train_key` (e.g. Table I's PGD-only evaluation and Fig. 2's full grid) are
    merged, attack results united, and so are aa's stages (per eps) and the attacks' recorded budgets, points
    attacked and chain checks (per attack);
    the first record by key wins a conflict. A time per epoch is a measurement of the training, not a result of its
    weights: where a checkpoint was retrained into the same weights (another run,
    perhaps another machine or load), its records time the same computation twice, and the least disturbed of
    them, the minimum (as timeit takes), is kept, whichever record sorts first. Of several trainings of
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
            elif name in ("aa_stages", "attack_budgets", "attack_points", "chain_check"):  # per eps, per attack
                for key, part in value.items():
                    merged["metrics"].setdefault(name, {}).setdefault(key, part)
            elif name == "time_per_epoch_s":
                merged["metrics"][name] = min(merged["metrics"].get(name, value), value)
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


#: the reference maps of the calibration rows (benchmark/explanation_metrics.py) and the metrics recorded for each
CALIBRATION_MAPS = ("random", "mask", "inverse_mask")
CALIBRATION_METRICS = ("Comp", "Suff", "Comp_blur", "Suff_blur")


def _at(metrics: dict[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(metrics, dict) or name not in metrics:
            return None
        metrics = metrics[name]
    return metrics


def observations(runs: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Every number of every run, one row each: each metric the record keeps at its declared path
    (benchmark/metrics.py; cAcc on the training domain's test split), cAcc on every other domain whole, aAcc per
    attack and eps (label as recorded), calibration rows as `<metric>@<map>`, and each gradient-masking flag as
    `flag:<name>` (1 fired, 0 quiet; recomputed from the merged run, benchmark/flags.py)."""
    rows = []
    declared = recorded()
    for r in runs:
        m, own = r["metrics"], r["train_domain"]
        cells = [(own, metric.name, "", "", _at(m, metric.path)) for metric in declared]
        cells += [(other, "cAcc", "", "", value) for other, value in m.get("ood_cAcc", {}).items()]
        cells += [(own, "aAcc", attack, eps, value) for attack, by_eps in m.get("aAcc", {}).items()
                  for eps, value in by_eps.items()]
        cells += [(own, f"{metric}@{ref}", "", "", _at(m, ("calibration", ref, metric)))
                  for ref in CALIBRATION_MAPS for metric in CALIBRATION_METRICS]
        cells += [(own, f"flag:{name}", "", "", None if fired is None else float(fired))
                  for name, fired in m.get("masking", {}).get("flags", {}).items()]
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
    catalog: Catalog = field(default_factory=Catalog.builtin)
    #: eval records made by code other than the current one (benchmark/fingerprint.py), and whether they are in
    stale: int = 0
    allow_stale: bool = False
    #: record files left out as invalid (not JSON, a required field missing, another profile's: benchmark/store.py),
    #: one line each naming the file
    invalid: tuple[str, ...] = ()
    #: every eval record read and the train records' weights digests, whichever setting they belong to (`under`)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    train_weights: dict[str, str] = field(default_factory=dict, repr=False)
    #: `under`'s results, each setting's made once (a render reads them for several artefacts)
    settings: dict[str, Results] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], profile: str | Profile, catalog: Catalog | None = None,
                     *, allow_stale: bool = False, train_weights: dict[str, str] | None = None) -> Results:
        """Results of these records under `profile` (of its study setting only: `Profile.setting`, None for the
        profile's own records, so that a setting's records never enter the profile's tables); `catalog` defaults to
        the built-in registries' one. Records whose code fingerprint differs from the current code, or (given
        `train_weights`, train key -> its record's weights digest) that evaluated weights other than their train
        record's, are left out unless `allow_stale`."""
        profile = PROFILES.get(profile) if isinstance(profile, str) else profile
        records = [r for r in records if r.get("kind", "eval") == "eval"]
        evals = of_profile(records, profile)
        current = [r for r in evals if record_is_current(r) and _of_recorded_weights(r, train_weights or {})]
        runs, notes = merge_runs(evals if allow_stale else current)
        for run in runs:  # a merged run's flags see every attack of its records
            masking = run["metrics"].get("masking")
            if masking is not None:
                masking["flags"] = masking_flags(run["metrics"], table_eps=profile.table_eps,
                                                 large_eps=masking["large_eps"])
        return cls(profile, runs, notes, observations(runs), catalog or Catalog.builtin(), len(evals) - len(current),
                   allow_stale, records=records, train_weights=dict(train_weights or {}))

    def under(self, setting: str) -> Results:
        """The results of the same records under a study setting of this profile (benchmark/config.py SETTINGS): its
        jobs' records, and the profile's own for the jobs it shares."""
        if setting not in self.settings:
            self.settings[setting] = Results.from_records(
                self.records, SETTINGS.get(setting).apply(self.profile), self.catalog, allow_stale=self.allow_stale,
                train_weights=self.train_weights)
        return self.settings[setting]

    @classmethod
    def load(cls, results_dir: str | Path, profile: str, catalog: Catalog | None = None, *,
             allow_stale: bool = False) -> Results:
        """Read `<results_dir>/<profile>/runs/eval/*.json` (and the train records' weights digests), leaving out
        invalid record files (`invalid` names them)."""
        store = Store(results_dir, profile)
        trains, invalid_trains = store.scan("train")
        evals, invalid_evals = store.scan("eval")
        weights = {r["key"]: r["weights_digest"] for r in trains if r.get("weights_digest")}
        results = cls.from_records(evals, profile, catalog, allow_stale=allow_stale, train_weights=weights)
        results.invalid = tuple(str(err) for err in invalid_evals + invalid_trains)
        return results

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
        known = list(self.catalog.datasets.get(dataset, ()))
        seen = set(self.obs.loc[self.obs["dataset"] == dataset, ["train_domain", "test_domain"]].to_numpy().ravel())
        return known + sorted(seen - set(known))

    def first_domain(self, dataset: str) -> str:
        """The dataset's first domain in `domains` order ("" when it has none), where Table III and the verdict study
        train."""
        return (self.domains(dataset)[:1] or [""])[0]

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
                f"torch {_join(r.get('versions', {}).get('torch') for r in runs)}; "
                f"CPU {_join(_cpu(r) for r in runs)} (bit-identical per CPU capability: benchmark/verify.py)")
        if runs:
            tunings = sorted({str(r.get("tuning", "not recorded (a record older than the sweep)")) for r in runs})
            lines.append("hyperparameters: " + "; ".join(tunings))
        lines.append("aggregation: mean ± standard error over seeds, SE = sample std (ddof=1) / sqrt(n), "
                     "shown when n > 1; n = seeds per cell; – = no record")
        if self.stale and self.allow_stale:
            lines.append(f"STALE: {self.stale} of the eval records were made by code that differs from the current "
                         "code (benchmark/fingerprint.py) and are included because --allow-stale was given; the "
                         "grid recomputes them")
        elif self.stale:
            lines.append(f"stale: {self.stale} eval records made by code that differs from the current code are left "
                         "out (--allow-stale includes them; the grid recomputes them)")
        if self.invalid:
            lines.append(f"invalid: {len(self.invalid)} record files are left out: not valid JSON, a required field "
                         "missing or another profile's (benchmark.render names them; the grid moves each aside as "
                         "NAME.corrupt and recomputes its job)")
        return lines


def _cpu(record: dict[str, Any]) -> str:
    """The CPU capability and model a record was made on (`not recorded` before records named it)."""
    machine = record.get("machine")
    return f"{machine['cpu_capability']} ({machine['cpu']})" if machine else "not recorded"


def _join(values: Iterable[Any], *, numeric: bool = False) -> str:
    """Distinct values, sorted (numerically if asked), comma-joined; `?` when none."""
    distinct = {str(v) for v in values if v is not None}
    ordered = sorted(distinct, key=float) if numeric else sorted(distinct)
    return ", ".join(ordered) or "?"


