"""Figures 2-4: valid PNGs from the fixture (Fig. 4 over the built-in shapes images), their data
(eps 0 from cAcc, per-(method, model) points, the Pareto front), and graceful degradation."""

from __future__ import annotations

import pytest
from PIL import Image

from benchmark import figures
from benchmark.figures import (
    accuracy_curves,
    figure2,
    figure4,
    heatmap_runs,
    pareto_optimal,
    scorecard_points,
    time_points,
)
from benchmark.rendering import render
from benchmark.results import Results
from tests.report_helpers import PROFILE, assert_texts_inside, eval_record, fixture_results


@pytest.fixture(scope="module")
def fixture() -> Results:
    return fixture_results()


def assert_png(path, min_size=(400, 300)):
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]


def test_all_figures_are_written_as_pngs(fixture, tmp_path):
    written = render(fixture, tmp_path, only=["fig2", "fig3", "fig4", "fig5"])
    assert [p.name for p in written] == ["fig2.png", "fig3.png", "fig4.png", "fig5.png"]
    for path in written:
        assert_png(path)


@pytest.mark.parametrize("name", ["figure2", "figure3", "figure5"])
def test_a_one_dataset_figure_keeps_its_title_and_legend_inside(name, fixture, tmp_path, monkeypatch):
    """Figs. 2 and 3 on one dataset (a --datasets shapes run) once cut their titles at both edges."""
    one = Results.from_records([r for r in fixture.records if r["dataset"] == "shapes"], PROFILE, allow_stale=True)
    drawn = []
    monkeypatch.setattr(figures, "save_png", lambda fig, out: drawn.append(fig) or out)
    getattr(figures, name)(one, tmp_path / "fig.png")
    assert_texts_inside(drawn[0])
    figures.plt.close(drawn[0])


def test_pareto_front():
    #            fast+weak  slow+strong  dominated  equal twin of the first
    times, accs = [1.0, 10.0, 5.0, 1.0], [10.0, 50.0, 9.0, 10.0]
    assert pareto_optimal(times, accs) == [True, True, False, True]
    assert pareto_optimal([2.0, 1.0], [10.0, 10.0]) == [False, True]


def test_fig3_points_keep_lighter_backbones_apart(fixture):
    points = time_points(fixture)
    egat = points[(points["dataset"] == "shapes") & (points["method"] == "egat")].set_index("model")
    assert set(egat.index) == {"cnn", "mobilenet_v2"}
    assert egat.loc["mobilenet_v2", "domains"] == 1 and egat.loc["cnn", "domains"] == 3
    assert egat.loc["mobilenet_v2", "time"] < egat.loc["cnn", "time"]
    assert not points[(points["dataset"] == "shapes") & (points["method"] == "ign")]["pareto"].item()


def test_fig2_starts_at_clean_accuracy_when_eps_0_was_not_evaluated():
    records = [eval_record("shapes", "studio", "egat", s, cacc=90.0 + s, aacc={"pgd": {"0.02": 50.0 + s}})
               for s in (0, 1)]
    curves = accuracy_curves(Results.from_records(records, PROFILE, allow_stale=True))
    assert curves[["eps", "value"]].values.tolist() == [[0.02, 50.5], [0.0, 90.5]]


def test_fig2_curves_use_only_runs_with_the_whole_eps_grid():
    """Table I's eps-0.02-only run on another domain must not enter the 0.02 point of the curve."""
    grid = eval_record("shapes", "studio", "at", cacc=90.0, aacc={"pgd": {"0.01": 80.0, "0.02": 50.0, "0.04": 20.0}})
    single = eval_record("shapes", "street", "at", cacc=95.0, aacc={"pgd": {"0.02": 90.0}})
    curves = accuracy_curves(Results.from_records([grid, single], PROFILE, allow_stale=True), ["at"]).sort_values("eps")
    assert curves[["eps", "value", "domains"]].values.tolist() == [
        [0.0, 90.0, 1], [0.01, 80.0, 1], [0.02, 50.0, 1], [0.04, 20.0, 1]]


def test_figures_without_data_are_skipped(tmp_path):
    results = Results.from_records([eval_record("shapes", "studio", "erm")], PROFILE, allow_stale=True)
    assert figure2(results, tmp_path / "fig2.png") is None
    assert figure4(results, tmp_path / "fig4.png") is None
    assert render(Results.from_records([], PROFILE, allow_stale=True), tmp_path, only=["fig2", "fig3", "fig4"]) == []


def test_fig4_picks_one_run_per_method_and_draws_without_images(tmp_path, fixture):
    chosen = heatmap_runs(fixture)
    assert list(chosen) == ["erm", "dre", "sgdrop", "egat"]
    assert {(r["dataset"], r["train_domain"], r["seed"]) for r in chosen.values()} == {("shapes", "studio", 0)}
    maps = chosen["egat"]["metrics"]["heatmaps"]
    record = eval_record("vlcs", "Caltech101", "egat", heatmaps=maps)  # folder dataset, no --data-root
    path = figure4(Results.from_records([record], PROFILE, allow_stale=True), tmp_path / "fig4.png")
    assert_png(path, min_size=(300, 300))


def test_fig5_has_one_point_per_method_domain_and_seed(fixture):
    points = scorecard_points(fixture)
    shapes = points[points["dataset"] == "shapes"]
    assert len(shapes[shapes["method"] == "egat"]) == 6  # 3 domains x 2 seeds
    assert set(points["dataset"]) == {"shapes"}  # digits' fixture records have no AA / localization
    assert points["relevance_mass"].between(0, 100).all()
