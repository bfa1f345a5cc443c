"""The committed quick-profile tables and claims are exactly what the committed records render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.render import render
from benchmark.results import Results

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "quick"


def test_committed_tables_rerender_identically(tmp_path):
    tables = sorted((COMMITTED / "tables").glob("table*.*"))
    if not tables:
        pytest.skip("no committed quick-profile tables")
    names = sorted({p.stem for p in tables})
    written = render(Results.load(COMMITTED.parent, "quick", allow_stale=True), tmp_path, only=names)
    assert sorted(p.name for p in written) == [p.name for p in tables]
    for committed in tables:
        assert (tmp_path / "tables" / committed.name).read_text() == committed.read_text(), committed.name


def test_committed_claims_rerender_identically(tmp_path):
    committed = COMMITTED / "claims.md"
    if not committed.is_file():
        pytest.skip("no committed claims.md")
    render(Results.load(COMMITTED.parent, "quick", allow_stale=True), tmp_path, only=["claims"])
    assert (tmp_path / "claims.md").read_text() == committed.read_text()


def test_committed_figures_rerender_identically(tmp_path):
    figures = sorted((COMMITTED / "figures").glob("fig*.png"))
    if not figures:
        pytest.skip("no committed quick-profile figures")
    render(Results.load(COMMITTED.parent, "quick", allow_stale=True), tmp_path, only=[p.stem for p in figures])
    for committed in figures:
        assert (tmp_path / "figures" / committed.name).read_bytes() == committed.read_bytes(), committed.name
