"""Launchers give the same records as `local`; an interrupted grid resumes without redoing work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmark.config import PROFILES
from benchmark.grid import Selection, build_jobs, make_plan
from benchmark.launchers import LAUNCHERS, LaunchOptions
from benchmark.store import Store
from tests.conftest import E2E_ARGS

#: the tests' e2e profile (from random weights, evaluated on fewer images: tests/e2e_profile.py), 10 steps
PROFILE = replace(PROFILES.get("e2e"), steps=10, eval_every=5)


def tiny_grid() -> list:
    selection = Selection(profile=PROFILE, datasets=("shapes",), domains="0,1", methods=("erm",), seeds=(0,),
                          attacks=("fgsm",), eps=(0.02,))
    return build_jobs(selection)


def metrics_by_key(results_dir) -> dict:
    """Every eval record's metrics except the measured training time (it differs run to run), with the numeric
    settings and the code fingerprint it records, and its training's best step and validation accuracy."""
    store = Store(results_dir, PROFILE.name)
    found = {}
    for r in store.records("eval"):
        train = store.read("train", r["train_key"])
        found[r["key"]] = {"metrics": {k: v for k, v in r["metrics"].items() if k != "time_per_epoch_s"},
                           "numerics": r["numerics"], "fingerprint": r["fingerprint"],
                           "train": (train["best_step"], train["best_val_acc"], train["curve"], train["numerics"])}
    return found


@pytest.fixture(scope="module")
def local_metrics(tmp_path_factory):
    """The grid through `local` in this process, with torch's threads set to 2 as a user's default would be:
    the job itself fixes its numerics (benchmark/numerics.py), and restores this process's threads."""
    results = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        LAUNCHERS.get("local")(tiny_grid(), LaunchOptions(str(results), None, "cpu"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    metrics = metrics_by_key(results)
    assert len(metrics) == 2 and all(m["numerics"]["threads"] == 1 for m in metrics.values())
    return metrics


@pytest.mark.parametrize(
    "launcher, options",
    [
        ("processes", {"workers": 2}),
        ("ray", {"workers": 2}),
        ("slurm", {"slurm_local": True}),
    ],
)
def test_engines_reproduce_local_metrics(tmp_path, local_metrics, launcher, options):
    LAUNCHERS.get(launcher)(tiny_grid(), LaunchOptions(str(tmp_path), None, "cpu", **options))
    assert metrics_by_key(tmp_path) == local_metrics


def test_slurm_without_a_cluster_is_a_clear_error(tmp_path, monkeypatch):
    from benchmark.registry import UserError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="no Slurm"):
        LAUNCHERS.get("slurm")(tiny_grid(), LaunchOptions(str(tmp_path), None, "cpu"))


def test_sigkilled_grid_resumes_without_redoing_finished_jobs(tmp_path):
    """Also: the resumed run logs to a file (not a terminal): one line per job it finishes, no bar redraws."""
    args = [sys.executable, "-m", "benchmark.run", *E2E_ARGS, "--methods", "erm", "--datasets", "shapes", "--domains",
            "0,1,2", "--attacks", "none", "--steps", "20", "--seeds", "0", "--no-pretrained", "--results-dir",
            str(tmp_path / "r")]
    tmp_path = tmp_path / "r"
    evals = tmp_path / "e2e" / "runs" / "eval"
    grid = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (evals.is_dir() and any(evals.glob("*.json"))):
        assert grid.poll() is None, "the grid ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(grid.pid, signal.SIGKILL)
    grid.wait()

    finished = {p: p.stat().st_mtime_ns for p in evals.glob("*.json")}
    assert 1 <= len(finished) < 3
    for path in finished:
        json.loads(path.read_text())  # complete, valid records only

    log = tmp_path.parent / "rerun.log"
    with log.open("w") as out:
        code = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=600).returncode
    text = log.read_text()
    assert code == 0, text
    assert f"{len(finished)} done" in text and "\r" not in text
    left = 3 - len(finished)
    assert [line.split(":")[0] for line in text.splitlines() if line.startswith("job ")] == [
        f"job {k}/{left} done" for k in range(1, left + 1)] and f"progress: {left}/{left} jobs done" in text
    for path, stamp in finished.items():
        assert path.stat().st_mtime_ns == stamp, "a finished job was redone"
    records = Store(tmp_path, "e2e").records("eval")
    assert len(records) == 3 and len({r["key"] for r in records}) == 3
    assert {r["train_domain"] for r in records} == {"studio", "street", "scene"}
    jobs = build_jobs(Selection(profile=replace(PROFILES.get("e2e"), steps=20, eval_every=20),
                                datasets=("shapes",), domains="0,1,2", methods=("erm",), seeds=(0,), attacks=(),
                                eps=PROFILES.get("e2e").eps_grid))
    assert len(make_plan(jobs, str(tmp_path)).done) == 3


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cpu_seconds(pid: int) -> float:
    """User CPU seconds a process has used (Linux /proc)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11]) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_end_when_the_grid_process_is_killed(tmp_path):
    """SIGKILL to the grid's process alone (a scheduler, `kill -9 PID`), not to its group: its workers stop too,
    instead of computing their queued jobs as orphans."""
    args = [sys.executable, "-m", "benchmark.run", "--methods", "erm", "--datasets", "shapes", "--domains", "0,1,2",
            "--attacks", "none", "--steps", "5000", "--seeds", "0", "--no-pretrained", "--launcher", "processes",
            "--workers", "2", "--results-dir", str(tmp_path)]
    grid = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2:  # the pool's two workers (beside the resource tracker)
            assert grid.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
            workers = [pid for pid in _children(grid.pid)
                       if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        while min(map(_cpu_seconds, workers)) < 8:  # past their imports: inside a job
            assert grid.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        os.kill(grid.pid, signal.SIGKILL)
        grid.wait()
        deadline = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(_alive, workers)), "orphaned workers kept running"
    finally:
        os.killpg(grid.pid, signal.SIGKILL)
