"""The one PNG writer of the package (matplotlib, Agg backend): figures, sample grids and SCA examples.

Kept apart from the figures so that data previews and the DDPM examples can draw without importing
the rendering of results, and the figures without importing the data or the DDPM.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 120


def save_png(fig: plt.Figure, out: str | Path) -> Path:
    """Write `fig` as a PNG at `out` (folders created) and close it; every figure of the package goes here."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
