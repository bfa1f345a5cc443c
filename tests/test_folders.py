"""DomainBed-layout folder datasets (VLCS, TerraIncognita) on tiny generated folder trees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from benchmark.data import load_benchmark
from benchmark.data.folders import TERRA_INCOGNITA, VLCS, DatasetCountWarning, FolderLayout
from benchmark.registry import UserError

# Tiny trees never match the published counts; the warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore::benchmark.data.folders.DatasetCountWarning")


def make_tree(data_root: Path, layout: FolderLayout, per_class: int = 3) -> Path:
    """Write `per_class` 8x8 PNGs per class and domain; the color encodes (domain, class)."""
    for d, (_, folder, _) in enumerate(layout.domains):
        for c, cls in enumerate(layout.classes):
            class_dir = data_root / layout.folder / folder / cls
            class_dir.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (8, 8), (40 * d, 20 * c, 50 * i)).save(class_dir / f"img{i}.png")
    return data_root


@pytest.fixture
def vlcs_root(tmp_path: Path) -> Path:
    return make_tree(tmp_path, VLCS)


def assert_one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message


def test_vlcs_loads_with_classes_domains_and_items(vlcs_root: Path) -> None:
    bench = load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    assert bench.classes == ("bird", "car", "chair", "dog", "person")
    assert bench.domain_names() == ["Caltech101", "LabelMe", "SUN09", "VOC2007"]
    assert bench.image_size == 16 and not bench.has_masks
    assert str(vlcs_root / "VLCS") in bench.description
    item = bench.domain("SUN09").full[4]  # sorted by class then file: chair's index is 2, 4 // 3 = 1
    assert set(item) == {"x", "y", "domain"}
    assert item["x"].shape == (3, 16, 16) and item["x"].dtype == torch.float32
    assert item["x"].min() >= 0.0 and item["x"].max() <= 1.0
    assert item["y"].dtype == torch.long and item["y"].shape == () and item["y"].item() == 1
    assert item["domain"].dtype == torch.long and item["domain"].item() == 2
    # Color (40*d, 20*c, 50*i) of domain 2, class 1, image 1, unnormalized.
    expected = torch.tensor([80, 20, 50]) / 255.0
    assert torch.allclose(item["x"][:, 8, 8], expected, atol=1 / 255)


def test_default_image_size_is_224(vlcs_root: Path) -> None:
    bench = load_benchmark("vlcs", data_root=vlcs_root)
    assert bench.image_size == 224
    assert bench.domains[0].full[0]["x"].shape == (3, 224, 224)


def test_split_is_60_20_20_and_stable_across_loads(vlcs_root: Path) -> None:
    first = load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    second = load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    for a, b in zip(first.domains, second.domains, strict=True):
        assert (len(a.train), len(a.val), len(a.test), len(a.full)) == (9, 3, 3, 15)
        assert sorted(a.train.indices + a.val.indices + a.test.indices) == list(range(15))
        for split in ("train", "val", "test"):
            assert getattr(a, split).indices == getattr(b, split).indices
        assert a.full.samples == b.full.samples


def test_terra_domains_map_explicitly_not_by_folder_order(tmp_path: Path) -> None:
    make_tree(tmp_path, TERRA_INCOGNITA, per_class=2)
    stray = tmp_path / "terra_incognita" / "aaa_stray" / "bird"
    stray.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(stray / "x.png")
    bench = load_benchmark("terra_incognita", data_root=tmp_path, image_size=16)
    assert bench.domain_names() == ["L100", "L38", "L43", "L46"]
    assert len(bench.classes) == 10 and bench.classes[5] == "empty"
    l100 = bench.domain("L100")
    assert {path.parent.parent.name for path, _ in l100.full.samples} == {"location_100"}
    assert l100.full[0]["domain"].item() == 0
    assert (len(l100.train), len(l100.val), len(l100.test)) == (12, 4, 4)
    assert {path.parent.parent.name for path, _ in bench.domain("L46").full.samples} == {"location_46"}


def test_only_visible_image_files_count(vlcs_root: Path) -> None:
    class_dir = vlcs_root / "VLCS" / "LabelMe" / "dog"
    (class_dir / "notes.txt").write_text("not an image")
    (class_dir / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(class_dir / "UPPER.JPG")
    (vlcs_root / "VLCS" / "LabelMe" / ".ipynb_checkpoints").mkdir()
    bench = load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    names = [path.name for path, label in bench.domain("LabelMe").full.samples if label == 3]
    assert names == ["UPPER.JPG", "img0.png", "img1.png", "img2.png"]


def test_count_mismatch_warns_with_found_and_expected(vlcs_root: Path) -> None:
    with pytest.warns(DatasetCountWarning) as record:
        load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    messages = [str(w.message) for w in record if issubclass(w.category, DatasetCountWarning)]
    assert len(messages) == 4
    assert "Caltech101" in messages[0] and "found 15" in messages[0] and "expected 1415" in messages[0]


def test_missing_data_root_argument() -> None:
    with pytest.raises(UserError, match="--data-root is required for vlcs") as exc:
        load_benchmark("vlcs", data_root=None, image_size=16)
    assert "\n" not in str(exc.value) and "VLCS/{Caltech101" in str(exc.value)


def test_data_root_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(UserError) as exc:
        load_benchmark("vlcs", data_root=tmp_path / "nowhere", image_size=16)
    assert_one_line_naming(exc, tmp_path / "nowhere")


def test_missing_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError) as exc:
        load_benchmark("terra_incognita", data_root=tmp_path, image_size=16)
    assert_one_line_naming(exc, tmp_path / "terra_incognita")
    assert "{location_100,location_38,location_43,location_46}" in str(exc.value)


def test_data_root_pointing_inside_the_dataset_folder_gets_a_hint(vlcs_root: Path) -> None:
    with pytest.raises(UserError, match="should be the parent folder") as exc:
        load_benchmark("vlcs", data_root=vlcs_root / "VLCS", image_size=16)
    assert_one_line_naming(exc, vlcs_root / "VLCS" / "VLCS")


def test_missing_domain_folder(vlcs_root: Path) -> None:
    domain_dir = vlcs_root / "VLCS" / "SUN09"
    domain_dir.rename(vlcs_root / "VLCS" / "sun09")
    with pytest.raises(UserError, match="SUN09") as exc:
        load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    assert_one_line_naming(exc, domain_dir)


def test_missing_class_folder(vlcs_root: Path) -> None:
    class_dir = vlcs_root / "VLCS" / "VOC2007" / "chair"
    for file in class_dir.iterdir():
        file.unlink()
    class_dir.rmdir()
    with pytest.raises(UserError, match="missing: chair") as exc:
        load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    assert_one_line_naming(exc, class_dir.parent)


def test_extra_class_folder(vlcs_root: Path) -> None:
    (vlcs_root / "VLCS" / "LabelMe" / "horse").mkdir()
    with pytest.raises(UserError, match="extra: horse") as exc:
        load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    assert_one_line_naming(exc, vlcs_root / "VLCS" / "LabelMe")


def test_empty_class_folder(vlcs_root: Path) -> None:
    class_dir = vlcs_root / "VLCS" / "Caltech101" / "person"
    for file in class_dir.iterdir():
        file.unlink()
    (class_dir / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="no images") as exc:
        load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    assert_one_line_naming(exc, class_dir)


def test_corrupt_image_raises_naming_the_file(vlcs_root: Path) -> None:
    bad = vlcs_root / "VLCS" / "Caltech101" / "bird" / "img1.png"
    bad.write_bytes(b"this is not a png\n" * 4)
    bench = load_benchmark("vlcs", data_root=vlcs_root, image_size=16)
    full = bench.domain("Caltech101").full
    index = [path for path, _ in full.samples].index(bad)
    full[index - 1]  # the neighbours still load
    with pytest.raises(UserError, match="cannot read image") as exc:
        full[index]
    assert_one_line_naming(exc, bad)


def test_bad_image_size(vlcs_root: Path) -> None:
    with pytest.raises(UserError, match="image size"):
        load_benchmark("vlcs", data_root=vlcs_root, image_size=0)
