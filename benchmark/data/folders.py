"""VLCS and TerraIncognita read from image folders in DomainBed's layout (the paper's two benchmarks).

Nothing is downloaded here: point `--data-root DIR` at a folder laid out as

    DIR/VLCS/{Caltech101,LabelMe,SUN09,VOC2007}/{bird,car,chair,dog,person}/*.jpg
    DIR/terra_incognita/location_{100,38,43,46}/{bird,bobcat,cat,coyote,dog,empty,opossum,rabbit,
                                                 raccoon,squirrel}/*.jpg

Where to get the data:
- DomainBed's `python -m domainbed.scripts.download --data_dir DIR` writes exactly this layout
  (needs `gdown`; its `__main__` only runs the TerraIncognita download, enable the others by hand).
- VLCS: the DomainBed Google-Drive archive (id 1skwblH1_okBwxWxmRsp9_qi15hyPpxg8, `VLCS.tar.gz`),
  extracted into DIR. Drive links rot; the original page was
  http://www.eecs.qmul.ac.uk/~dl307/project_iccv2017.
- TerraIncognita: the Caltech Camera Traps CCT20 benchmark subset from LILA
  (http://lila.science/datasets/caltech-camera-traps: `eccv_18_all_images_sm.tar.gz` and
  `eccv_18_annotations.tar.gz`), converted to `location_<id>/<category>/<file>` for locations
  100, 38, 43, 46 and the 10 classes above, as DomainBed's download script does.

Domains are resolved by explicit name -> folder, never by folder sort order (DomainBed's indices shift
when a stray folder appears). Class lists are checked exactly and per-domain image counts are compared
with the published ones (a mismatch is a warning). Images are served unaugmented and unnormalized
(models normalize inside): Resize((S, S)) then ToTensor, S = 224 unless `image_size` says otherwise.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageFile
from torch import Tensor
from torch.utils.data import Dataset

from benchmark.data.base import DATASETS, Benchmark, DatasetSpec, make_domain
from benchmark.registry import UserError

# As in DomainBed: decode truncated JPEGs (missing tail filled with gray) instead of failing, so the
# same files load as there. Files that are not decodable images still raise a UserError.
ImageFile.LOAD_TRUNCATED_IMAGES = True

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
DEFAULT_IMAGE_SIZE = 224
#: bump when a change here changes the images, labels or splits a folder dataset yields
FOLDER_LOADER_VERSION = 1


class DatasetCountWarning(UserWarning):
    """A domain's image count differs from the published one: results may not match the paper's."""


@dataclass(frozen=True)
class FolderLayout:
    """A DomainBed-layout dataset: its folder under the data root, domains and classes.

    `domains` holds (user-facing name, folder name, published image count) in benchmark order.
    """

    name: str
    folder: str
    domains: tuple[tuple[str, str, int], ...]
    classes: tuple[str, ...]

    def pattern(self, root: Path | str = "DIR") -> str:
        """The expected layout as one line, e.g. `DIR/VLCS/{Caltech101,...}/{bird,...}/*`."""
        folders = ",".join(folder for _, folder, _ in self.domains)
        return f"{root}/{self.folder}/{{{folders}}}/{{{','.join(self.classes)}}}/*"


VLCS = FolderLayout(
    name="vlcs",
    folder="VLCS",
    domains=(
        ("Caltech101", "Caltech101", 1415),
        ("LabelMe", "LabelMe", 2656),
        ("SUN09", "SUN09", 3282),
        ("VOC2007", "VOC2007", 3376),
    ),
    classes=("bird", "car", "chair", "dog", "person"),
)

# Paper-era counts (24,788 images, khanrc/miro#9); a fresh LILA download gives 24,330.
TERRA_INCOGNITA = FolderLayout(
    name="terra_incognita",
    folder="terra_incognita",
    domains=(
        ("L100", "location_100", 4879),
        ("L38", "location_38", 9767),
        ("L43", "location_43", 4020),
        ("L46", "location_46", 6122),
    ),
    classes=("bird", "bobcat", "cat", "coyote", "dog", "empty", "opossum", "rabbit", "raccoon", "squirrel"),
)


class ImageFolderDomain(Dataset):
    """The images of one domain as (path, label) pairs, decoded on access.

    Items are `{"x": 3xSxS float in [0,1], "y": long, "domain": long}`; undecodable files raise a
    UserError naming the file.
    """

    def __init__(self, samples: list[tuple[Path, int]], domain: int, image_size: int) -> None:
        from torchvision import transforms  # here: the built-in benchmarks (and the tests) never load torchvision

        self.samples = samples
        self.domain = domain
        self.transform = transforms.Compose(
            [transforms.Resize((image_size, image_size)), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        path, label = self.samples[i]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            reason = " ".join(str(exc).split())
            raise UserError(f"cannot read image {path}: {reason}; replace or delete the file") from None
        return {
            "x": self.transform(rgb),
            "y": torch.tensor(label, dtype=torch.long),
            "domain": torch.tensor(self.domain, dtype=torch.long),
        }


def _visible_entries(folder: Path) -> list[os.DirEntry]:
    """Entries of a folder, hidden ones (`.DS_Store`, `.ipynb_checkpoints`) left out, sorted by name."""
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def scan_domain(layout: FolderLayout, domain_dir: Path) -> list[tuple[Path, int]]:
    """(path, label) pairs of one domain folder, sorted by class then file name.

    The class folders must be exactly `layout.classes` and none may be empty; only regular files with
    an image extension count (other files are ignored).
    """
    expected = f"expected {layout.pattern()}"
    found = {e.name for e in _visible_entries(domain_dir) if e.is_dir()}
    missing = [c for c in layout.classes if c not in found]
    extra = sorted(found - set(layout.classes))
    if missing or extra:
        problems = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in (("missing", missing), ("extra", extra)) if names
        )
        raise UserError(f"{layout.name}: wrong class folders in {domain_dir} ({problems}); {expected}")
    samples = []
    for label, cls in enumerate(layout.classes):
        class_dir = domain_dir / cls
        images = [
            Path(e.path)
            for e in _visible_entries(class_dir)
            if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
        ]
        if not images:
            raise UserError(
                f"{layout.name}: no images (.jpg .jpeg .png .bmp) in class folder {class_dir}; {expected}"
            )
        samples.extend((path, label) for path in images)
    return samples


def _dataset_root(layout: FolderLayout, data_root: str | Path | None) -> Path:
    """`DATA_ROOT/<layout.folder>`, or a UserError saying what is missing and what is expected."""
    expected = f"expected {layout.pattern()}"
    if data_root is None:
        raise UserError(
            f"--data-root is required for {layout.name}: the folder that holds {layout.folder}/; {expected}"
        )
    data_root = Path(data_root).expanduser()
    if not data_root.is_dir():
        raise UserError(f"--data-root {data_root} is not a folder; {expected}")
    root = data_root / layout.folder
    if not root.is_dir():
        hint = ""
        if (data_root / layout.domains[0][1]).is_dir():
            hint = f" (--data-root should be the parent folder {data_root.parent})"
        raise UserError(f"{layout.name}: folder {root} not found{hint}; {expected}")
    return root


def load_folders(layout: FolderLayout, *, data_root: str | Path | None, image_size: int | None) -> Benchmark:
    """Scan and check a DomainBed-layout dataset and split each domain 60/20/20 (fixed seed)."""
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if size < 1:
        raise UserError(f"image size must be a positive number of pixels, got {size}")
    root = _dataset_root(layout, data_root)
    domains = []
    for index, (name, folder, published) in enumerate(layout.domains):
        domain_dir = root / folder
        if not domain_dir.is_dir():
            raise UserError(
                f"{layout.name}: domain folder {domain_dir} (domain {name}) not found; "
                f"expected {layout.pattern()}"
            )
        samples = scan_domain(layout, domain_dir)
        if len(samples) != published:
            warnings.warn(
                f"{layout.name} domain {name} ({domain_dir}): found {len(samples)} images, "
                f"expected {published} (published count); results may not be comparable with the paper",
                DatasetCountWarning,
                stacklevel=2,
            )
        domains.append(make_domain(name, ImageFolderDomain(samples, index, size)))
    mapping = ", ".join(f"{name}={folder}" for name, folder, _ in layout.domains)
    description = (
        f"{layout.folder} images from {root} in DomainBed's layout {layout.pattern(root.parent)} "
        f"(domains {mapping}); unaugmented Resize({size}x{size}) + ToTensor"
    )
    return Benchmark(
        layout.name, layout.classes, tuple(domains), size, has_masks=False, description=description
    )


def load_vlcs(*, data_root: str | Path | None, image_size: int | None) -> Benchmark:
    """VLCS from `data_root/VLCS/` (DomainBed download script or its Google-Drive `VLCS.tar.gz`)."""
    return load_folders(VLCS, data_root=data_root, image_size=image_size)


def load_terra_incognita(*, data_root: str | Path | None, image_size: int | None) -> Benchmark:
    """TerraIncognita from `data_root/terra_incognita/` (CCT20 subset from LILA, DomainBed layout)."""
    return load_folders(TERRA_INCOGNITA, data_root=data_root, image_size=image_size)


DATASETS.add(
    "vlcs",
    DatasetSpec(
        load=load_vlcs,
        domain_names=tuple(name for name, _, _ in VLCS.domains),
        builtin=False,
        summary="VLCS (5 classes, 4 domains, 10,729 photos); needs --data-root with DomainBed's VLCS/ folder",
        version=FOLDER_LOADER_VERSION,
    ),
)
DATASETS.add(
    "terra_incognita",
    DatasetSpec(
        load=load_terra_incognita,
        domain_names=tuple(name for name, _, _ in TERRA_INCOGNITA.domains),
        builtin=False,
        summary="TerraIncognita (10 classes, 4 camera-trap locations, 24,788 photos); "
        "needs --data-root with DomainBed's terra_incognita/ folder",
        version=FOLDER_LOADER_VERSION,
    ),
)
