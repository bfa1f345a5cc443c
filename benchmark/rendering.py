"""Render the declared artefacts (Tables I-V, Figures 2-5, claims.md, and any plugin's) from the eval records.

Writes `<results>/<profile>/tables/tableN.{csv,md}`, `<results>/<profile>/figures/figN.png` and
`<results>/<profile>/claims.md`. Pure function of the records (plus the test images for Fig. 4): nothing
trains or evaluates here, and without plugins nothing here imports torch. The command is
`python -m benchmark.render` (benchmark/cli/render.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark import claims, figures, study, tables  # noqa: F401  (they declare the artefacts)
from benchmark.artefacts import ARTEFACTS, RenderRequest, artefact_order
from benchmark.results import Results


def render(results: Results, root: str | Path, *, only: Sequence[str] | None = None,
           methods: Sequence[str] | None = None, data_root: str | None = None,
           compare: bool | None = None) -> list[Path]:
    """Render the chosen artefacts (default: all) under `root` (`<results>/<profile>`); returns the paths written.

    `methods` replaces the rows of Table I and the methods of Figs. 2-3 (artefacts declared with
    custom_methods); `compare` adds the published values to the tables (default: in the paper profile only)."""
    compare = results.profile.name == "paper" if compare is None else compare
    request = RenderRequest(Path(root), tuple(methods) if methods else None, compare, data_root)
    written: list[Path] = []
    for name in artefact_order() if only is None else only:
        artefact = ARTEFACTS.get(name)
        written += artefact.render(results, artefact, request)
    return written
