"""The equal-budget sweep: draws, selection, resumption, the tuned file and how train jobs take it, bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from benchmark import hyperparameter_search, tuned
from benchmark.cli import sweep
from benchmark.config import PROFILES
from benchmark.data.folders import VLCS
from benchmark.hyperparameter_search import draw_trial, select, sweep_store
from benchmark.jobs import make_train_job
from benchmark.registry import Range, UserError
from methods import METHODS, method_hparams
from tests.test_folders import make_tree

pytestmark = pytest.mark.filterwarnings("ignore::benchmark.data.folders.DatasetCountWarning")
QUICK = PROFILES.get("quick")
COMMITTED_TUNED = Path(tuned.__file__).resolve().parent / "tuned" / "quick.json"


def test_trial_zero_is_the_defaults_and_draws_are_typed_seeded_and_in_range():
    assert draw_trial(QUICK, "shapes", "egat", 0).hparams == {} and draw_trial(QUICK, "shapes", "egat", 0).loop == {}
    for method in ("erm", "irm", "egat", "egat-advce", "at", "igr"):
        space = METHODS.get(method).search_space("quick")
        defaults = method_hparams(method, QUICK)
        for index in range(1, 6):
            trial = draw_trial(QUICK, "shapes", method, index)
            assert trial == draw_trial(QUICK, "shapes", method, index)  # a trial's values depend only on its name
            assert set(trial.hparams) == set(space) and set(trial.loop) == {"lr", "dropout"}
            for key, value in trial.hparams.items():
                assert space[key].low <= value <= space[key].high
                assert type(value) is type(defaults[key])
            assert QUICK.loop_search["lr"].low <= trial.loop["lr"] <= QUICK.loop_search["lr"].high
    assert draw_trial(QUICK, "shapes", "erm", 1).loop != draw_trial(QUICK, "digits", "erm", 1).loop
    assert isinstance(draw_trial(QUICK, "shapes", "irm", 1).hparams["anneal_iters"], int)
    # the quick IRM anneal range is DomainBed's 10^U(0, 4) of 5000 steps scaled to the 400-step run
    assert METHODS.get("irm").search_space("quick")["anneal_iters"] == Range(1, 800, log=True, integer=True)
    assert METHODS.get("irm").search_space("paper")["anneal_iters"] == Range(1, 1e4, log=True, integer=True)


def test_integer_ranges_draw_integers_inside_them():
    rng = random.Random(0)
    values = {Range(1, 3, integer=True).draw(rng) for _ in range(200)}
    assert values == {1, 2, 3}
    with pytest.raises(UserError, match="needs finite low < high"):
        Range(2, 1)


def test_selection_by_validation_with_the_oracle_beside_it():
    rows = pd.DataFrame([
        {"dataset": "d", "method": "m", "trial": t, "seed": s, "values": str(t), "val_acc": val, "cAcc": val,
         "ood_acc": ood}
        for t, s, val, ood in [(0, 0, 80, 40), (0, 1, 82, 42), (1, 0, 90, 20), (1, 1, 88, 22), (2, 0, 70, 60),
                               (2, 1, 70, 62)]])
    chosen = select(rows).iloc[0]
    assert (chosen["val_trial"], chosen["oracle_trial"], chosen["seeds"]) == (1, 2, 2)
    assert chosen["val_acc"] == 89 and chosen["val_ood_acc"] == 21 and chosen["oracle_gain_ood"] == 40
    ties = rows.assign(val_acc=50.0)
    assert select(ties).iloc[0]["val_trial"] == 0  # ties go to the defaults


def _sweep_args(tmp_path: Path, *extra: str) -> list[str]:
    root = make_tree(tmp_path / "data", VLCS, per_class=12)  # a training split of 36 >= the batch of 32
    return ["--datasets", "vlcs", "--data-root", str(root), "--image-size", "16", "--no-pretrained", "--steps", "2",
            "--results-dir", str(tmp_path / "results"), *extra]


def test_a_tiny_sweep_runs_resumes_and_writes_its_selection(tmp_path: Path, capsys):
    out = tmp_path / "tuned.json"
    args = _sweep_args(tmp_path, "--methods", "erm,sgdrop", "--trials", "2", "--tuned-out", str(out))
    assert sweep.main(args) == 0
    store = sweep_store(tmp_path / "results", QUICK)
    records = store.records("train")
    assert len(records) == 4 and {r["tuning"] for r in records} == {"sweep trial 0", "sweep trial 1"}
    frame = pd.read_csv(store.root / "sweep.csv")
    assert len(frame) == 4 and "oracle_trial" in (store.root / "sweep.md").read_text()
    document = json.loads(out.read_text())
    for method in ("erm", "sgdrop"):
        entry = document["selected"]["vlcs"][method]
        trials = frame[frame["method"] == method]
        assert entry["trial"] == int(trials.loc[trials["val_acc"].idxmax(), "trial"])
        assert {r["train_key"] for r in entry["records"]} <= {r["key"] for r in records}
    before = {p: p.stat().st_mtime_ns for p in (store.root / "runs").rglob("*.json")}
    capsys.readouterr()
    assert sweep.main(args) == 0  # resumes: every job is done, no record is rewritten
    assert "4 done, 0 to run" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in (store.root / "runs").rglob("*.json")}


@pytest.mark.parametrize(("extra", "message"), [
    (["--methods", "erm,nope", "--trials", "2"], "unknown method 'nope'"),
    (["--methods", "erm", "--trials", "0"], "--trials must be >= 1"),
    (["--methods", "erm", "--trials", "2", "--write-tuned"], "--write-tuned writes the quick profile's tuned values"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, extra: list[str], message: str):
    assert sweep.main(_sweep_args(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "results").exists()


def test_a_range_that_does_not_fit_its_parameter_is_rejected(tmp_path: Path, capsys):
    plugin = tmp_path / "bad_range.py"
    plugin.write_text(
        "from methods import Method, Range, register_method\n"
        "@register_method('bad-range', display='Bad', hparams={'rho': 0.1},\n"
        "                 search={'rho': Range(1, 5, integer=True)})\n"
        "class Bad(Method):\n"
        "    def loss(self, batch, step):\n"
        "        raise NotImplementedError\n")
    assert sweep.main(_sweep_args(tmp_path, "--plugins", str(plugin), "--methods", "erm", "--trials", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert "draws integers but rho is a float" in err and "\n" not in err
    assert "bad-range" not in METHODS


def test_train_jobs_take_the_tuned_values_and_variants_their_parents(tmp_path: Path, monkeypatch):
    rule = hyperparameter_search.SELECTION_RULE
    document = {"profile": "quick", "trials": 6, "selection": rule, "selected": {"shapes": {
        "egat": {"trial": 3, "hparams": {**method_hparams("egat", QUICK), "lambda_egl": 2.5, "lambda_adv": 0.7},
                 "loop": {"lr": 1e-3, "dropout": 0.1}, "records": []}}}}
    (tmp_path / "quick.json").write_text(json.dumps(document))
    monkeypatch.setattr(tuned, "TUNED_DIR", tmp_path)
    tuned.load_tuned.cache_clear()
    try:
        job = make_train_job(QUICK, "shapes", "studio", "egat", 0)
        assert (job.hparams["lambda_egl"], job.hparams["lambda_adv"]) == (2.5, 0.7)
        assert job.loop == {"lr": 1e-3} and job.config()["lr"] == 1e-3 and job.config()["dropout"] == 0.1
        assert job.tuning.startswith("tuned: 6-trial random search, validation selection")
        ablation = make_train_job(QUICK, "shapes", "studio", "egat-noegl", 0)
        assert ablation.hparams["lambda_egl"] == 0.0 and ablation.hparams["lambda_adv"] == 0.7  # keeps what it fixes
        assert ablation.tuning.endswith("the values selected for egat")
        untuned = make_train_job(QUICK, "shapes", "studio", "egat", 0, tuned=False)
        assert untuned.hparams == method_hparams("egat", QUICK) and untuned.loop == {}
        assert make_train_job(QUICK, "digits", "day", "egat", 0).tuning == "declared defaults (untuned)"
        assert make_train_job(QUICK, "shapes", "studio", "egat", 0, {"lambda_egl": "1.5"}).hparams["lambda_egl"] == 1.5
        with pytest.raises(UserError, match="cannot be set per job"):
            type(job)(QUICK, "shapes", "studio", "egat", 0, job.hparams, {"steps": 3})
    finally:
        tuned.load_tuned.cache_clear()


def test_the_committed_tuned_file_is_the_committed_sweeps_validation_selection():
    document = json.loads(COMMITTED_TUNED.read_text())
    assert document["trials"] >= 6 and document["selection"] == hyperparameter_search.SELECTION_RULE
    root = Path(__file__).resolve().parents[1]
    store = sweep_store(root / "results", QUICK)
    frame = pd.read_csv(store.root / "sweep.csv")
    for dataset in QUICK.datasets:
        methods = document["selected"][dataset]
        assert {"erm", "igr", "ign", "dmada", "irm", "dre", "sgdrop", "egat", "egat-advce", "at"} <= set(methods)
        for method, entry in methods.items():
            trials = frame[(frame["dataset"] == dataset) & (frame["method"] == method)]
            assert trials["trial"].nunique() == document["trials"]
            means = trials.groupby("trial")["val_acc"].mean()
            assert entry["trial"] == int(means.idxmax())
            for keys in entry["records"]:
                assert store.has("train", keys["train_key"]) and store.has("eval", keys["eval_key"])
