"""The benchmark cards: the committed cards meet every validity band, and a card is re-made identically (on a
reduced run: three training steps, one seed, so the test stays short)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import dataset_card
from benchmark.cli import cards

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "results" / "cards"


@pytest.mark.parametrize("dataset", ["shapes", "digits"])
def test_committed_card_meets_every_band(dataset):
    path = CARDS / f"{dataset}.json"
    committed = json.loads(path.read_text())
    assert committed["generator_version"] == dataset_card.synthetic.GENERATOR_VERSION, "the card of another generator"
    failing = [b for b in committed["bands"] if not b["pass"]]
    assert not failing, failing
    # the bands' verdicts follow from their values (nobody edited a verdict by hand)
    rules = {name: test for name, _, _, test in dataset_card.BANDS}
    assert all(rules[b["band"]](b["value"]) == b["pass"] for b in committed["bands"])
    assert (CARDS / f"{dataset}.md").read_text() == dataset_card.card_markdown(committed) and not committed["partial"]
    assert all(row["test"]["images"] >= 1000 for row in committed["domains"])


def test_card_is_remade_identically(tmp_path, capsys):
    """As `./reproduce.sh cards` re-makes the committed cards from their committed store: the data statistics
    and the object-only models are recomputed, quick ERM's finished jobs are read back."""
    import shutil

    args = ["--dataset", "shapes", "--steps", "3", "--seeds", "0", "--domains", "2", "--no-pretrained", "--out"]
    assert cards.main([*args, str(tmp_path / "a")]) == 0
    shutil.copytree(tmp_path / "a" / "store", tmp_path / "b" / "store")
    assert cards.main([*args, str(tmp_path / "b")]) == 0
    for name in ("shapes.json", "shapes.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    made = json.loads((tmp_path / "a" / "shapes.json").read_text())
    assert [row["domain"] for row in made["domains"]] == ["scene"] and made["partial"]
    assert made["domains"][0]["stress"] and made["models"]["steps"] == 3
    assert {b["band"] for b in made["bands"]} == {name for name, *_ in dataset_card.BANDS}


def test_card_of_a_folder_dataset_is_a_clear_error(tmp_path, capsys):
    assert cards.main(["--dataset", "vlcs", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: cards are made for the built-in benchmarks")
