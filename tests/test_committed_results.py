"""The committed quick-profile records are the current code's, every artefact's grid is done in them, and the
committed tables, figures and claims are exactly what those records render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.config import PROFILES
from benchmark.fingerprint import record_is_current
from benchmark.rendering import render
from benchmark.reproduction import grids_of, has_pending, run_flags
from benchmark.results import Results
from benchmark.store import Store

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "quick"
REGENERATE = ("regenerate results/quick with ./reproduce.sh all in a fresh clone (README, Committed quick-profile "
              "results)")


def test_no_committed_record_is_stale():
    """A change to fingerprinted code makes the records it affects stale: then the committed results no longer show
    what the code computes, and this fails until they are regenerated."""
    store = Store(COMMITTED.parent, "quick")
    for kind in ("train", "eval"):
        records = list(store.records(kind))
        assert records, f"no committed {kind} records"
        stale = sorted(r["key"] for r in records if not record_is_current(r))
        assert not stale, f"{len(stale)} of {len(records)} committed {kind} records are stale; {REGENERATE}"
    assert Results.load(COMMITTED.parent, "quick").stale == 0, REGENERATE


def test_every_artefacts_grid_is_done_in_the_committed_store():
    """What `./reproduce.sh all` on a fresh clone relies on to train nothing and only re-render."""
    quick = PROFILES.get("quick")
    pending = [run_flags(selection, quick) for selection in grids_of(artefact_order(), quick)
               if has_pending(selection, str(COMMITTED.parent))]
    assert not pending, f"grids with jobs to run: {pending}; {REGENERATE}"


COMMITTED_FILES = {"table": "tables/*", "figure": "figures/*", "claims": "claims.md"}


@pytest.mark.parametrize("kind", list(COMMITTED_FILES))
def test_every_committed_artefact_rerenders_identically(kind, tmp_path):
    """Every table, figure and claims file is committed, byte for byte as the committed records render it, and
    nothing else is committed beside them."""
    names = [name for name in artefact_order() if ARTEFACTS.get(name).kind == kind]
    written = render(Results.load(COMMITTED.parent, "quick"), tmp_path, only=names)
    rendered = sorted(str(path.relative_to(tmp_path)) for path in written)
    committed = sorted(str(path.relative_to(COMMITTED)) for path in COMMITTED.glob(COMMITTED_FILES[kind]))
    assert rendered == committed
    for name in rendered:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name
