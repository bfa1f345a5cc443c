"""benchmark.verify re-runs recorded jobs from scratch: identical records pass, a hand-edited metric is named,
bad input is one error line."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark import verification
from benchmark.cli import verify
from benchmark.config import PROFILES
from benchmark.grid import Selection, build_jobs
from benchmark.jobs import machine, run_eval
from benchmark.store import Store

#: the test's own small profile (the tests' e2e profile, tests/e2e_profile.py, with 3 training steps and 8 images for
#: Comp / Suff): the check is exact, the job cheap
PROFILE = replace(PROFILES.get("e2e"), steps=3, eval_every=3, faithfulness_images=8)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    results = tmp_path_factory.mktemp("verify")
    jobs = build_jobs(Selection(profile=PROFILE, datasets=("shapes",), domains="0,1", methods=("erm",), seeds=(0,),
                                attacks=("fgsm",), eps=(0.02,)))
    store = Store(results, PROFILE.name)
    for job in jobs:
        run_eval(job, store, data_root=None, device="cpu", progress=False)
    return store


def test_verify_reproduces_a_fresh_store(store, capsys):
    assert verify.main(["--profile", PROFILE.name, "--results-dir", str(store.root.parent), "--sample", "2"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 of 2 identical"


def test_verify_names_a_metric_edited_by_hand(store, tmp_path, capsys):
    import shutil

    shutil.copytree(store.root, tmp_path / PROFILE.name)
    path = sorted((tmp_path / PROFILE.name / "runs" / "eval").glob("*.json"))[0]
    record = json.loads(path.read_text())
    record["metrics"]["aAcc"]["fgsm"]["0.02"] += 0.25
    path.write_text(json.dumps(record))
    code = verify.main(["--profile", PROFILE.name, "--results-dir", str(tmp_path), "--jobs", record["key"]])
    out = capsys.readouterr().out
    assert code == 1 and "0 of 1 identical" in out
    assert f"aAcc.fgsm.0.02: recorded {record['metrics']['aAcc']['fgsm']['0.02']!r}" in out


@pytest.mark.parametrize("args, expected", [
    (["--sample", "0"], "error: --sample must be >= 1, got 0"),
    (["--jobs", "nope"], "error: unknown job key 'nope'; valid choices: "),
    (["--rtol", "-1"], "error: --rtol must be in [0, 1), got -1"),
])
def test_bad_input_is_one_error_line(store, capsys, args, expected):
    assert verify.main(["--profile", PROFILE.name, "--results-dir", str(store.root.parent), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected)


def test_empty_store_is_an_error_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmark.verify", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: no eval records under {tmp_path / 'quick' / 'runs' / 'eval'}; nothing to verify"]


def test_verify_a_committed_job():
    """tests/fixtures/verify holds one cheap job's records, committed (regenerate them, when a change is meant to
    alter numbers, with: python -m benchmark.run --methods erm --datasets shapes --domains studio --seeds 0
    --steps 3 --no-pretrained --attacks fgsm --eps 0.02 --results-dir tests/fixtures/verify). Bit-identical on
    a CPU of the capability it was made on; on another, equal within 1e-4 (three steps of other kernels' rounding:
    measured ~1e-5 between an earlier machine and an AVX2 one)."""
    committed = ROOT / "tests" / "fixtures" / "verify"
    [record] = Store(committed, "quick").records("eval")
    rtol = [] if verification.other_cpu(record) is None else ["--rtol", "1e-4"]
    assert verify.main(["--results-dir", str(committed), "--sample", "1", *rtol]) == 0


def test_rtol_accepts_rounding_and_names_the_rest():
    recorded = {"metrics": {"cAcc": 91.25, "Comp": 1.4994696307182311, "aAcc": {"pgd": {"0.02": 10.0}}}}
    now = {"metrics": {"cAcc": 91.25, "Comp": 1.4994842302799225, "aAcc": {"pgd": {"0.02": 10.25}}}}
    assert [d.split(":")[0] for d in verification.differences(recorded, None, now, {})] == ["Comp", "aAcc.pgd.0.02"]
    assert [d.split(":")[0] for d in verification.differences(recorded, None, now, {}, rtol=1e-4)] == ["aAcc.pgd.0.02"]


def test_the_weights_digest_is_compared_exactly_and_without_rtol_not_at_all():
    same = {"metrics": {"cAcc": 91.25}}
    train = {"best_step": 40, "best_val_acc": 90.0, "weights_digest": "a" * 16}
    retrained = {**train, "weights_digest": "b" * 16}
    assert [d.split(":")[0] for d in verification.differences(same, train, same, retrained)] == ["train.weights_digest"]
    assert verification.differences(same, train, same, retrained, rtol=1e-4) == []  # the numbers decide, within rtol
    older = {k: v for k, v in train.items() if k != "weights_digest"}  # a record from before digests
    assert verification.differences(same, older, same, retrained) == []


def test_a_record_of_another_cpu_capability_is_named():
    here = machine()
    assert verification.other_cpu({"machine": here}) is None
    other = "AVX512" if here["cpu_capability"] != "AVX512" else "AVX2"
    assert verification.other_cpu({"machine": {"cpu": "Some CPU", "cpu_capability": other}}).startswith(
        f"made on CPU capability {other} (Some CPU), verified on {here['cpu_capability']}")
    assert "a CPU it does not record" in verification.other_cpu({})
