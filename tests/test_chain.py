"""The evaluation's attack runs (benchmark/evaluate.py AttackSeries, AttackRuns): a chained eps grid agrees with
independent runs at its first eps and is never above them, and what parts of an evaluation share (aa's apgd-ce
stage with apgd-ce alone; the table PGD with the masking probe, the stability metric and Fig. 4) gives the metrics a
recomputation gives."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import benchmark.attack_runs as attack_runs
import benchmark.evaluate as evaluation
from benchmark.attack_runs import AttackRuns, attack_parameters, percent
from benchmark.config import PROFILES
from benchmark.data import load_benchmark
from benchmark.evaluate import evaluate
from benchmark.models import build_model
from tests.conftest import reduced

#: a grid on which random cnns go from robust to broken; its middle eps plays the table eps (an independent run)
GRID = (0.0, 0.01, 0.02, 0.04, 0.08)
TABLE = 0.02
#: the worst-case family at light budgets (every code path, seconds per model)
LIGHT = {"apgd-t": {"n_iter": 10, "n_targets": 2}, "square": {"n_queries": 30},
         "aa": {"n_iter": 10, "n_targets": 2, "n_queries": 30}}


def _random_model_and_batches(seed: int) -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]]]:
    """A random 5-class cnn and 24 random images labelled with its own predictions (all clean-correct), 2 batches."""
    torch.manual_seed(seed)
    model = build_model("cnn", 5).eval()
    x = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(100 + seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, [{"x": x[:12], "y": y[:12]}, {"x": x[12:], "y": y[12:]}]


@pytest.mark.parametrize("seed", [2, 3])
def test_a_chain_agrees_with_independent_runs_at_the_first_eps_and_is_never_above_them(seed: int) -> None:
    """Over random small models, each chained attack of the family: its chain at the grid's first eps > 0 is the
    independent run's robust set bit for bit, at every eps its accuracy is at most the independent run's, it never
    rises with eps, and past the first eps it attacks only the points its chain left robust (at the table eps,
    every point again)."""
    model, batches = _random_model_and_batches(seed)
    for attack, light in LIGHT.items():
        params = attack_parameters(attack, steps=10, params=light)
        series = AttackRuns(model, seed=0, steps=10, resources={}, eps=GRID, table_eps=TABLE).series(
            attack, params, batches)
        runs = [series.run(k) for k in range(len(GRID))]
        independent = [AttackRuns(model, seed=0, steps=10, resources={}, eps=(e,), table_eps=e).series(
            attack, params, batches).run(0).robust for e in GRID]
        assert torch.equal(series.chain[1], independent[1]), attack
        accuracies = [percent(chain) for chain in series.chain]
        assert all(percent(c) <= percent(i) for c, i in zip(series.chain, independent, strict=True)), attack
        assert accuracies == sorted(accuracies, reverse=True), (attack, accuracies)
        assert [run.attacked for run in runs] == [24, 24, 24, int(series.chain[2].sum()), int(series.chain[3].sum())]
        assert torch.equal(runs[2].robust, independent[2]), attack  # the table eps: an independent run


@pytest.fixture(scope="module")
def shapes_and_model(erm_cnn_on_shapes):
    """shapes (160 test images per domain) and the session's quick ERM cnn (conftest)."""
    return reduced(load_benchmark("shapes"), test=160), erm_cnn_on_shapes()


def test_sharing_gives_the_metrics_a_recomputation_gives_and_runs_apgd_ce_once(shapes_and_model, monkeypatch
                                                                                 ) -> None:
    """One evaluation with and without reuse (e2e profile: the quick evaluation on fewer images, light worst case):
    identical metrics; with reuse, apgd-ce runs once per eps > 0 for both apgd-ce and aa's first stage, and the table
    PGD once for the grid, the probe, the stability metric and the heatmaps; the record says which eps are chained
    and how many points each run attacked."""
    bench, model = shapes_and_model
    e2e = PROFILES.get("e2e")
    profile = replace(e2e, attack_settings={a: replace(e2e.attack_settings[a], images=96) for a in ("apgd-ce", "aa")})
    calls: list[tuple[str, float]] = []
    run_attack = attack_runs.run_attack

    def counted(model, batches, attack, eps, **kwargs):
        calls.append((attack, eps))
        return run_attack(model, batches, attack, eps, **kwargs)

    for module in (attack_runs, evaluation):  # the series' runs, and the table PGD's outside the grid
        monkeypatch.setattr(module, "run_attack", counted)
    metrics = {}
    for reuse in (True, False):
        calls.clear()
        metrics[reuse] = evaluate(model, bench, "studio", attacks=("pgd", "apgd-ce", "aa"), eps=(0.0, 0.01, 0.02, 0.04),
                                  profile=profile, seed=0, device=torch.device("cpu"), progress=False,
                                  reuse=reuse)
        counts = {key: calls.count(key) for key in set(calls)}
        assert counts[("apgd-ce", 0.02)] == (1 if reuse else 2) and counts[("pgd", 0.02)] == (1 if reuse else 4)
    timings = ("attack_s", "eval_parts_s")
    assert {k: v for k, v in metrics[True].items() if k not in timings} == {
        k: v for k, v in metrics[False].items() if k not in timings}
    record = metrics[True]
    budgets = record["attack_budgets"]
    assert budgets["aa"]["images"] == 96 and budgets["aa"]["chained"] == ["0.04"] and budgets["pgd"]["chained"] == []
    assert record["attack_points"]["pgd"] == {"0": 160, "0.01": 160, "0.02": 160, "0.04": 160}
    check = record["chain_check"]["aa"]
    assert check["chain_aAcc"] <= check["independent_aAcc"] == record["aAcc"]["aa"]["0.02"]
    assert record["attack_points"]["aa"]["0.04"] == round(check["chain_aAcc"] * 96 / 100)
    assert record["aAcc"]["aa"]["0.04"] <= check["chain_aAcc"]
    assert set(record["attack_s"]) == {"pgd", "apgd-ce", "aa"}
