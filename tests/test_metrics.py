"""The metric declarations (benchmark/metrics.py): the README's glossary names each one, the evaluation runs them
after their part, a broken declaration is one error naming it, and the worst case is named only where declared."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmark.config import PROFILES
from benchmark.data import load_benchmark
from benchmark.evaluate import evaluate
from benchmark.metrics import METRICS, PARTS, register_metric
from benchmark.models import build_model
from benchmark.plugins import load_file
from benchmark.registry import UserError
from tests.conftest import reduced

ROOT = Path(__file__).resolve().parents[1]


def glossary_rows() -> list[list[str]]:
    """The cells of README's metric table ("How robustness and explanations are measured")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## How robustness and explanations are measured", 1)[1]
    table = section.split("| metric | range, better |", 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_readme_glossary_names_every_declared_metric_once_with_its_direction():
    rows = glossary_rows()
    for name in METRICS:
        metric = METRICS.get(name)
        found = [row for row in rows if f"`{name}`" in row[0]]
        assert len(found) == 1, f"README's metric table names `{name}` in {len(found)} rows"
        assert ("higher" if metric.higher_is_better else "lower") in found[0][1], (name, found[0][1])


def test_the_worst_case_attack_is_named_only_in_its_declarations_and_the_profiles_settings():
    """No module special-cases `aa` by name: the attack declares its stages, the AA metric its attack."""
    sources = [p for folder in ("benchmark", "attacks") for p in (ROOT / folder).rglob("*.py")]
    naming = sorted(str(p.relative_to(ROOT)) for p in sources if '"aa"' in p.read_text(encoding="utf-8"))
    assert naming == ["attacks/autoattack.py", "benchmark/config.py", "benchmark/metrics.py"]


@pytest.mark.parametrize(("declaration", "problem"), [
    ({}, "exactly one of path= (where the record keeps it) and attack="),
    ({"path": ("x",), "attack": "pgd"}, "exactly one of path="),
    ({"path": ("x",), "compute": lambda ev: 1.0, "part": "training"}, "part= one of clean_and_ood"),
    ({"path": ("x",), "part": "training"}, "part= one of clean_and_ood"),
    ({"path": ("x",), "compute": lambda ev, more: 1.0, "part": "attacks"}, "must take one argument"),
    ({"path": ("x",), "range": (1, 0)}, "finite low < high"),
    ({"path": ("x",), "cost": -1.0}, "cost must be a number >= 0"),
])
def test_a_broken_declaration_is_a_user_error_naming_the_metric(declaration, problem):
    kwargs = {"display": "x", "range": (0, 1), "higher_is_better": True, **declaration}
    with pytest.raises(UserError, match=re.escape("metric 'broken' breaks the metric contract: ") + ".*"
                       + re.escape(problem)):
        register_metric("broken", **kwargs)
    assert "broken" not in METRICS


PROBE_PLUGIN = '''
from benchmark.metrics import register_metric

register_metric("clean_pgd", display="clean PGD", range=(0, 100), higher_is_better=True, path=("extra", "clean_pgd"),
                part="attacks", compute=lambda ev: ev.metrics["aAcc"]["pgd"]["0"])
register_metric("never", display="never", range=(0, 1), higher_is_better=True, path=("never",), part="heatmaps",
                compute=lambda ev: None)
'''


def test_evaluate_runs_each_declared_metric_after_its_part_and_writes_it_at_its_path(tmp_path):
    """A metric computed after the attack grid reads the grid's numbers; None writes nothing; the record's parts are
    PARTS, in order."""
    plugin = tmp_path / "probe_metrics.py"
    plugin.write_text(PROBE_PLUGIN)
    origin = load_file(plugin)
    try:
        bench = reduced(load_benchmark("shapes"), test=32, whole=32)
        profile = replace(PROFILES.get("quick"), faithfulness_images=8, probe_images=16)
        torch.manual_seed(0)
        model = build_model("cnn", bench.num_classes)
        metrics = evaluate(model, bench, "studio", attacks=("pgd",), eps=(0.0,), profile=profile, seed=0,
                           device=torch.device("cpu"), progress=False)
    finally:
        METRICS.forget(origin)
    assert metrics["extra"] == {"clean_pgd": metrics["aAcc"]["pgd"]["0"]} and metrics["cAcc"] == metrics["extra"][
        "clean_pgd"]
    assert "never" not in metrics and "clean_pgd" not in METRICS
    assert list(metrics["eval_parts_s"]) == list(PARTS)
