"""The synthetic pretraining of the small cnns: a deterministic, balanced corpus disjoint from the built-in
benchmarks' classes, pretrained once and cached, loaded into the backbone with a fresh head."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import benchmark.pretraining as pretrain_module
from benchmark.cli.pretrain import main
from benchmark.config import PROFILES
from benchmark.data.synthetic import DIGIT_CLASSES, SHAPE_CLASSES
from benchmark.models import build_model
from benchmark.pretrain_corpus import CLASSES, LETTERS, SHAPES, make_corpus, templates
from benchmark.pretraining import PretrainConfig, pretrained_backbone_state, pretrained_path, starting_backbone
from benchmark.registry import UserError

#: a pretraining of a few steps: enough to exercise the cache and the loading
TINY = PretrainConfig(steps=3, batch_size=16, lr=1e-3, classes=4, images=64, held_out=32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder, and the tiny pretraining as the default one (what `starting_backbone` asks for)."""
    monkeypatch.setenv("EGAT_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrain_module, "DEFAULT_CONFIG", TINY)
    return tmp_path


def test_corpus_is_deterministic():
    x, y = make_corpus(60, classes=6, seed=3)
    x2, y2 = make_corpus(60, classes=6, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (60, 3, 32, 32) and x.dtype == np.uint8
    assert not np.array_equal(x, make_corpus(60, classes=6, seed=4)[0])


def test_corpus_classes_are_balanced():
    _, y = make_corpus(2 * len(CLASSES), seed=0)
    assert np.bincount(y).tolist() == [2] * len(CLASSES)
    counts = np.bincount(make_corpus(50, classes=7, seed=1)[1], minlength=7)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 50


def test_corpus_classes_are_disjoint_from_the_benchmarks():
    assert 16 <= len(CLASSES) <= 24 and len(set(CLASSES)) == len(CLASSES)
    assert not set(SHAPES) & set(SHAPE_CLASSES)
    assert all(letter.isalpha() and letter.isupper() for letter in LETTERS)
    assert not set(LETTERS) & set(DIGIT_CLASSES)
    masks = templates() > 0.5
    assert masks.shape[0] == len(CLASSES) and masks.any(axis=(1, 2)).all()
    # every pair of classes differs in at least 3% of the template (the closest pair: E and F)
    differ = (masks[:, None] != masks[None]).mean(axis=(2, 3))
    assert (differ + np.eye(len(CLASSES)) > 0.03).all()


def test_too_many_classes_is_a_user_error():
    with pytest.raises(UserError, match="2 to"):
        make_corpus(10, classes=len(CLASSES) + 1)


def test_pretraining_is_cached_once(cache, monkeypatch):
    calls = []
    real = pretrain_module.pretrain
    monkeypatch.setattr(pretrain_module, "pretrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    state = pretrained_backbone_state("cnn_small", progress=False, config=TINY)
    path = pretrained_path("cnn_small", config=TINY)
    assert path.parent == cache / "pretrained" and path.name.startswith("cnn_small-") and path.is_file()
    assert calls == [1] and not any(k.startswith("fc.") for k in state)
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["config"] == TINY.as_dict() and {"train_time_s", "train_acc", "held_out_acc"} <= info.keys()
    mtime = path.stat().st_mtime_ns
    again = pretrained_backbone_state("cnn_small", progress=False, config=TINY)
    assert calls == [1] and path.stat().st_mtime_ns == mtime
    assert again.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(again[key], state[key], rtol=0, atol=0)


def test_pretraining_leaves_the_global_rng_alone(cache):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    pretrained_backbone_state("cnn_small", progress=False)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("name", ["cnn", "cnn_small"])
def test_pretrained_cnn_has_the_cached_backbone_and_a_fresh_head(cache, name):
    state = pretrained_backbone_state(name, progress=False)
    torch.manual_seed(0)
    model = build_model(name, 5, backbone_state=starting_backbone(replace(PROFILES.get("quick"), model=name)))
    torch.manual_seed(0)
    scratch = build_model(name, 5)
    for key, value in model.state_dict().items():
        if key.startswith("fc."):  # the head: the same fresh initialization as without pretraining
            torch.testing.assert_close(value, scratch.state_dict()[key], rtol=0, atol=0)
        else:
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert build_model(name, 7, backbone_state=state).fc.weight.shape == (7, model.fc.in_features)
    assert model.fc.out_features == 5


def test_pretrained_cnn_gives_the_same_logits_for_the_same_seed(cache):
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    profile = replace(PROFILES.get("quick"), model="cnn_small")
    logits = []
    for _ in range(2):
        torch.manual_seed(0)
        with torch.no_grad():
            logits.append(build_model("cnn_small", 5, backbone_state=starting_backbone(profile)).eval()(x))
    torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)


def test_only_the_small_cnns_are_pretrained_here(cache):
    with pytest.raises(UserError, match="no synthetic pretraining"):
        pretrained_backbone_state("resnet50")


def test_cli_prints_the_cached_path(cache, capsys):
    assert main(["--model", "cnn_small"]) == 0
    out = capsys.readouterr().out
    assert str(pretrained_path("cnn_small")) in out and "ready after" in out


def test_building_a_model_never_pretrains(cache, monkeypatch):
    """build_model loads the backbone state it is given; a profile from random weights starts from none."""
    monkeypatch.setattr(pretrain_module, "pretrain", lambda *a, **k: pytest.fail("build_model pretrained"))
    build_model("cnn", 5)
    assert starting_backbone(replace(PROFILES.get("quick"), pretrained=False)) is None
    assert not (cache / "pretrained").exists()
