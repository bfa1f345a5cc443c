"""The training loop: determinism, best-validation selection, NaN guard; and the results store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.data import load_benchmark
from benchmark.models import build_model
from benchmark.registry import UserError
from benchmark.store import Store, atomic_write_bytes, content_key
from benchmark.train import accuracy, seed_everything, train
from methods import METHODS, Method
from tests.report_helpers import eval_record


def _train_erm(seed: int, steps: int = 12):
    domain = load_benchmark("shapes").domains[0]
    seed_everything(seed)
    model = build_model("cnn", 5, dropout=0.1)
    result = train(METHODS.get("erm")(model, {}), domain.train, domain.val, steps=steps, batch_size=16, lr=1e-3,
                   eval_every=4, seed=seed, progress=False)
    return model, result


def test_same_seed_gives_identical_weights():
    (a, _), (b, _), (c, _) = _train_erm(0), _train_erm(0), _train_erm(1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.fc.weight, c.fc.weight)


_TRAIN_BEFORE_AND_AFTER_KEEP_FREED_MEMORY = """
import torch
from benchmark.numerics import keep_freed_memory
from tests.test_train import _train_erm
torch.set_num_threads(1)
before, _ = _train_erm(0, steps=4)  # glibc's default allocator: this process never set it
first, second = keep_freed_memory(), keep_freed_memory()
after, _ = _train_erm(0, steps=4)
same = all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True))
print(first, second, same)
"""


def test_keep_freed_memory_is_idempotent_and_changes_no_weight():
    """The allocator setting every job runs under (benchmark/numerics.py) against glibc's default, in a fresh
    process (this one has set it already): the same weights bit for bit."""
    out = subprocess.run([sys.executable, "-c", _TRAIN_BEFORE_AND_AFTER_KEEP_FREED_MEMORY], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    first, second, same = out.stdout.split()
    assert first == second  # True on glibc; False (a no-op) elsewhere
    assert same == "True"


def test_best_state_is_the_best_validation_checkpoint():
    model, result = _train_erm(0)
    assert [p["step"] for p in result.curve] == [4, 8, 12]
    best = max(reversed(result.curve), key=lambda p: p["val_acc"])  # ties: the later checkpoint
    assert (result.best_step, result.best_val_acc) == (best["step"], best["val_acc"])
    model.load_state_dict(result.best_state)
    assert accuracy(model, load_benchmark("shapes").domains[0].val) == pytest.approx(result.best_val_acc)
    assert result.step_time_s > 0 and result.time_per_epoch_s == pytest.approx(
        result.step_time_s * result.steps_per_epoch)


class _Diverging(Method):
    def loss(self, batch, step):
        return self.model(batch["x"]).sum() * float("nan"), {}


def test_nan_loss_stops_training_with_a_clear_error():
    domain = load_benchmark("shapes").domains[0]
    with pytest.raises(UserError, match="loss is nan at step 1"):
        train(_Diverging(build_model("cnn", 5), {}), domain.train, domain.val, steps=3, batch_size=8, lr=1e-3,
              eval_every=1, seed=0, progress=False)


def test_store_writes_records_atomically_and_reads_them_back(tmp_path):
    store = Store(tmp_path, "quick")
    record = {**eval_record("shapes", "studio", "erm", cacc=50.0, key=content_key({"a": 1})), "eval_time_s": 1.0}
    path = store.write(record)
    assert store.has("eval", record["key"]) and json.loads(path.read_text()) == record
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary files left behind"
    assert store.frame("eval")["metrics.cAcc"].tolist() == [50.0]


def test_interrupted_write_leaves_no_record(tmp_path):

    target = tmp_path / "runs" / "eval" / "k.json"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_checkpoints_round_trip_with_weights_only(tmp_path):
    store = Store(tmp_path, "quick")
    state = build_model("cnn", 5).state_dict()
    store.save_checkpoint("k", state)
    loaded = store.load_checkpoint("k")
    assert all(torch.equal(state[k], loaded[k]) for k in state)


def test_content_key_is_order_independent_and_sensitive():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
