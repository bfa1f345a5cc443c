"""The command line. Bad input exits 2 with one line on stderr.

Each subprocess costs seconds of importing torch, so only two tests start a real `python -m benchmark.run`:
the end-to-end train/evaluate run (its resumption runs in this process) and one bad-input run (exit code 2 and one
stderr line, with the CLI's own warnings formatter). The other cases call `benchmark.cli.run.main(argv)` in this
process, with warnings shown on stderr through the CLI's one-line formatter and the filters of a fresh interpreter."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from attacks import ATTACKS
from benchmark.arguments import one_line_warning
from benchmark.cli import run
from benchmark.config import PROFILES
from benchmark.plugins import load_file
from tests.conftest import E2E_ARGS

RUN = [sys.executable, "-m", "benchmark.run"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def _show_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(one_line_warning(message, category, filename, lineno, line))


@pytest.fixture
def run_main(capsys) -> Callable[..., subprocess.CompletedProcess]:
    """`run_cli` in this process: main(argv)'s exit code and its captured stdout and stderr. Warnings reach
    stderr as they would from `python -m benchmark.run` (fresh-interpreter filters, one line each), and the
    python, numpy and torch RNGs are restored afterwards (a probe or a training seeds them)."""

    def call(*args: str) -> subprocess.CompletedProcess:
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        capsys.readouterr()  # drop anything printed before the call
        try:
            with warnings.catch_warnings():
                warnings.resetwarnings()
                for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                    warnings.simplefilter("ignore", category)
                warnings.showwarning = _show_one_line
                code = run.main(list(args))
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["benchmark.run", *args], code, out.out, out.err)

    return call


def test_list_prints_every_registry(run_main):
    out = run_main("--list")
    assert out.returncode == 0
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert set(lines) == {"methods", "attacks", "attack lists", "explainers", "datasets", "models", "launchers",
                          "profiles", "settings", "metrics"}
    assert lines["settings"].startswith("quick (the profile itself (the reference)); short-attack (AT and the EGAT")
    assert lines["attack lists"].startswith(
        "all (every attack above, plugins' included), paper (fgsm, mifgsm, pgd, sca), none (alone)")
    assert "erm" in lines["methods"] and "pgd" in lines["attacks"] and "gradcam" in lines["explainers"]
    assert lines["datasets"].startswith("shapes, digits")
    aa = PROFILES.get("quick").attack_settings["aa"]
    assert (f"aa (cost 140x PGD-10; quick profile: {aa.cost:g}x, {aa.robust_cost:g}x on a model trained on PGD "
            f"(n_queries 100; first 500 test images); e2e profile: ") in lines[
        "attacks"]  # e2e: the tests' profile (tests/e2e_profile.py), registered in the test process
    assert "pgd (cost 1x PGD-10)" in lines["attacks"] and "square (cost 200x PGD-10; quick profile: 4.9x" in lines[
        "attacks"]
    assert "Suff (Suff; -100..100, lower is better; at Suff, no cost of its own; in table1 table4 table5)" in lines[
        "metrics"]
    assert ("AA (AA; 0..100, higher is better; aa's accuracy at the table eps; in table1 table4 table5 fig5; "
            f"cost 140x PGD-10; quick profile: {aa.cost:g}x") in lines["metrics"]


def test_attacks_all_is_every_registered_attack_and_paper_the_papers_four(tmp_path):
    """`all` takes a plugin's attack, `paper` never does; both combine with names, each attack once."""
    plugin = tmp_path / "noise.py"
    plugin.write_text("from attacks import register_attack\n\n@register_attack('noise', display='noise', cost=0.1)\n"
                      "def noise(model, x, y, eps, *, generator=None):\n    return x\n")
    origin = load_file(plugin)
    try:
        def attacks(text: str) -> tuple[str, ...]:
            return run.selection_from_args(run.parser().parse_args(["--attacks", text])).attacks

        assert attacks("paper") == ("fgsm", "mifgsm", "pgd", "sca")
        assert attacks("all") == ("fgsm", "mifgsm", "pgd", "sca", "apgd-ce", "apgd-t", "square", "aa", "noise")
        assert attacks("aa,paper,pgd") == ("aa", "fgsm", "mifgsm", "pgd", "sca")
        assert attacks("none") == ()
    finally:
        ATTACKS.forget(origin)


def test_erm_trains_evaluates_writes_records_and_resumes(tmp_path, run_main, monkeypatch):
    """Through the default launcher (processes), under the tests' e2e profile. Also: with stdout and stderr going
    to a file (a log), one line for the finished job and a summary, and no carriage-return progress redraws
    (test_launchers: several jobs); and its records alone, as a fresh clone has them in the default results folder,
    plan as done."""
    args = (*E2E_ARGS, "--methods", "erm", "--datasets", "shapes", "--domains", "0", "--seeds", "0", "--attacks",
            "none", "--steps", "20", "--no-pretrained", "--results-dir", str(tmp_path / "results"))
    log = tmp_path / "grid.log"
    with log.open("w") as out:
        code = subprocess.run([*RUN, *args], stdout=out, stderr=subprocess.STDOUT, timeout=600).returncode
    text = log.read_text()
    assert code == 0, text
    assert "1 to train and evaluate" in text and re.search(r"on \d+ workers? \(processes\)", text) and "\r" not in text
    assert [line.split(" in ")[0] for line in text.splitlines() if line.startswith("job ")] == [
        "job 1/1 done: erm shapes/studio seed 0"] and "progress: 1/1 jobs done" in text
    tmp_path = tmp_path / "results"
    runs = tmp_path / "e2e" / "runs"
    (eval_path,) = (runs / "eval").glob("*.json")
    (train_path,) = (runs / "train").glob("*.json")
    record = json.loads(eval_path.read_text())
    for field in ("key", "kind", "train_key", "profile", "dataset", "train_domain", "method", "seed", "config",
                  "versions", "machine"):
        assert field in record, field
    assert (record["kind"], record["dataset"], record["train_domain"], record["method"]) == (
        "eval", "shapes", "studio", "erm")
    assert (record["profile"], record["config"]["ood_images"]) == ("e2e", 200)  # the plugin's profile, in the worker
    metrics = record["metrics"]
    assert set(metrics) >= {"cAcc", "ood_cAcc", "aAcc", "Comp", "Suff", "time_per_epoch_s"}
    assert set(metrics["ood_cAcc"]) == {"street", "scene", "photo"}
    assert 0 <= metrics["cAcc"] <= 100 and metrics["aAcc"] == {}
    assert json.loads(train_path.read_text())["key"] == record["train_key"]
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}

    second = run_main(*args)  # the resumption in this process: the grid above was the real one
    assert second.returncode == 0, second.stderr
    assert "1 done" in second.stdout and "all jobs are done" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps, "nothing rewritten"

    clone = tmp_path.parent / "clone"
    shutil.copytree(runs, clone / "results" / "e2e" / "runs")  # the records, not the checkpoints (not committed)
    monkeypatch.chdir(clone)
    committed = run_main(*args[:-2])  # the default --results-dir
    assert committed.returncode == 0, committed.stderr
    assert "1 done, 0 to train and evaluate, 0 to evaluate" in committed.stdout
    assert "1 of 1 jobs are already in results/e2e/ (the committed records" in committed.stdout
    assert "all jobs are done" in committed.stdout and not (clone / "results" / "e2e" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--methods", "nope"), "unknown method 'nope'; valid choices: erm"),
        (("--datasets", "imagenet"), "unknown dataset 'imagenet'; valid choices: shapes, digits"),
        (("--datasets", "shapes", "--domains", "moon"), "unknown domain 'moon' of shapes; valid choices: studio"),
        (("--attacks", "cw"), "unknown attack 'cw'; valid choices: fgsm, mifgsm, pgd, sca, apgd-ce, apgd-t, square, "
                              "aa, all, paper, none"),
        (("--attacks", "paper,cw"), "unknown attack 'cw'; valid choices: fgsm"),
        (("--attacks", ","), "empty attack list; valid choices: fgsm"),
        (("--eps", "0,abc"), "malformed eps 'abc'"),
        (("--eps", "-0.1"), "eps -0.1 is outside [0, 1]"),
        (("--profile", "huge"), "unknown profile 'huge'; valid choices: quick, paper, e2e"),
        (("--launcher", "k8s"), "unknown launcher 'k8s'; valid choices: local"),
        (("--seeds", "x"), "malformed seeds 'x'"),
        (("--hparams", "erm.x=1"), "unknown hyperparameter 'x' for method erm; valid choices: none"),
        (("--hparams", "lambda=1"), "malformed hyperparameter 'lambda=1': expected METHOD.KEY=VALUE"),
        (("--model", "vgg"), "unknown model 'vgg'; valid choices: cnn"),
        (("--setting", "huge"), "unknown setting 'huge'; valid choices: quick, short-attack, budget, resnet"),
        (("--workers", "0"), "--workers must be >= 1, got 0"),
        (("--workers", "-2"), "--workers must be >= 1, got -2"),
        (("--workers", "999"), "--workers 999 is more than the"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, run_main, args, expected):
    out = run_main(*args, "--results-dir", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and expected in out.stderr, out.stderr
    assert not any(tmp_path.iterdir()), "nothing written"


def test_bad_input_exits_2_with_one_line_from_a_real_process(tmp_path):
    out = run_cli("--methods", "nope", "--results-dir", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "unknown method 'nope'; valid choices: erm" in out.stderr, out.stderr
    assert not any(tmp_path.iterdir()), "nothing written"


def test_missing_data_folder_exits_2_naming_the_path(tmp_path, run_main):
    missing = tmp_path / "nowhere"
    out = run_main("--datasets", "vlcs", "--data-root", str(missing), "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and str(missing) in out.stderr, out.stderr
    assert not (tmp_path / "r").exists()


def test_corrupt_image_exits_2_naming_the_file(tmp_path, run_main):
    from benchmark.data.folders import VLCS
    from tests.test_folders import make_tree

    root = make_tree(tmp_path / "data", VLCS, per_class=14)
    bad = sorted((root / "VLCS" / "Caltech101" / "bird").iterdir())
    for path in bad:
        path.write_bytes(b"not an image")
    out = run_main("--datasets", "vlcs", "--domains", "Caltech101", "--data-root", str(tmp_path / "data"),
                  "--attacks", "none", "--steps", "3", "--no-pretrained", "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()  # count warnings and a progress bar come before the error
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]], out.stderr
    assert "Caltech101/bird" in lines[-1] and "cannot read image" in lines[-1], lines[-1]
    assert not list((tmp_path / "r").rglob("*.json")), "no record of the failed job"


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, run_main):
    out = run_main("--methods", "erm", "--datasets", "shapes,digits", "--seeds", "0,1", "--dry-run",
                  "--results-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("plan: 16 jobs (quick profile): 0 done, 16 to train and evaluate")
    assert "(erm timed by a 3-step probe: no finished job of theirs yet)" in out.stdout
    minutes = float(out.stdout.split("estimated ")[1].split(" min")[0])
    assert minutes > 0  # 16 trainings of 400 steps cannot be free
    assert not any(tmp_path.iterdir())
