"""Render a PNG grid of samples per domain (image row + mask row), to see what a benchmark looks like.

The command: python -m benchmark.cli.preview --dataset shapes --out results/samples_shapes.png
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data import load_benchmark
from benchmark.plotting import plt, save_png


def render_samples(dataset: str, out: Path, *, per_domain: int = 8, data_root: str | None = None) -> Path:
    """Save a grid: for each domain one row of images (titled with their class) and one of masks."""
    bench = load_benchmark(dataset, data_root=data_root)
    rows = len(bench.domains) * (2 if bench.has_masks else 1)
    fig, axes = plt.subplots(rows, per_domain, figsize=(1.3 * per_domain, 1.45 * rows), squeeze=False)
    row = 0
    for domain in bench.domains:
        items = [domain.test[i] for i in range(per_domain)]
        for col, item in enumerate(items):
            ax = axes[row, col]
            ax.imshow(item["x"].permute(1, 2, 0).numpy())
            ax.set_title(bench.classes[int(item["y"])], fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if bench.has_masks:
                mask_ax = axes[row + 1, col]
                mask_ax.imshow(item["mask"][0].numpy(), cmap="gray", vmin=0, vmax=1)
                mask_ax.set_axis_off()
        axes[row, 0].set_ylabel(domain.name, fontsize=10)
        row += 2 if bench.has_masks else 1
    fig.suptitle(f"{dataset}: test samples per domain" + (" (rows: image, object mask)" if bench.has_masks else ""),
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)
