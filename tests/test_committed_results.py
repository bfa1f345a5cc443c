"""The committed quick-profile records are the current code's (or declared stale until their regeneration), every
artefact's grid is recorded in them, and the committed tables, figures and claims are exactly what those records
render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.config import PROFILES
from benchmark.fingerprint import record_is_current
from benchmark.grid import build_jobs
from benchmark.rendering import render
from benchmark.reproduction import grids_of, has_pending, run_flags
from benchmark.results import Results
from benchmark.store import Store

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "quick"
#: present exactly while the committed records are stale: a change of fingerprinted code landed before the
#: regeneration that follows it; it says which change and which step regenerates them (README, Committed
#: quick-profile results)
STALE_NOTE = COMMITTED / "STALE.md"
REGENERATE = ("regenerate results/quick with ./reproduce.sh all in a fresh clone (README, Committed quick-profile "
              "results), or declare the records stale in results/quick/STALE.md until then")


def stale_keys() -> dict[str, list[str]]:
    """The committed train and eval records that the current code would not produce, by kind."""
    store = Store(COMMITTED.parent, "quick")
    found = {}
    for kind in ("train", "eval"):
        records = list(store.records(kind))
        assert records, f"no committed {kind} records"
        found[kind] = sorted(r["key"] for r in records if not record_is_current(r))
    return found


def test_committed_records_are_current_or_declared_stale():
    """A change to fingerprinted code makes the records it affects stale: then the committed results no longer show
    what the code computes, and this fails until they are regenerated or STALE.md declares them stale (and a
    regeneration that makes them current must remove the declaration)."""
    stale = stale_keys()
    counts = ", ".join(f"{len(keys)} {kind}" for kind, keys in stale.items())
    if STALE_NOTE.is_file():
        assert any(stale.values()), f"STALE.md declares stale records but every record is current: remove {STALE_NOTE}"
    else:
        assert not any(stale.values()), f"stale committed records ({counts}); {REGENERATE}"
        assert Results.load(COMMITTED.parent, "quick").stale == 0, REGENERATE


def test_every_artefacts_grid_is_done_in_the_committed_store():
    """What `./reproduce.sh all` on a fresh clone relies on to train nothing and only re-render; while the records
    are declared stale, that every job of every committed artefact's grid has a train record of its unit (dataset,
    domain, method, model, seed, study setting) and an eval record of it with its attacks and eps (nothing is
    missing, only old: a changed evaluation changes eval keys, a changed training, such as issue 30's training
    attack, train keys; an artefact added since, such as Table VI, has no committed file until the regeneration)."""
    quick = PROFILES.get("quick")
    store = Store(COMMITTED.parent, "quick")
    if STALE_NOTE.is_file():
        def unit(config: dict, dataset: str, domain: str, method: str, seed: int) -> tuple:
            return dataset, domain, method, config.get("model"), seed, config.get("setting")

        trained = {unit(r["config"], r["dataset"], r["train_domain"], r["method"], r["seed"]): r["key"]
                   for r in store.records("train")}
        evaluated = {(r["train_key"], tuple(r["config"]["attacks"]), tuple(r["config"]["eps"]))
                     for r in store.records("eval")}
        committed = {path.stem for pattern in COMMITTED_FILES.values() for path in COMMITTED.glob(pattern)}
        missing = [job.key for name in artefact_order() if name in committed
                   for selection in ARTEFACTS.get(name).selections(quick) for job in build_jobs(selection)
                   if (trained.get(unit(job.train.config(), job.train.dataset, job.train.domain, job.train.method,
                                        job.train.seed)), tuple(job.attacks), tuple(job.eps)) not in evaluated]
        assert not missing, f"{len(missing)} jobs have no committed record: {missing[:5]}"
        return
    pending = [run_flags(selection, quick) for selection in grids_of(artefact_order(), quick)
               if has_pending(selection, str(COMMITTED.parent))]
    assert not pending, f"grids with jobs to run: {pending}; {REGENERATE}"


COMMITTED_FILES = {"table": "tables/*", "figure": "figures/*", "claims": "claims.md"}


@pytest.mark.parametrize("kind", list(COMMITTED_FILES))
def test_every_committed_artefact_rerenders_identically(kind, tmp_path):
    """Every table, figure and claims file is committed, byte for byte as the committed records render it, and
    nothing else is committed beside them."""
    names = [name for name in artefact_order() if ARTEFACTS.get(name).kind == kind]
    results = Results.load(COMMITTED.parent, "quick", allow_stale=STALE_NOTE.is_file())  # then marked STALE
    written = render(results, tmp_path, only=names)
    rendered = sorted(str(path.relative_to(tmp_path)) for path in written)
    committed = sorted(str(path.relative_to(COMMITTED)) for path in COMMITTED.glob(COMMITTED_FILES[kind]))
    assert rendered == committed
    for name in rendered:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    if STALE_NOTE.is_file() and kind != "figure":
        assert all("STALE" in (COMMITTED / name).read_text() for name in rendered), "stale records shown unmarked"
