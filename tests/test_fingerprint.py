"""Stale results: a record made by other code is recomputed by the grid and left out of the tables; comments and
docstrings alone never make a record stale."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from benchmark.config import PROFILES
from benchmark.fingerprint import fingerprint, is_current, normalize, record_is_current
from benchmark.grid import Selection, build_jobs, make_plan
from benchmark.jobs import run_eval, weights_digest
from benchmark.results import Results
from benchmark.store import Store

#: the tests' e2e profile (tests/e2e_profile.py), 3 steps and the explanation metrics on 8 images: a quicker test
PROFILE = replace(PROFILES.get("e2e"), steps=3, eval_every=3, faithfulness_images=8)

CODE = '''"""A module."""

def f(x):
    """Double x."""
    return 2 * x  # twice
'''


def test_comments_docstrings_and_blank_lines_do_not_change_the_normalized_code():
    edited = CODE.replace("Double x.", "Twice x, documented better.").replace("# twice", "# times two")
    edited = edited.replace('"""A module."""', '"""A module with\\na longer docstring."""') + "\n\n# the end\n"
    assert normalize(edited) == normalize(CODE)
    assert normalize(CODE.replace("2 * x", "3 * x")) != normalize(CODE)
    assert normalize(CODE.replace("def f(x):", "def f(y):").replace("2 * x", "2 * y")) != normalize(CODE)


def test_fingerprint_covers_what_the_roots_import():
    fp = fingerprint(["methods.egat", "egat_bench_plugin_something"])  # a plugin module is not a package root
    assert fp["roots"] == ["methods.egat"] and is_current(fp)
    assert not is_current({**fp, "digest": "0" * 16}) and not is_current(None) and not is_current({"roots": []})
    assert not is_current({**fp, "roots": ["methods.removed_module"]})


def _one_job():
    return build_jobs(Selection(profile=PROFILE, datasets=("shapes",), domains="0", methods=("erm",), seeds=(0,),
                                attacks=("fgsm",), eps=(0.02,)))


def test_grid_recomputes_stale_records_and_tables_leave_them_out(tmp_path):
    (job,) = _one_job()
    store = Store(tmp_path, PROFILE.name)
    record = run_eval(job, store, data_root=None, device="cpu", progress=False)
    assert record_is_current(record) and record["numerics"]["threads"] == 1
    assert make_plan([job], str(tmp_path)).done == [job]
    results = Results.from_records([record], PROFILE)
    assert len(results.runs) == 1 and results.stale == 0

    stale = copy.deepcopy(record)
    stale["fingerprint"]["eval"]["digest"] = "0" * 16  # as if made by other evaluation code
    store.write(stale)
    plan = make_plan([job], str(tmp_path))
    assert plan.to_evaluate == [job] and not plan.done  # the training is current: only the evaluation is redone
    hidden = Results.from_records([stale], PROFILE)
    assert hidden.runs == [] and hidden.stale == 1
    assert any(line.startswith("stale: 1 eval records") for line in hidden.header([]))
    shown = Results.from_records([stale], PROFILE, allow_stale=True)
    assert len(shown.runs) == 1 and any(line.startswith("STALE: 1 of the eval records") for line in shown.header([]))

    redone = run_eval(job, store, data_root=None, device="cpu", progress=False)
    assert record_is_current(redone) and redone["metrics"] == record["metrics"]
    train = json.loads(store.record_path("train", job.train.key).read_text())
    train["fingerprint"]["digest"] = "0" * 16  # other training code: everything is redone
    store.write(train)
    assert make_plan([job], str(tmp_path)).to_train == [job]


def test_a_finished_job_needs_its_records_not_its_checkpoint_and_other_weights_redo_its_evaluation(tmp_path):
    (job,) = _one_job()
    store = Store(tmp_path, PROFILE.name)
    record = run_eval(job, store, data_root=None, device="cpu", progress=False)
    train = store.read("train", job.train.key)
    assert record["weights_digest"] == {"model": train["weights_digest"]}
    assert train["weights_digest"] == weights_digest(store.load_checkpoint(job.train.key))

    store.checkpoint_path(job.train.key).unlink()  # a committed store: records only
    assert make_plan([job], str(tmp_path)).done == [job]

    store.write({**train, "weights_digest": "0" * 16})  # retrained elsewhere into other weights
    plan = make_plan([job], str(tmp_path))
    assert plan.to_train == [job] and not plan.done  # no checkpoint to evaluate: trained again, then evaluated
    redone = run_eval(job, store, data_root=None, device="cpu", progress=False)
    assert redone["weights_digest"] == record["weights_digest"]  # the same CPU retrains the same weights
    timing = "time_per_epoch_s"  # the retraining's, measured on this machine
    assert {k: v for k, v in redone["metrics"].items() if k != timing} == \
        {k: v for k, v in record["metrics"].items() if k != timing}
    assert make_plan([job], str(tmp_path)).done == [job]


def test_a_grid_that_retrains_into_other_weights_makes_the_earlier_grids_evaluations_stale_and_all_redoes_them(
        tmp_path, monkeypatch, capsys):
    """As in a committed store (no checkpoints) evaluated again on another CPU: the second grid retrains the model
    into other weights; the tables then leave out the first grid's evaluation of the old weights, and `reproduce`
    redoes it in a second pass."""
    from benchmark import jobs
    from benchmark.artefacts import ARTEFACTS, Artefact, Grid
    from benchmark.cli import reproduce

    grids = (Grid(methods=("erm",), domains="0", first_dataset_only=True, attacks="fgsm"),
             Grid(methods=("erm",), domains="0", first_dataset_only=True, attacks="pgd"))
    monkeypatch.setitem(ARTEFACTS._items, "twogrids", Artefact("twogrids", "table", ("erm",), lambda *a: [],
                                                                 grids=grids))
    monkeypatch.setitem(PROFILES._items, PROFILE.name, PROFILE)
    argv = ["twogrids", "--profile", PROFILE.name, "--results-dir", str(tmp_path), "--steps", "3", "--seeds", "0",
            "--launcher", "local"]
    assert reproduce.main(argv) == 0
    store = Store(tmp_path, PROFILE.name)
    [first, second] = sorted(store.records("eval"), key=lambda r: r["config"]["attacks"])  # fgsm, pgd
    assert first["weights_digest"] == second["weights_digest"]
    store.checkpoint_path(first["train_key"]).unlink()
    store.record_path("eval", second["key"]).unlink()
    monkeypatch.setattr(jobs, "weights_digest", lambda state: "b" * 16)  # the retraining's other weights
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    assert "twogrids again (a later grid retrained a model of it into other weights): --methods erm" in \
        capsys.readouterr().out
    assert {r["config"]["attacks"][0]: r["weights_digest"]["model"] for r in store.records("eval")} == \
        {"fgsm": "b" * 16, "pgd": "b" * 16}
    stale = {**store.read("eval", first["key"]), "weights_digest": first["weights_digest"]}
    assert Results.from_records([stale], PROFILE, train_weights={first["train_key"]: "b" * 16}).stale == 1
    assert Results.load(tmp_path, PROFILE.name).stale == 0
