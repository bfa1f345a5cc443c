"""A record file that is not valid JSON, lacks a required field or is another profile's never crashes a command:
render and verify name it in one line and go on without it, the grid moves it aside as NAME.corrupt and
recomputes its job. A job runs under its lock file, so two grids started at once on one store run it once."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.cli import render, verify
from benchmark.config import PROFILES
from benchmark.grid import Selection, build_jobs, make_plan
from benchmark.launchers import LAUNCHERS, LaunchOptions
from benchmark.store import REQUIRED_FIELDS, InvalidRecordError, JobLock, Store
from tests.conftest import E2E_ARGS
from tests.report_helpers import RECORDS

ROOT = Path(__file__).resolve().parents[1]
#: the tests' own small profile: a few training steps and images, no attacks (the jobs are cheap)
PROFILE = replace(PROFILES.get("e2e"), steps=3, eval_every=3, faithfulness_images=8)  # tests/e2e_profile.py


def truncate(path: Path) -> None:
    """What an interrupted copy or a full disk leaves: the first half of the file."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def rewrite(path: Path, **changes: object) -> None:
    """The record with fields changed (None: removed), as a bad merge or a hand edit leaves it."""
    record = json.loads(path.read_text())
    for name, value in changes.items():
        if value is None:
            del record[name]
        else:
            record[name] = value
    path.write_text(json.dumps(record))


def corrupt_three(folder: Path) -> list[Path]:
    """Truncate the first record file, remove `metrics` from the second, make the third the paper profile's."""
    first, second, third = sorted(folder.glob("*.json"))[:3]
    truncate(first)
    rewrite(second, metrics=None)
    rewrite(third, profile="paper")
    return [first, second, third]


def test_the_store_names_each_invalid_file_and_lists_the_rest(tmp_path):
    shutil.copytree(RECORDS / "quick", tmp_path / "quick")
    store = Store(tmp_path, "quick")
    bad = corrupt_three(store.root / "runs" / "eval")
    valid, invalid = store.scan("eval")
    assert len(valid) == len(list(RECORDS.glob("quick/runs/eval/*.json"))) - 3
    assert [err.path for err in invalid] == bad
    assert [str(err).split(": ", 1)[1].split(" (")[0] for err in invalid] == [
        "not valid JSON", "required field 'metrics' is missing or not a dict",
        "a record of profile 'paper', not 'quick' as its place in the store says"]
    assert all("\n" not in str(err) and str(err).startswith(str(path)) for err, path in zip(invalid, bad, strict=True))
    key = bad[0].stem
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        store.read("eval", key)
    assert store.get("eval", key) is None and not store.has("eval", key)
    assert store.records("eval") == valid


def test_every_required_field_is_checked(tmp_path):
    [path] = sorted((ROOT / "tests" / "fixtures" / "verify" / "quick" / "runs" / "train").glob("*.json"))
    store = Store(tmp_path, "quick")
    copy = store.record_path("train", path.stem)
    copy.parent.mkdir(parents=True)
    for name in REQUIRED_FIELDS["train"]:
        shutil.copy(path, copy)
        assert store.get("train", path.stem) is not None
        rewrite(copy, **{name: None})
        with pytest.raises(InvalidRecordError, match=f"required field '{name}'"):
            store.read("train", path.stem)
    shutil.copy(path, store.record_path("train", "0" * 16))  # a record under another job's key
    with pytest.raises(InvalidRecordError, match="a record of key"):
        store.read("train", "0" * 16)


def test_render_warns_once_per_invalid_file_and_counts_them_in_the_header(tmp_path, capsys):
    shutil.copytree(RECORDS / "quick", tmp_path / "quick")
    bad = corrupt_three(tmp_path / "quick" / "runs" / "eval")
    code = render.main(["--results-dir", str(tmp_path), "--only", "table1", "--allow-stale"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert [line.split(": ")[:2] for line in err] == [["warning", str(path)] for path in bad]
    assert all(line.endswith("; left out") for line in err)
    header = (tmp_path / "quick" / "tables" / "table1.md").read_text()
    assert "invalid: 3 record files are left out" in header


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Store, list]:
    """A finished one-job grid (ERM on shapes/studio, seed 0, no attacks) run through `local`."""
    results = tmp_path_factory.mktemp("grid")
    jobs = build_jobs(Selection(profile=PROFILE, datasets=("shapes",), domains="0", methods=("erm",), seeds=(0,),
                                attacks=(), eps=(0.0,)))
    LAUNCHERS.get("local")(jobs, LaunchOptions(str(results), None, "cpu"))
    return Store(results, PROFILE.name), jobs


@pytest.mark.parametrize("kind, damage", [
    ("eval", truncate),
    ("train", lambda path: rewrite(path, best_val_acc=None)),
    ("eval", lambda path: rewrite(path, profile="paper")),
])
def test_the_grid_moves_an_invalid_record_aside_and_recomputes_its_job(grid, tmp_path, capsys, kind, damage):
    finished, jobs = grid
    shutil.copytree(finished.root, tmp_path / PROFILE.name)
    store = Store(tmp_path, PROFILE.name)
    [job] = jobs
    key = job.key if kind == "eval" else job.train.key
    path = store.record_path(kind, key)
    before = path.read_text()
    damage(path)
    plan = make_plan(jobs, str(tmp_path))
    assert plan.done == [] and plan.pending == jobs
    capsys.readouterr()
    LAUNCHERS.get("local")(plan.pending, LaunchOptions(str(tmp_path), None, "cpu"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {path}: ")
    assert warnings[0].endswith(f"; moved aside to {path.name}.corrupt, the job runs again")
    assert path.with_name(path.name + ".corrupt").is_file() and store.get(kind, key) is not None
    def results(store: Store) -> dict:  # a retraining measures its own time per epoch
        metrics = json.loads(store.record_path("eval", job.key).read_text())["metrics"]
        return {name: value for name, value in metrics.items() if name != "time_per_epoch_s"}

    assert results(store) == results(finished)
    if kind == "train":
        assert json.loads(path.read_text())["weights_digest"] == json.loads(before)["weights_digest"]
    assert make_plan(jobs, str(tmp_path)).done == jobs
    assert not any((store.root / "runs" / "locks").iterdir())  # every lock released


def test_verify_of_an_invalid_record_is_one_error_line(grid, tmp_path, capsys):
    finished, [job] = grid
    shutil.copytree(finished.root, tmp_path / PROFILE.name)
    path = Store(tmp_path, PROFILE.name).record_path("eval", job.key)
    truncate(path)
    assert verify.main(["--profile", PROFILE.name, "--results-dir", str(tmp_path), "--jobs", job.key]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: not valid JSON")


def test_a_live_holder_is_waited_for_and_a_dead_one_taken_over(tmp_path, capsys):
    lock = tmp_path / "locks" / "eval-abc.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    lock.parent.mkdir()
    lock.write_text(f"{holder.pid} {JobLock(lock).me.split(' ', 1)[1]}\n")  # held by a live process of this host
    start = time.monotonic()
    with JobLock(lock) as taken:  # the holder ends without releasing it (as after SIGKILL): stale, taken over
        assert lock.read_text().strip() == taken.me
        waited = time.monotonic() - start
    holder.wait()
    assert waited >= 1.0 and not lock.exists()
    assert capsys.readouterr().err.splitlines() == [
        f"waiting for {lock.name}: process {holder.pid} on {taken.me.split(' ', 1)[1]} is running this job; it counts "
        "as done when that process finishes it"]


def test_a_zombie_holder_is_stale_and_another_hosts_lock_is_honoured(tmp_path):
    lock = tmp_path / "eval-abc.lock"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # ended, not reaped
        time.sleep(0.05)
    lock.write_text(f"{zombie.pid} {JobLock(lock).me.split(' ', 1)[1]}\n")
    with JobLock(lock):
        pass
    zombie.wait()
    lock.write_text("1 some-other-host\n")
    taken = threading.Event()

    def take() -> None:
        with JobLock(lock):
            taken.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    time.sleep(1.5)
    assert not taken.is_set()
    lock.unlink()  # its holder releases it
    waiter.join(timeout=10)
    assert taken.is_set()


COUNTING_METHOD = '''
"""ERM that appends its process id to a file each time it is built: once per training (and per timing probe)."""
import os

from methods import register_method
from methods.erm import ERM


@register_method("erm-counted", display="ERM (counted)", hparams={})
class CountedERM(ERM):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with open(COUNTER, "a") as out:
            out.write(f"{os.getpid()}\\n")
'''


def test_two_grids_at_once_train_each_job_once(tmp_path):
    """Both grids plan the same two jobs as pending and run them through one worker process each: every training
    (a build of the method in a worker: the grids' own processes build it only for their timing probe) happens
    once, and both grids end with every job done."""
    counter = tmp_path / "trainings.txt"
    plugin = tmp_path / "counted.py"
    plugin.write_text(f"COUNTER = {str(counter)!r}\n" + COUNTING_METHOD)
    args = [sys.executable, "-m", "benchmark.run", "--methods", "erm-counted", "--datasets", "shapes", "--domains",
            "studio", "--seeds", "0,1", "--attacks", "none", "--steps", "20", "--no-pretrained", "--launcher",
            "processes", "--workers", "1", "--plugins", f"{plugin},{E2E_ARGS[1]}", "--profile", "e2e",
            "--results-dir", str(tmp_path / "r")]
    grids = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    outputs = [grid.communicate(timeout=600) for grid in grids]
    for grid, (out, err) in zip(grids, outputs, strict=True):
        assert grid.returncode == 0, err
        assert len(re.findall(r"erm-counted shapes/studio seed \d: cAcc", out)) == 2, out  # summary: both done
    builds = counter.read_text().split()
    trainings = [pid for pid in builds if int(pid) not in {grid.pid for grid in grids}]
    assert len(trainings) == 2, builds
    store = Store(tmp_path / "r", "e2e")
    assert len(store.records("train")) == 2 and len(store.records("eval")) == 2
    assert not any((store.root / "runs" / "locks").iterdir())
