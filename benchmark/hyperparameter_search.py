"""Equal-budget random hyperparameter search, DomainBed-style (the command: python -m benchmark.sweep, in
benchmark/cli/sweep.py).

Every method gets the same number of trials per dataset. Trial 0 is the declared defaults (the
profile's resolution, methods/base.py); trial t >= 1 draws the profile's loop settings (learning
rate, dropout: `Profile.loop_search`) and the method's own hyperparameters (the ranges declared
beside its defaults, `search` / `scaled_search`) from a generator seeded by (profile, dataset,
method, t), so a trial's values never depend on which other methods or trials run. A trial trains on
the dataset's first domain for each seed (the same values for every seed) and is evaluated without
attacks (clean, cue-free and out-of-domain accuracy). Seeds: `--seeds`, default 0 only.

Selection: per (dataset, method), the trial with the highest training-domain validation accuracy
(the best checkpoint's, mean over seeds; the paper's rule, DomainBed's "training-domain
validation"); beside it, as DomainBed reports, the test-domain oracle: the trial with the best mean
accuracy on the other domains, which no table uses. `--write-tuned` writes the validation selection
to benchmark/tuned/<profile>.json with the records' keys as provenance; every train job of the
profile then takes those values. A trial whose loss turns non-finite stops there and keeps its best
earlier checkpoint (benchmark/train.py); its record says so.

Records go to <results>/sweep/<profile>/runs (apart from the tables' store, so trials never mix
with table runs); the report to <results>/sweep/<profile>/sweep.{csv,md}. Resumable and launched
like the grid.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import Profile
from benchmark.data import resolve_domains
from benchmark.jobs import EvalJob, TrainJob
from benchmark.store import Store, atomic_write_bytes
from benchmark.tabulation import markdown_table
from methods import METHODS, method_hparams

#: how the sweep selects (the tuned file and every table header say it)
SELECTION_RULE = "training-domain validation accuracy (best checkpoint, mean over seeds)"


@dataclass(frozen=True)
class Trial:
    """One point of the search: its index and the values it sets (empty for trial 0, the defaults)."""

    method: str
    dataset: str
    index: int
    hparams: dict[str, Any]
    loop: dict[str, Any]


def _generator(profile: str, dataset: str, method: str, index: int) -> random.Random:
    digest = hashlib.sha256(json.dumps([profile, dataset, method, index]).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _typed(value: float | int, default: Any) -> float | int:
    """The drawn value in the default's type; floats to 4 significant digits (readable keys and tuned files)."""
    return int(value) if isinstance(default, int) and not isinstance(default, bool) else float(f"{value:.4g}")


def draw_trial(profile: Profile, dataset: str, method: str, index: int) -> Trial:
    """Trial `index` of `method` on `dataset`: the defaults for index 0, else one draw from every range."""
    if index == 0:
        return Trial(method, dataset, 0, {}, {})
    rng = _generator(profile.name, dataset, method, index)
    settings = profile.train_settings()
    loop = {k: _typed(r.draw(rng), settings[k]) for k, r in sorted(profile.loop_search.items())}
    defaults = method_hparams(method, profile)
    space = METHODS.get(method).search_space(profile.name)
    return Trial(method, dataset, index, {k: _typed(r.draw(rng), defaults[k]) for k, r in sorted(space.items())}, loop)


def trial_job(profile: Profile, trial: Trial, seed: int) -> EvalJob:
    """The eval job (no attacks) of a trial on its dataset's first domain for one seed."""
    domain = resolve_domains(trial.dataset, "0")[0]
    hparams = method_hparams(trial.method, profile, tuned=trial.hparams)
    train = TrainJob(profile, trial.dataset, domain, trial.method, seed, hparams, dict(trial.loop),
                     f"sweep trial {trial.index}")
    return EvalJob(train, (), ())


def plan_trials(profile: Profile, datasets: Sequence[str], methods: Sequence[str], trials: int,
                seeds: Sequence[int]) -> list[tuple[Trial, EvalJob]]:
    """Every (trial, seed) job of the sweep, grouped by dataset, method, trial."""
    return [(trial, trial_job(profile, trial, seed)) for dataset in datasets for method in methods
            for trial in (draw_trial(profile, dataset, method, i) for i in range(trials)) for seed in seeds]


def sweep_store(results_dir: str | Path, profile: Profile) -> Store:
    """Where the sweep's records live (apart from the tables' store)."""
    return Store(Path(results_dir) / "sweep", profile.name)


def trial_rows(planned: list[tuple[Trial, EvalJob]], store: Store) -> pd.DataFrame:
    """One row per finished (trial, seed): its values, validation, in-domain test and out-of-domain accuracy."""
    rows = []
    for trial, job in planned:
        if not store.has("eval", job.key):
            continue
        record = store.read("eval", job.key)
        train = store.read("train", job.train.key)
        metrics = record["metrics"]
        ood = metrics["ood_cAcc"]
        rows.append({
            "dataset": trial.dataset, "method": trial.method, "trial": trial.index, "seed": job.train.seed,
            "values": json.dumps({**trial.loop, **trial.hparams}, sort_keys=True) if trial.index else "defaults",
            "val_acc": train["best_val_acc"], "cAcc": metrics["cAcc"],
            "ood_acc": sum(ood.values()) / len(ood) if ood else math.nan,
            "diverged_at": train.get("diverged_at") or "", "train_key": job.train.key, "eval_key": job.key,
        })
    return pd.DataFrame(rows)


def select(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method): the validation-selected and the oracle-selected trial with their scores (means
    over seeds; ties go to the lower trial index, i.e. the defaults first)."""
    means = rows.groupby(["dataset", "method", "trial"], sort=False).agg(
        val_acc=("val_acc", "mean"), cAcc=("cAcc", "mean"), ood_acc=("ood_acc", "mean"), n=("seed", "size"),
        values=("values", "first")).reset_index()
    chosen = []
    for (dataset, method), group in means.groupby(["dataset", "method"], sort=False):
        group = group.sort_values("trial")
        by_val = group.loc[group["val_acc"].idxmax()]
        by_oracle = group.loc[group["ood_acc"].idxmax()]
        chosen.append({
            "dataset": dataset, "method": method, "trials": len(group), "seeds": int(group["n"].min()),
            "val_trial": int(by_val["trial"]), "val_acc": by_val["val_acc"], "val_cAcc": by_val["cAcc"],
            "val_ood_acc": by_val["ood_acc"], "oracle_trial": int(by_oracle["trial"]),
            "oracle_cAcc": by_oracle["cAcc"], "oracle_ood_acc": by_oracle["ood_acc"],
            "oracle_gain_ood": by_oracle["ood_acc"] - by_val["ood_acc"], "values": by_val["values"],
        })
    return pd.DataFrame(chosen)


def tuned_document(profile: Profile, planned: list[tuple[Trial, EvalJob]], chosen: pd.DataFrame, trials: int,
                   seeds: Sequence[int], command: str) -> dict[str, Any]:
    """The tuned file's content: the validation selection per dataset and method, with provenance."""
    selected: dict[str, dict[str, Any]] = {}
    for row in chosen.itertuples():
        matches = [(t, j) for t, j in planned if (t.dataset, t.method, t.index) == (row.dataset, row.method,
                                                                                    row.val_trial)]
        trial = matches[0][0]
        selected.setdefault(row.dataset, {})[row.method] = {
            "trial": trial.index, "hparams": method_hparams(row.method, profile, tuned=trial.hparams),
            "loop": {k: trial.loop.get(k, profile.train_settings()[k]) for k in profile.loop_search},
            "val_acc": round(float(row.val_acc), 4), "seeds": list(seeds),
            "records": [{"train_key": j.train.key, "eval_key": j.key} for _, j in matches],
        }
    return {"profile": profile.name, "trials": trials, "seeds": list(seeds), "selection": SELECTION_RULE,
            "records": f"results/sweep/{profile.name}/runs", "command": command, "selected": selected}


def write_report(rows: pd.DataFrame, chosen: pd.DataFrame, out: Path, profile: Profile, trials: int,
                 seeds: Sequence[int]) -> list[Path]:
    """sweep.csv (every trial and seed), sweep.md (the selection, validation beside oracle, and every trial)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "sweep.csv", out / "sweep.md"
    atomic_write_bytes(csv_path, rows.to_csv(index=False).encode())
    shown = chosen.assign(**{c: chosen[c].round(2) for c in ("val_acc", "val_cAcc", "val_ood_acc", "oracle_cAcc",
                                                              "oracle_ood_acc", "oracle_gain_ood")})
    columns = ["dataset", "method", "trials", "seeds", "val_trial", "val_acc", "val_cAcc", "val_ood_acc",
               "oracle_trial", "oracle_cAcc", "oracle_ood_acc", "oracle_gain_ood", "values"]
    all_trials = rows.assign(**{c: rows[c].round(2) for c in ("val_acc", "cAcc", "ood_acc")})
    lines = [
        f"# Hyperparameter sweep ({profile.name} profile)", "",
        f"NOT THE PAPER'S RESULTS: {profile.name}-profile runs. {trials} trials per method and dataset (trial 0: "
        f"the declared defaults), seeds {', '.join(map(str, seeds))} (n = {len(seeds)} per trial), each trained on "
        "the dataset's first domain and evaluated without attacks.", "",
        f"Selection (the tuned file, benchmark/tuned/{profile.name}.json): {SELECTION_RULE}. Oracle (reported "
        "only, as DomainBed does; no table uses it): the trial with the best mean accuracy on the other domains' "
        "test splits. val_cAcc / val_ood_acc: in-domain test and mean out-of-domain accuracy (%) of the "
        "validation-selected trial; oracle_gain_ood: how much out-of-domain accuracy the oracle's choice adds.", "",
        markdown_table(shown[columns].set_index("dataset"), corner="dataset"), "",
        "## Every trial", "",
        markdown_table(all_trials.drop(columns=["train_key", "eval_key"]).set_index("dataset"), corner="dataset"), "",
    ]
    atomic_write_bytes(md_path, "\n".join(lines).encode())
    return [csv_path, md_path]


def write_tuned(document: dict[str, Any], target: Path) -> Path:
    """Write a tuned file (`tuned_document`) to `target`, atomically; returns `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, (json.dumps(document, indent=1) + "\n").encode())
    return target
