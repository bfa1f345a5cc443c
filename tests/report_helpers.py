"""Shared by the table, figure and claim tests: the committed fixture, a pinned profile, golden-file
comparison, and a small factory for hand-built eval records."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.config import PROFILES, AttackSetting, Profile
from benchmark.results import Results
from benchmark.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = FIXTURES / "records"
GOLDEN = FIXTURES / "golden" / "quick"

#: the quick profile with its notes and worst-case setting pinned, so the golden files do not change with config.py's
#: wording and values (the tables name the profile's setting for records that do not state theirs)
PROFILE: Profile = replace(PROFILES.get("quick"), datasets=("shapes", "digits"), model="cnn", table_eps=0.02,
                           image_size=None, notes="quick profile (test fixture): invented numbers",
                           attack_settings={"aa": AttackSetting({"n_iter": 20, "n_targets": 4}, 10.0, "test fixture",
                                                                images=500)})


def fixture_results() -> Results:
    """The committed fixture's records under the pinned quick profile."""
    return Results.from_records(Store(RECORDS, "quick").records("eval"), PROFILE, allow_stale=True)


def assert_golden(written: Path, name: str | None = None) -> None:
    """`written` must equal tests/fixtures/golden/quick/<name> byte for byte (UPDATE_GOLDEN=1 rewrites it)."""
    golden = GOLDEN / (name or written.name)
    text = written.read_text(encoding="utf-8")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{written} differs from {golden} (UPDATE_GOLDEN=1 rewrites)"


def eval_record(dataset: str, domain: str, method: str, seed: int = 0, *, cacc: float = 80.0,
                ood: dict[str, float] | None = None, aacc: dict[str, dict[str, float]] | None = None,
                comp: float = 20.0, suff: float = 30.0, time: float = 1.0, model: str = "cnn", steps: int = 400,
                key: str | None = None, heatmaps: dict | None = None, data_version: int | None = None
                ) -> dict[str, Any]:
    """A minimal eval record of the store's contract with the given metrics."""
    train_key = f"t-{dataset}-{domain}-{method}-{seed}-{model}-{steps}-{data_version}"
    metrics: dict[str, Any] = {"cAcc": cacc, "ood_cAcc": ood or {}, "aAcc": aacc or {}, "Comp": comp, "Suff": suff,
                               "time_per_epoch_s": time}
    if heatmaps is not None:
        metrics["heatmaps"] = heatmaps
    return {"kind": "eval", "key": key or f"e-{train_key}", "train_key": train_key, "profile": "quick",
            "dataset": dataset, "train_domain": domain, "method": method, "seed": seed,
            "config": {"train": {"model": model, "steps": steps, "batch_size": 32, "lr": 0.002,
                                 **({} if data_version is None else {"data_version": data_version})},
                       "attacks": ["pgd"],
                       "eps": [0.02], "attack_steps": 10},
            "versions": {"code": "abc1234", "torch": "2.5.1"}, "data": f"{dataset} data", "metrics": metrics}


def assert_texts_inside(fig: Any) -> None:
    """Every title and legend text of `fig` lies inside the figure (a suptitle never wraps by itself)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = fig.bbox.padded(1)
    texts = [*fig.texts, *(t for legend in fig.legends for t in legend.get_texts())]
    assert texts
    for text in texts:
        box = text.get_window_extent(renderer)
        assert inside.contains(*box.min) and inside.contains(*box.max), f"cut at the figure's edge: {text.get_text()!r}"
