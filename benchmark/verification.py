"""Re-run recorded jobs from scratch and compare every metric: can a reader reproduce these numbers?

The command is `python -m benchmark.verify` (benchmark/cli/verify.py). Each chosen eval record's job is rebuilt
from the record's own configuration (profile settings, dataset, domain, method, hyperparameters, seed, attacks,
eps), trained and evaluated in a temporary store with the current code, and every metric is compared exactly (the
measured training time aside), as are the training's best step, validation accuracy and weights digest. The rebuilt
job must have the record's key: when the current code gives the configuration another identity (a version bump),
that is reported as a difference. Prints "N of N identical" and exits 0, or names each differing metric and exits
1; bad input (an empty store, an unknown key, a key whose record file is invalid, --sample < 1) exits 2 with one
line. `--sample N` takes N records at random (seeded by --seed) from the store's valid records; each invalid record
file (benchmark/store.py) is named in one warning line and left out.

Bit-identity holds on CPUs whose kernels are the same: a record says the CPU it was made on
(`machine.cpu_capability`, the instruction set torch dispatches to: AVX2, AVX512, ...), and where that
differs from this machine's the report says so, since other kernels round floats differently. `--rtol R`
then accepts numbers within a relative difference R (a few training steps: ~1e-5; a whole training
can drift further) and the last line says "within rtol R" instead of "identical".
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchmark.config import PROFILES
from benchmark.jobs import EvalJob, TrainJob, machine, run_eval
from benchmark.registry import UserError
from benchmark.store import InvalidRecordError, Store

#: metrics that are measurements of this machine, not results
MEASURED = ("time_per_epoch_s",)
#: train record fields compared beside the metrics
TRAIN_FIELDS = ("best_step", "best_val_acc", "weights_digest")
#: fields that are equal or not (hashes): compared exactly, without --rtol (then the numbers they hash are compared
#: within it), and only where the record has one (older records do not)
DIGESTS = ("train.weights_digest",)
PROFILE_FIELDS = ("model", "pretrained", "image_size", "steps", "batch_size", "lr", "eval_every", "dropout")


def rebuild(record: dict[str, Any]) -> EvalJob:
    """The eval job a record describes, from its configuration alone (its transfer source's too)."""
    config = record["config"]

    def train_job(train: dict[str, Any]) -> TrainJob:
        profile = replace(PROFILES.get(record["profile"]), **{k: train[k] for k in PROFILE_FIELDS},
                          attack_steps=config["attack_steps"], faithfulness_images=config["faithfulness_images"],
                          ood_images=config.get("ood_images"))
        return TrainJob(profile, train["dataset"], train["domain"], train["method"], train["seed"], train["hparams"])

    source = config.get("transfer_source_train")
    return EvalJob(train_job(config["train"]), tuple(config["attacks"]), tuple(config["eps"]),
                   None if source is None else train_job(source))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {"a.b.c": leaf}."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _same(a: Any, b: Any, rtol: float = 0.0) -> bool:
    if a == b:
        return True
    if not (isinstance(a, float) and isinstance(b, float)):
        return False
    return (math.isnan(a) and math.isnan(b)) or (rtol > 0 and math.isclose(a, b, rel_tol=rtol, abs_tol=0.0))


ABSENT = object()


def _short(value: Any) -> str:
    text = "(absent)" if value is ABSENT else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(recorded: dict[str, Any], recorded_train: dict[str, Any] | None, now: dict[str, Any],
                now_train: dict[str, Any], *, rtol: float = 0.0) -> list[str]:
    """Each metric (and training field) whose value differs (beyond `rtol`, relative), as `name: recorded X,
    now Y`."""
    old = {k: v for k, v in flatten(recorded["metrics"]).items() if k.split(".")[0] not in MEASURED}
    new = {k: v for k, v in flatten(now["metrics"]).items() if k.split(".")[0] not in MEASURED}
    if recorded_train is not None:
        old.update({f"train.{f}": recorded_train.get(f) for f in TRAIN_FIELDS})
        new.update({f"train.{f}": now_train.get(f) for f in TRAIN_FIELDS})
    for name in DIGESTS:
        if rtol > 0 or old.get(name) is None:
            old.pop(name, None)
            new.pop(name, None)
    return [f"{name}: recorded {_short(old.get(name, ABSENT))}, now {_short(new.get(name, ABSENT))}"
            for name in sorted(set(old) | set(new)) if not _same(old.get(name, ABSENT), new.get(name, ABSENT), rtol)]


def choose(records: list[dict[str, Any]], *, sample: int, jobs: list[str] | None, seed: int,
           invalid: Sequence[InvalidRecordError] = ()) -> list[dict[str, Any]]:
    """The records to verify: the named keys (a key whose record file is `invalid` is that file's error), or
    `sample` of them drawn with `seed`."""
    by_key = {r["key"]: r for r in records}
    if jobs:
        invalid_by_key = {err.path.name.removesuffix(".json"): err for err in invalid}
        for key in jobs:
            if key in invalid_by_key:
                raise invalid_by_key[key]
            if key not in by_key:
                shown = ", ".join(sorted(by_key)[:8]) + (f", ... ({len(by_key)} in all)" if len(by_key) > 8 else "")
                raise UserError(f"unknown job key {key!r}; valid choices: {shown}")
        return [by_key[k] for k in dict.fromkeys(jobs)]
    if sample < 1:
        raise UserError(f"--sample must be >= 1, got {sample}")
    keys = sorted(by_key)
    return [by_key[k] for k in sorted(random.Random(seed).sample(keys, min(sample, len(keys))))]


def other_cpu(record: dict[str, Any]) -> str | None:
    """Why bit-identity cannot be expected for `record` on this machine (another CPU capability), or None."""
    recorded = record.get("machine", {}).get("cpu_capability")
    here = machine()["cpu_capability"]
    if recorded == here:
        return None
    made_on = f"CPU capability {recorded} ({record['machine']['cpu']})" if recorded else "a CPU it does not record"
    return f"made on {made_on}, verified on {here}: other kernels, whose float rounding may differ"


def verify(records: list[dict[str, Any]], store: Store, *, data_root: str | None, device: str,
           rtol: float = 0.0) -> list[list[str]]:
    """Re-run each record's job in a fresh temporary store; its differences (empty: identical), in order."""
    found = []
    for record in records:
        job = rebuild(record)
        if job.key != record["key"]:
            found.append([f"key: recorded {record['key']}, the current code gives {job.key} (its configuration "
                          "changed, e.g. a code or data version bump)"])
            continue
        with tempfile.TemporaryDirectory(prefix="egat-verify-") as tmp:
            fresh = Store(tmp, record["profile"])
            now = run_eval(job, fresh, data_root=data_root, device=device, progress=False)
            now_train = fresh.read("train", job.train.key)
        try:
            recorded_train = store.read("train", job.train.key)
        except FileNotFoundError:
            recorded_train = None
        except InvalidRecordError as err:
            print(f"warning: {err}; the training's fields are not compared", file=sys.stderr)
            recorded_train = None
        found.append(differences(record, recorded_train, now, now_train, rtol=rtol))
    return found
