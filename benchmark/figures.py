"""Figures 2-4 of the paper, and our Fig. 5, from eval records (matplotlib Agg, PNG).

- Fig. 2: accuracy vs eps, one panel per dataset x attack (the paper's four), a curve per method: the mean over seeds,
  then over the training domains the method has records for (a legend entry says when a method covers
  fewer domains than the best-covered one); eps 0 is the clean accuracy when not recorded.
- Fig. 3: aAcc (PGD at the profile's table_eps) vs training time per epoch, one panel per dataset and
  one point per (method, model), averaged the same way, with the Pareto front (maximize aAcc,
  minimize time) in red: EGAT on lighter backbones appears when records of other models exist.
- Fig. 4: Grad-CAM maps of the true class, clean and under PGD, from the records' `metrics.heatmaps`,
  for ERM, DRE, SGDrop and EGAT, over the test images they came from (the VLCS-like benchmark first,
  its first domain with the most of these methods, the lowest seed).
- Fig. 5 (ours, not in the paper): AA accuracy at the table eps against relevance mass accuracy (Grad-CAM
  mass on the object mask), one point per method, training domain and seed, a panel per dataset; its title says
  what AA is and the images and budgets it ran at, as Table I's note does.
Curves, points and panels without records are simply absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import artefacts
from benchmark.artefacts import ARTEFACTS, Artefact, Grid, RenderRequest
from benchmark.plotting import plt, save_png, wrap_title
from benchmark.registry import UserError
from benchmark.results import Results
from benchmark.selection import PAPER_ATTACKS
from benchmark.store import eps_label
from benchmark.tables import MAIN_METHODS, OOD_METHODS
from benchmark.tabulation import in_domain_obs, worst_case_note

MARKERS = "osD^v<>pPX*h"
#: the largest eps of the paper's Fig. 2 (the profiles' grid extends beyond it: benchmark/config.py)
PAPER_EPS_MAX = 0.04


def _colors(methods: Sequence[str]) -> dict[str, Any]:
    """One colour per method, stable across panels; EGAT is red (as in the paper), no one else is."""
    palette = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 3]
    others = [m for m in methods if m != "egat"]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(others)}
    colors["egat"] = "tab:red"
    return colors


def _subtitle(results: Results) -> str:
    """What produced the figure's numbers: the profile, and STALE records when they are included."""
    text = "paper profile" if results.profile.name == "paper" else (
        f"{results.profile.name} profile, built-in benchmarks: not the paper's numbers")
    if results.stale and results.allow_stale:
        text += f"; STALE: includes {results.stale} records made by other code (--allow-stale)"
    return text


def _domain_mean(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over seeds per training domain, then over domains; `domains` = how many domains entered."""
    per_domain = frame.groupby([*keys, "train_domain"], sort=False)["value"].mean().reset_index()
    return per_domain.groupby(keys, sort=False)["value"].agg(value="mean", domains="size").reset_index()


def accuracy_curves(results: Results, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Fig. 2's data: dataset, attack, method, eps (float), value (%), domains (count).

    Every point of a curve comes from the same runs: a run evaluated at fewer eps than another run of
    its (dataset, attack, method) is left out (e.g. Table I's eps-0.02-only runs on the domains the
    eps grid was not run on), so a curve never jumps where more domains enter its mean."""
    methods = methods or ARTEFACTS.get("fig2").methods
    obs = results.table_obs
    obs = obs[obs["method"].isin(methods)]
    acc = obs[obs["metric"] == "aAcc"].assign(eps=lambda f: f["eps"].astype(float))
    run = ["dataset", "train_domain", "method", "seed"]
    clean = obs[(obs["metric"] == "cAcc") & (obs["test_domain"] == obs["train_domain"])][[*run, "value"]]
    zero = acc[[*run, "attack"]].drop_duplicates().merge(clean, on=run).assign(eps=0.0)
    both = pd.concat([acc, zero], ignore_index=True).drop_duplicates([*run, "attack", "eps"], keep="first")
    curve = ["dataset", "attack", "method"]
    eps_of_run = both.groupby([*run, "attack"])["eps"].transform("nunique")
    eps_of_curve = both.groupby(curve)["eps"].transform("nunique")
    return _domain_mean(both[eps_of_run == eps_of_curve], [*curve, "eps"])


def figure2(results: Results, out: str | Path, *, methods: Sequence[str] | None = None) -> Path | None:
    """Accuracy vs eps per dataset (rows) x attack (columns); None when no record has attack results."""
    methods = methods or ARTEFACTS.get("fig2").methods
    curves = accuracy_curves(results, methods)
    if curves.empty:
        return None
    datasets = [d for d in results.datasets() if d in set(curves["dataset"])]
    # panels: the paper's four attacks (our worst-case attacks are not in its figure; Tables I and V show AA)
    attacks = [a for a in PAPER_ATTACKS if a in set(curves["attack"])]
    if not attacks:
        return None
    colors = _colors(methods)
    fig, axes = plt.subplots(len(datasets), len(attacks), figsize=(max(4.2 * len(attacks), 8.0),
                                                                    3.4 * len(datasets) + 0.6),
                             squeeze=False, sharey=True)
    handles: dict[str, Any] = {}
    partial: set[str] = set()
    for i, dataset in enumerate(datasets):
        for j, attack in enumerate(attacks):
            ax = axes[i, j]
            panel = curves[(curves["dataset"] == dataset) & (curves["attack"] == attack)]
            ax.set_title(f"{results.catalog.attack(attack)} — {results.role(dataset)}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.set_ylim(0, 100)
            if j == 0:
                ax.set_ylabel("accuracy (%)", fontsize=9)
            if panel.empty:
                ax.text(0.5, 0.5, "no records", ha="center", va="center", transform=ax.transAxes, color="gray")
                ax.set_xticks([])
                continue
            for k, method in enumerate(methods):
                line = panel[panel["method"] == method].sort_values("eps")
                if line.empty:
                    continue
                if line["domains"].min() < panel["domains"].max():
                    partial.add(method)
                egat = method == "egat"
                handles[method] = ax.plot(line["eps"], line["value"], color=colors[method],
                                          marker=MARKERS[k % len(MARKERS)], linestyle="-" if egat else "--",
                                          linewidth=2.4 if egat else 1.4, markersize=4, zorder=3 if egat else 2)[0]
            if max(panel["eps"]) > PAPER_EPS_MAX:
                ax.axvspan(0, PAPER_EPS_MAX, color="0.93", zorder=0)
            ax.set_xticks(sorted(set(panel["eps"])))
            ax.tick_params(axis="x", labelsize=7)
            ax.set_xlabel("ε (L∞, pixel scale [0, 1])", fontsize=9)
    footnote = "* fewer training domains than the best-covered method in some panel (mean over its own)"
    fig.suptitle(wrap_title([f"Fig. 2: accuracy under attack vs ε (mean over seeds and training domains; shaded: the "
                             f"paper's 0-{PAPER_EPS_MAX:g} range, extended until undefended models reach about 0)",
                             _subtitle(results), *([footnote] if partial else [])],
                            fig.get_figwidth(), 11), fontsize=11)
    labels = [artefacts.label(results.catalog, m, "fig2") + ("*" if m in partial else "") for m in handles]
    fig.legend(handles.values(), labels, loc="lower center", ncol=min(len(handles), 7), fontsize=9, frameon=False)
    # tight_layout leaves room for the suptitle itself; the legend's rows take fixed inches at the bottom
    fig.tight_layout(rect=(0, (0.4 + 0.25 * (len(handles) > 7)) / fig.get_figheight(), 1, 1))
    return save_png(fig, out)


def pareto_optimal(times: Sequence[float], accs: Sequence[float]) -> list[bool]:
    """Whether each point is undominated: no other point is at least as fast and as accurate, and
    strictly better in one of the two."""
    points = list(zip(times, accs, strict=True))
    return [not any(t2 <= t and a2 >= a and (t2 < t or a2 > a) for t2, a2 in points) for t, a in points]


def time_points(results: Results, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Fig. 3's data: dataset, method, model, time (s/epoch), aAcc (%), domains, pareto (per dataset)."""
    methods = methods or ARTEFACTS.get("fig3").methods
    obs = results.obs[results.obs["method"].isin(methods)]
    label = eps_label(results.profile.table_eps)
    keys = ["dataset", "method", "model"]
    acc = _domain_mean(obs[(obs["metric"] == "aAcc") & (obs["attack"] == "pgd") & (obs["eps"] == label)], keys)
    time = _domain_mean(obs[obs["metric"] == "time_per_epoch_s"], keys)
    points = acc.merge(time, on=keys, suffixes=("_acc", "_time"))
    points = points.rename(columns={"value_acc": "aAcc", "value_time": "time", "domains_acc": "domains"})
    points = points[[*keys, "time", "aAcc", "domains"]]
    points["pareto"] = False
    for _, group in points.groupby("dataset"):
        points.loc[group.index, "pareto"] = pareto_optimal(group["time"].tolist(), group["aAcc"].tolist())
    return points


def figure3(results: Results, out: str | Path, *, methods: Sequence[str] | None = None) -> Path | None:
    """aAcc vs time per epoch with the Pareto front, one panel per dataset; None without data."""
    points = time_points(results, methods)
    if points.empty:
        return None
    datasets = [d for d in results.datasets() if d in set(points["dataset"])]
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(6.2 * len(datasets), 8.0), 5.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        panel = points[points["dataset"] == dataset]
        most = panel["domains"].max()
        for k, row in enumerate(panel.sort_values("time").itertuples()):
            color = "tab:red" if row.pareto else "tab:blue"
            ax.scatter(row.time, row.aAcc, color=color, s=46, zorder=3, edgecolor="black", linewidth=0.5)
            name = artefacts.label(results.catalog, row.method, "fig3")
            name += f" ({row.model})" if row.model != results.profile.model else ""
            name += f" [{row.domains}/{most} domains]" if row.domains < most else ""
            # labels alternate above / below their points, in time order, so neighbours rarely collide
            ax.annotate(name, (row.time, row.aAcc), textcoords="offset points", xytext=(5, 5 if k % 2 else -11),
                        fontsize=8)
        front = panel[panel["pareto"]].sort_values("time")
        ax.plot(front["time"], front["aAcc"], color="tab:red", linewidth=1.6, zorder=2, label="Pareto front")
        ax.scatter([], [], color="tab:blue", edgecolor="black", linewidth=0.5, label="dominated")
        ax.set_title(results.role(dataset), fontsize=10)
        ax.set_xlabel("training time per epoch (s)", fontsize=9)
        ax.set_ylabel(f"aAcc, PGD at ε = {eps_label(results.profile.table_eps)} (%)", fontsize=9)
        ax.margins(x=0.15, y=0.12)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(wrap_title(["Fig. 3: adversarial accuracy vs training time per epoch (red: Pareto-optimal)",
                             _subtitle(results)], fig.get_figwidth(), 11), fontsize=11)
    fig.tight_layout()
    return save_png(fig, out)


def heatmap_runs(results: Results, methods: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Fig. 4's records, one per method: the VLCS-like benchmark first, its first domain with the most of
    these methods' heatmaps, the lowest seed."""
    methods = methods or ARTEFACTS.get("fig4").methods
    runs = [r for r in results.runs_of({(d, m) for d in results.datasets() for m in methods})
            if r["metrics"].get("heatmaps")]
    for dataset in results.datasets():
        domains = results.domains(dataset)
        cover = {d: {r["method"] for r in runs if r["dataset"] == dataset and r["train_domain"] == d} for d in domains}
        best = max(domains, key=lambda d: (len(cover[d]), -domains.index(d)), default=None)
        if best is None or not cover[best]:
            continue
        chosen = {}
        for method in methods:
            mine = [r for r in runs if (r["dataset"], r["train_domain"], r["method"]) == (dataset, best, method)]
            if mine:
                chosen[method] = min(mine, key=lambda r: r["seed"])
        return chosen
    return {}


def _images(dataset: str, domain: str, indices: Sequence[int], *, data_root: str | None,
            image_size: int | None, data: str) -> tuple[list[np.ndarray], tuple[str, ...]] | None:
    """Test images (H, W, 3 in [0, 1]) and class names, or None when the data cannot be loaded or is not the
    data the records were made on (`data`: their description; another generator's images would not be the
    ones their maps explain). The data package is imported here only: the other figures need no torch."""
    from benchmark.data import load_benchmark

    try:
        bench = load_benchmark(dataset, data_root=data_root, image_size=image_size)
    except (UserError, OSError):
        return None
    if bench.description != data:
        return None
    test = bench.domain(domain).test
    return [test[i]["x"].permute(1, 2, 0).numpy() for i in indices], bench.classes


def figure4(results: Results, out: str | Path, *, methods: Sequence[str] | None = None, n_images: int = 3,
            data_root: str | None = None) -> Path | None:
    """Grad-CAM clean vs PGD: per image a clean row and a PGD row; columns the image, then each method's
    map over it. None when no record has heatmaps."""
    methods = methods or ARTEFACTS.get("fig4").methods
    chosen = heatmap_runs(results, methods)
    if not chosen:
        return None
    first = next(iter(chosen.values()))
    dataset, domain = first["dataset"], first["train_domain"]
    common = [i for i in first["metrics"]["heatmaps"]["indices"]
              if all(i in r["metrics"]["heatmaps"]["indices"] for r in chosen.values())][:n_images]
    loaded = _images(dataset, domain, common, data_root=data_root, image_size=results.profile.image_size,
                     data=first.get("data", ""))
    images, classes = loaded if loaded is not None else (None, None)
    eps = first["metrics"]["heatmaps"].get("eps", results.profile.table_eps)
    fig, axes = plt.subplots(2 * len(common), 1 + len(methods), figsize=(1.9 * (1 + len(methods)),
                             2.0 * 2 * len(common) + 0.8), squeeze=False)

    def name(label: int) -> str:
        return classes[label] if classes is not None else f"class {label}"

    mappable = None
    for k, index in enumerate(common):
        for half, (kind, title) in enumerate((("clean", "clean"), ("adv", f"PGD ε={eps_label(eps)}"))):
            row = 2 * k + half
            ax = axes[row, 0]
            if half:
                ax.text(0.5, 0.5, "maps under PGD,\ndrawn over the\nclean image",
                        ha="center", va="center", fontsize=7, transform=ax.transAxes)
                ax.set_frame_on(False)
            elif images is not None:
                ax.imshow(images[k])
            else:
                ax.text(0.5, 0.5, "image unavailable\n(--data-root, or the\nrecords' data differs)", ha="center",
                        va="center", fontsize=7,
                        transform=ax.transAxes)
            label = first["metrics"]["heatmaps"]["label"][first["metrics"]["heatmaps"]["indices"].index(index)]
            ax.set_ylabel(f"test #{index}: {name(label)}\n{title}", fontsize=8)
            for col, method in enumerate(methods, start=1):
                ax = axes[row, col]
                if row == 0:
                    ax.set_title(artefacts.label(results.catalog, method, "fig4"), fontsize=10)
                record = chosen.get(method)
                if record is None:
                    ax.text(0.5, 0.5, "no record", ha="center", va="center", fontsize=8, color="gray",
                            transform=ax.transAxes)
                    continue
                maps = record["metrics"]["heatmaps"]
                pos = maps["indices"].index(index)
                heat = np.asarray(maps[kind][pos], dtype=float)
                if images is not None:
                    h, w = images[k].shape[:2]
                    ax.imshow(images[k])
                    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
                else:
                    extent = None
                mappable = ax.imshow(heat, cmap="jet", alpha=0.5 if images is not None else 1.0, vmin=0, vmax=1,
                                     interpolation="bilinear", extent=extent)
                pred = maps["pred_clean" if kind == "clean" else "pred_adv"][pos]
                ok = pred == maps["label"][pos]
                ax.set_xlabel(f"pred: {name(pred)} {'✓' if ok else '✗'}", fontsize=8,
                              color="darkgreen" if ok else "firebrick")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=10)
    seeds = sorted({r["seed"] for r in chosen.values()})
    fig.suptitle(f"Fig. 4: Grad-CAM of the true class, clean vs PGD — {dataset}/{domain}, seed "
                 f"{', '.join(map(str, seeds))}\n{_subtitle(results)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if mappable is not None:
        bar = fig.add_axes((0.93, 0.25, 0.015, 0.5))
        fig.colorbar(mappable, cax=bar).set_label("Grad-CAM (normalized)", fontsize=8)
    return save_png(fig, out)


def scorecard_points(results: Results, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Fig. 5's data: dataset, train_domain, method, seed, AA (%) at the table eps, relevance mass accuracy (%)."""
    methods = methods or ARTEFACTS.get("fig5").methods
    obs = in_domain_obs(results, methods, ("AA", "relevance_mass"))
    if obs.empty:
        return pd.DataFrame(columns=["dataset", "train_domain", "method", "seed", "AA", "relevance_mass"])
    wide = obs.pivot_table(index=["dataset", "train_domain", "method", "seed"], columns="metric", values="value",
                           aggfunc="first").reset_index()
    if not {"AA", "relevance_mass"} <= set(wide.columns):
        return pd.DataFrame(columns=["dataset", "train_domain", "method", "seed", "AA", "relevance_mass"])
    wide = wide.dropna(subset=["AA", "relevance_mass"]).assign(relevance_mass=lambda f: 100 * f["relevance_mass"])
    return wide[["dataset", "train_domain", "method", "seed", "AA", "relevance_mass"]]


def figure5(results: Results, out: str | Path, *, methods: Sequence[str] | None = None) -> Path | None:
    """Fig. 5 (ours): AA accuracy against relevance mass accuracy, one point per (method, domain, seed), a panel
    per dataset: "robust AND looking at the object" is the upper right. None without both metrics."""
    methods = methods or ARTEFACTS.get("fig5").methods
    points = scorecard_points(results, methods)
    if points.empty:
        return None
    datasets = [d for d in results.datasets() if d in set(points["dataset"])]
    colors = _colors(methods)
    runs = results.runs_of(set(zip(points["dataset"], points["method"], strict=True)))
    lines = ["Fig. 5 (ours, not in the paper): worst-case robustness vs attention on the object, one point per "
             "training domain and seed", _subtitle(results), worst_case_note(results, runs)]
    title = wrap_title(lines, 5.2 * len(datasets), 10)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.2 + 0.17 * title.count("\n")),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = points[points["dataset"] == dataset]
        for k, method in enumerate(m for m in methods if m in set(part["method"])):
            mine = part[part["method"] == method]
            ax.scatter(mine["relevance_mass"], mine["AA"], color=colors[method], marker=MARKERS[k % len(MARKERS)],
                       s=36, alpha=0.8, label=f"{artefacts.label(results.catalog, method, 'fig5')} (n={len(mine)})")
        ax.set_title(f"{dataset}: {results.role(dataset)}", fontsize=10)
        ax.set_xlabel("relevance mass accuracy (%): Grad-CAM mass on the object")
        ax.set_ylabel(f"AA accuracy (%) at eps {eps_label(results.profile.table_eps)}")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def declare_figure(name: str, draw: Callable[..., Path | None], methods: tuple[str, ...], grids: tuple[Grid, ...],
                   *, custom_methods: bool = False, images: bool = False) -> Artefact:
    """Register a figure: `draw(results, out, methods=...)` -> the PNG's path, or None without the records it
    needs, written as `<results>/<profile>/figures/<name>.png`; `images`: it also takes `data_root=`, where
    folder datasets' images are."""

    def render(results: Results, artefact: Artefact, request: RenderRequest) -> list[Path]:
        options = {"data_root": request.data_root} if images else {}
        path = draw(results, request.out / "figures" / f"{name}.png", methods=artefact.methods_for(request), **options)
        return [] if path is None else [path]

    artefact = Artefact(name, "figure", methods, render, grids, custom_methods=custom_methods)
    ARTEFACTS.add(name, artefact)
    return artefact


#: Fig. 2: every attack over the eps grid, on the first domain of each dataset (where SCA is affordable)
declare_figure("fig2", figure2, (*OOD_METHODS, "at"), (Grid(domains="0", attacks=",".join(PAPER_ATTACKS), eps="grid"),),
               custom_methods=True)
#: Fig. 3: Table I's models, Madry AT, and EGAT on the profile's lighter backbones
declare_figure("fig3", figure3, (*MAIN_METHODS, "at"), (Grid(), Grid(methods=("egat",), models="light")),
               custom_methods=True)
declare_figure("fig4", figure4, ("erm", "dre", "sgdrop", "egat"), (Grid(domains="0", first_dataset_only=True),),
               images=True)
#: Fig. 5 (ours): Table V's models, AA against relevance mass accuracy
declare_figure("fig5", figure5, (*MAIN_METHODS, "egat-advce", "at"), (Grid(),), custom_methods=True)
