"""The one PNG writer of the package (matplotlib, Agg backend): figures, sample grids and SCA examples.

Kept apart from the figures so that data previews and the DDPM examples can draw without importing
the rendering of results, and the figures without importing the data or the DDPM.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 120
#: characters of a title that one inch of figure width holds at 10 pt (matplotlib's DejaVu Sans; Figs. 5 and 6)
TITLE_CHARS_PER_INCH = 12.5


def wrap_title(lines: Iterable[str], width_in: float, fontsize: float) -> str:
    """A figure title: each line wrapped to the characters a figure `width_in` inches wide holds at `fontsize`
    (a suptitle never wraps by itself, so a one-panel figure cut its title at both edges)."""
    chars = int(width_in * TITLE_CHARS_PER_INCH * 10 / fontsize)
    return "\n".join(part for line in lines for part in textwrap.wrap(line, chars) or [""])


def save_png(fig: plt.Figure, out: str | Path) -> Path:
    """Write `fig` as a PNG at `out` (folders created) and close it; every figure of the package goes here."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
