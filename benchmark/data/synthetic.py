"""Built-in 4-domain benchmarks, generated procedurally in seconds (no download).

Each 3x32x32 image is an object on a domain-specific background, with its exact object mask (the
"golden" guide). Each domain also tints the background with a spurious colour that agrees with the
class with probability SPURIOUS_P, through a class -> colour mapping that differs between domains.
In-domain the tint is a shortcut; on another domain it points to the wrong class, so out-of-domain
accuracy separates object-based from background-based models (the paper's x = (x_obj, x_bg)).

- `shapes` (5 classes, like VLCS): geometric shapes; domains studio, street, scene, photo.
- `digits` (10 classes, like TerraIncognita): scikit-learn's bundled handwritten digits, each glyph
  used by one domain only; domains day, night, fog, clutter.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmark.data.base import DATASETS, ArrayDataset, Benchmark, DatasetSpec, cache_dir, make_domain
from benchmark.registry import UserError

SIZE = 32
IMAGES_PER_DOMAIN = 2000
SPURIOUS_P = 0.8
#: How strongly the spurious colour tints the background. On `digits` (v1) a 0.25 tint was a shortcut that
#: eps 0.02 cannot flip, so quick ERM, which learns little but the tint there, looked robust; 0.12 PGD can flip.
TINT_STRENGTH = {"shapes": 0.25, "digits": 0.12}
GENERATOR_VERSION = 2
DEFAULT_SEED = 0

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring")
SHAPE_DOMAINS = ("studio", "street", "scene", "photo")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
DIGIT_DOMAINS = ("day", "night", "fog", "clutter")


def _hues(n: int) -> np.ndarray:
    """n saturated, evenly spaced colours (n, 3) in [0, 1]."""
    h = np.arange(n) / n
    k = (np.array([5.0, 3.0, 1.0])[None] + h[:, None] * 6) % 6
    return 1 - np.clip(np.minimum(k, 4 - k), 0, 1)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    return xs[None], ys[None]


def _tints(labels: np.ndarray, domain: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Spurious background colour per image: the domain's colour of the class with prob SPURIOUS_P."""
    palette = _hues(n_classes)
    # A cyclic shift spread over the hue circle: every domain maps every class to a different colour,
    # at least two hue steps apart for 10 classes so that similar hues do not carry the cue across.
    mapped = (labels + domain * n_classes // 4) % n_classes
    random = rng.integers(0, n_classes, len(labels))
    keep = rng.random(len(labels)) < SPURIOUS_P
    return palette[np.where(keep, mapped, random)]


def _flat(level: np.ndarray) -> np.ndarray:
    """A full-size grey image per sample (n, 3, S, S) from per-sample levels (n, 1, 1)."""
    return np.broadcast_to(level[:, None], (len(level), 3, SIZE, SIZE)).astype(np.float64)


def _background(style: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Domain-specific backgrounds (n, 3, S, S) in [0, 1]: texture, lighting, contrast, clutter."""
    xs, ys = _grid()
    shape = (n, 1, 1)
    if style in ("studio", "day"):
        base = rng.uniform(0.65, 0.85, shape) + 0.15 * (ys / SIZE - 0.5)
        img = np.repeat(base[:, None], 3, 1) + rng.normal(0, 0.02, (n, 3, SIZE, SIZE))
    elif style == "street":
        angle = rng.uniform(0, np.pi, shape)
        freq = rng.uniform(0.5, 1.0, shape)
        stripes = np.sign(np.sin(freq * (xs * np.cos(angle) + ys * np.sin(angle))))
        img = np.repeat((0.5 + 0.1 * stripes)[:, None], 3, 1) + rng.normal(0, 0.05, (n, 3, SIZE, SIZE))
    elif style == "scene":
        img = _flat(rng.uniform(0.4, 0.6, shape))
        for _ in range(5):
            cx, cy = rng.uniform(0, SIZE, shape), rng.uniform(0, SIZE, shape)
            blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * rng.uniform(3, 7, shape) ** 2))
            img += 0.5 * blob[:, None] * (rng.uniform(0, 1, (n, 3, 1, 1)) - 0.5)
        img += rng.normal(0, 0.03, img.shape)
    elif style in ("photo", "night"):
        level = 0.55 if style == "photo" else 0.2
        cx, cy = rng.uniform(8, 24, shape), rng.uniform(8, 24, shape)
        light = level + 0.25 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 200)
        img = np.repeat(light[:, None], 3, 1) + rng.normal(0, 0.06, (n, 3, SIZE, SIZE))
    elif style == "fog":
        img = np.repeat(rng.uniform(0.5, 0.7, shape)[:, None], 3, 1) + rng.normal(0, 0.03, (n, 3, SIZE, SIZE))
    elif style == "clutter":
        img = _flat(rng.uniform(0.35, 0.65, shape))
        for _ in range(6):
            angle = rng.uniform(0, np.pi, shape)
            offset = rng.uniform(-16, 16, shape)
            dist = np.abs((xs - 16) * np.sin(angle) - (ys - 16) * np.cos(angle) - offset)
            img += 0.35 * (dist < 0.8)[:, None] * (rng.uniform(0, 1, (n, 3, 1, 1)) - 0.5)
        img += rng.normal(0, 0.03, img.shape)
    else:
        raise ValueError(f"no background style {style!r}")
    return img


def _shape_alpha(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binary masks (n, S, S) of randomly placed, scaled and rotated shapes of the given classes."""
    n = len(labels)
    xs, ys = _grid()
    r = rng.uniform(6.5, 10.0, (n, 1, 1))
    cx, cy = rng.uniform(r[:, 0, 0] + 1, SIZE - r[:, 0, 0] - 1)[:, None, None], rng.uniform(
        r[:, 0, 0] + 1, SIZE - r[:, 0, 0] - 1)[:, None, None]
    theta = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    u = (xs - cx) * np.cos(theta) + (ys - cy) * np.sin(theta)
    v = -(xs - cx) * np.sin(theta) + (ys - cy) * np.cos(theta)
    d = np.sqrt(u**2 + v**2)
    triangle = np.ones_like(d, dtype=bool)
    for k in range(3):
        a = theta + 2 * np.pi * k / 3
        triangle &= ((xs - cx) * np.cos(a) + (ys - cy) * np.sin(a)) < 0.5 * r
    masks = {
        0: d < r * 0.9,
        1: np.maximum(np.abs(u), np.abs(v)) < r * 0.75,
        2: triangle,
        3: ((np.abs(u) < r * 0.3) & (np.abs(v) < r)) | ((np.abs(v) < r * 0.3) & (np.abs(u) < r)),
        4: (d < r) & (d > r * 0.55),
    }
    return np.select([labels[:, None, None] == c for c in masks], list(masks.values()), False)


def _digit_alpha(glyphs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binary masks (n, S, S) of 8x8 digit glyphs upscaled (bilinear) and placed at random."""
    n = len(glyphs)
    out = np.zeros((n, SIZE, SIZE), dtype=bool)
    sizes = rng.integers(20, 29, n)
    for i in range(n):
        s = int(sizes[i])
        img = torch.nn.functional.interpolate(
            torch.as_tensor(glyphs[i], dtype=torch.float32)[None, None] / 16.0, size=(s, s),
            mode="bilinear", align_corners=False)[0, 0].numpy()
        top, left = rng.integers(0, SIZE - s + 1, 2)
        out[i, top : top + s, left : left + s] = img > 0.2  # strokes about 3 px wide
    return out


def _compose(bg: np.ndarray, alpha: np.ndarray, colors: np.ndarray, tints: np.ndarray, tint_strength: float,
             contrast: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tint the background, paint the object, quantize to uint8; the mask is where the object is.

    Returns uint8 `images`, bool `masks` and the uint8 `backgrounds` the objects were painted on.
    """
    n = len(bg)
    bg = (1 - tint_strength) * bg + tint_strength * tints[:, :, None, None]
    xs, ys = _grid()
    shading = 1 + 0.15 * ((xs - 16) / 16 * rng.uniform(-1, 1, (n, 1, 1)))[:, None]
    obj = colors[:, :, None, None] * shading
    obj = contrast * obj + (1 - contrast) * bg
    mask = alpha[:, None]
    bg8 = np.clip(np.round(bg * 255), 0, 255).astype(np.uint8)
    obj8 = np.clip(np.round(obj * 255), 0, 255).astype(np.uint8)
    # Keep the mask exact: an object pixel that happens to equal the background is nudged by one level.
    same = (obj8 == bg8).all(1, keepdims=True) & mask
    obj8 = np.where(same & (obj8[:, :1] < 255), obj8 + np.array([1, 0, 0], np.uint8)[:, None, None],
                    np.where(same, obj8 - np.array([1, 0, 0], np.uint8)[:, None, None], obj8))
    return {"images": np.where(mask, obj8, bg8), "masks": mask, "backgrounds": bg8}


def _object_colors(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Object colours (n, 3), independent of the class, dark on light backgrounds and light on dark ones."""
    n = len(bg)
    hue = _hues(12)[rng.integers(0, 12, n)]
    light = bg.mean(axis=(1, 2, 3)) < 0.5
    level = np.where(light, rng.uniform(0.75, 1.0, n), rng.uniform(0.05, 0.35, n))[:, None]
    return np.clip(level * (0.6 + 0.4 * hue) + np.where(light, 0.1, 0.0)[:, None], 0, 1)


CONTRAST = {"studio": 1.0, "street": 0.9, "scene": 0.9, "photo": 0.75, "day": 1.0, "night": 0.85, "fog": 0.6,
            "clutter": 0.9}


def generate_shapes(domain: int, seed: int = DEFAULT_SEED, n: int = IMAGES_PER_DOMAIN) -> dict[str, np.ndarray]:
    """One `shapes` domain: uint8 images (n,3,S,S), labels (n,), bool masks (n,1,S,S), backgrounds."""
    rng = np.random.default_rng([seed, 1, domain])
    style = SHAPE_DOMAINS[domain]
    labels = rng.integers(0, len(SHAPE_CLASSES), n)
    bg = _background(style, n, rng)
    alpha = _shape_alpha(labels, rng)
    tints = _tints(labels, domain, len(SHAPE_CLASSES), rng)
    colors = _object_colors(bg, rng)
    return {"labels": labels, **_compose(bg, alpha, colors, tints, TINT_STRENGTH["shapes"], CONTRAST[style], rng)}


def digit_glyph_split(seed: int = DEFAULT_SEED) -> list[np.ndarray]:
    """Indices into scikit-learn's digits, split per class into 4 disjoint sets, one per domain."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    rng = np.random.default_rng([seed, 2])
    parts: list[list[int]] = [[] for _ in DIGIT_DOMAINS]
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(target == c))
        for d, chunk in enumerate(np.array_split(idx, len(DIGIT_DOMAINS))):
            parts[d].extend(chunk.tolist())
    return [np.sort(np.array(p)) for p in parts]


def generate_digits(domain: int, seed: int = DEFAULT_SEED, n: int = IMAGES_PER_DOMAIN) -> dict[str, np.ndarray]:
    """One `digits` domain (same arrays as `generate_shapes` plus `glyph_ids`), drawing only this domain's glyphs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    own = digit_glyph_split(seed)[domain]
    rng = np.random.default_rng([seed, 3, domain])
    style = DIGIT_DOMAINS[domain]
    labels = rng.integers(0, 10, n)
    glyph_ids = np.array([rng.choice(own[digits.target[own] == c]) for c in labels])
    bg = _background(style, n, rng)
    alpha = _digit_alpha(digits.images[glyph_ids], rng)
    tints = _tints(labels, domain, 10, rng)
    return {"labels": labels, "glyph_ids": glyph_ids,
            **_compose(bg, alpha, _object_colors(bg, rng), tints, TINT_STRENGTH["digits"], CONTRAST[style], rng)}


def _cached(name: str, generate: Callable[[int], dict[str, np.ndarray]], domain: int) -> dict[str, np.ndarray]:
    """Generate once and cache as .npz (keyed by name, generator version and source hash)."""
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = cache_dir() / f"{name}-d{domain}-v{GENERATOR_VERSION}-{source}.npz"
    if path.is_file():
        with np.load(path) as data:
            return dict(data)
    arrays = {k: v for k, v in generate(domain).items() if k in ("images", "labels", "masks")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def _loader(name: str, classes: tuple[str, ...], domains: tuple[str, ...],
            generate: Callable[[int], dict[str, np.ndarray]], summary: str) -> Callable[..., Benchmark]:
    def load(*, data_root: str | Path | None = None, image_size: int | None = None) -> Benchmark:
        del data_root  # built-in: generated, never read from disk folders
        if image_size not in (None, SIZE):
            raise UserError(f"{name} is generated at {SIZE}x{SIZE}; --image-size {image_size} does not apply")
        built = []
        for d, domain_name in enumerate(domains):
            arrays = _cached(name, generate, d)
            dataset = ArrayDataset(torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"]).long(),
                                   d, torch.from_numpy(arrays["masks"]))
            built.append(make_domain(domain_name, dataset))
        return Benchmark(name, classes, tuple(built), SIZE, True,
                         f"built-in synthetic benchmark '{name}' (generator v{GENERATOR_VERSION}, "
                         f"{IMAGES_PER_DOMAIN} images/domain, spurious tint p={SPURIOUS_P})")

    DATASETS.add(name, DatasetSpec(load, domains, True, summary, GENERATOR_VERSION))
    return load


load_shapes = _loader("shapes", SHAPE_CLASSES, SHAPE_DOMAINS, generate_shapes,
                      "built-in: 5 shape classes on 4 background domains (like VLCS)")
load_digits = _loader("digits", DIGIT_CLASSES, DIGIT_DOMAINS, generate_digits,
                      "built-in: 10 handwritten-digit classes, disjoint glyphs per domain (like TerraIncognita)")
