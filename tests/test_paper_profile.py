"""The paper profile's wiring, end to end on a tiny generated VLCS tree: ResNet-50 with (fake) ImageNet
weights from the local torch cache, folder data, training, evaluation, and tables beside the paper's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from benchmark.cli import render
from benchmark.data.folders import VLCS
from tests.test_folders import make_tree


def test_paper_profile_runs_resnet50_on_a_vlcs_layout(tmp_path, capsys):
    from torchvision.models import ResNet50_Weights, resnet50

    data = make_tree(tmp_path / "data", VLCS, per_class=14)
    weights = tmp_path / "torch" / "hub" / "checkpoints" / Path(ResNet50_Weights.DEFAULT.url).name
    weights.parent.mkdir(parents=True)
    torch.save(resnet50().state_dict(), weights)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "benchmark.run", "--profile", "paper", "--datasets", "vlcs", "--domains", "Caltech101",
         "--data-root", str(data), "--steps", "2", "--image-size", "48", "--attacks", "pgd",
         "--eps", "0.02", "--device", "cpu", "--seeds", "0", "--results-dir", str(results), "--launcher", "local"],
        capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    (record_path,) = (results / "paper" / "runs" / "eval").glob("*.json")
    record = json.loads(record_path.read_text())
    train = record["config"]["train"]
    assert (record["profile"], record["dataset"], record["train_domain"]) == ("paper", "vlcs", "Caltech101")
    assert (train["model"], train["pretrained"], train["image_size"], train["batch_size"], train["lr"]) == (
        "resnet50", True, 48, 32, 1e-4)
    assert set(record["metrics"]["ood_cAcc"]) == {"LabelMe", "SUN09", "VOC2007"}
    assert set(record["metrics"]["aAcc"]["pgd"]) == {"0.02"}
    assert "VLCS" in record["data"]

    # rendered in this process: a second subprocess would only add seconds of importing torch (render's
    # command line is tested in test_tables), and rendering needs none of the TORCH_HOME setup above
    code = render.main(["--profile", "paper", "--results-dir", str(results), "--only", "table1"])
    assert code == 0, capsys.readouterr().err
    table = (results / "paper" / "tables" / "table1.md").read_text()
    assert "paper" in table.lower() and "98.68" in table, "ours beside the published ERM Caltech101 cAcc"
