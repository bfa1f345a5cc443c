"""Built-in 4-domain benchmarks, generated procedurally in seconds (no download), generator v3.

Each 3x32x32 image is an opaque object on a domain-specific background, with its exact object mask
(the "golden" guide). The paper's Assumption 3, x = (x_obj, x_bg), holds exactly: a spurious colour
tints the background pixels only (never the object's), agreeing with the class at the rate of the
image's environment (ENV_AGREEMENT: two environments per domain), through a class -> colour mapping
that differs between domains. In-domain the tint is a shortcut; on another domain it points to a
wrong class, so out-of-domain accuracy separates object-based from background-based models, and
each image's cue-free twin (the same object and background, tinted independently of the class)
measures reliance on the object directly.

The object's colour is independent of the class and of the background's colour; it is brighter
than its surroundings with probability BRIGHTER_P (0.8), so the grey-level guide of EGAT is a noisy,
positively correlated proxy for the object, as the paper assumes of photographs; in each dataset's
stress domain (STRESS_DOMAINS) objects are iso-luminant with their surroundings and the guide says
nothing about the object. The benchmark card (benchmark/dataset_card.py) measures all of this.

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
from benchmark.store import locked

SIZE = 32
#: 3000 / 1000 / 1000 train / val / test images per domain: the binomial SE at 85% is 1.1 points on the test split
IMAGES_PER_DOMAIN = 5000
#: Two training environments per domain (Colored-MNIST style): the spurious cue agrees with the class at these
#: rates; half of each domain's images belong to each. IRM and DM-ADA use them; every other method sees the union.
ENV_AGREEMENT = (0.9, 0.8)
#: How strongly the spurious colour tints the background (only the background: object pixels never carry it).
TINT_STRENGTH = {"shapes": 0.35, "digits": 0.3}
#: Probability that an object is brighter than its surroundings, per domain style, so that the grey guide is a
#: noisy, positively correlated proxy for the object; the stress domain of each dataset (scene, clutter) has
#: iso-luminant objects instead (None): there the grey guide carries no information about the object.
BRIGHTER_P = {"studio": 0.8, "street": 0.8, "scene": None, "photo": 0.8, "day": 0.8, "night": 0.8, "fog": 0.8,
              "clutter": None}
#: How far (in grey levels) an object's luminance lies from its surroundings' mean, per domain style (fog: low)
OBJECT_CONTRAST = {"studio": (0.15, 0.3), "street": (0.12, 0.25), "scene": (0.0, 0.0), "photo": (0.12, 0.25),
                   "day": (0.3, 0.45), "night": (0.3, 0.45), "fog": (0.15, 0.25), "clutter": (0.0, 0.0)}
STRESS_DOMAINS = ("scene", "clutter")
#: the shapes' radius range in pixels
SHAPE_RADIUS = (4.0, 7.0)
GENERATOR_VERSION = 3
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


def cue_shift(domain: int, n_classes: int) -> int:
    """How far a domain shifts the class -> cue colour mapping around the hue circle: every domain maps every
    class to a different colour, at least two hue steps apart for 10 classes so that similar hues do not carry
    the cue across domains. The cue of class c in domain d is colour (c + cue_shift(d, K)) % K."""
    return domain * n_classes // 4


def _tint_classes(labels: np.ndarray, domain: int, n_classes: int, envs: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The class whose colour tints each background: the domain's colour of the true class with the image's
    environment's agreement rate, else a random class; and an independent random class for the cue-free twin."""
    mapped = (labels + cue_shift(domain, n_classes)) % n_classes
    random = rng.integers(0, n_classes, len(labels))
    keep = rng.random(len(labels)) < np.asarray(ENV_AGREEMENT)[envs]
    return np.where(keep, mapped, random), rng.integers(0, n_classes, len(labels))


def _flat(level: np.ndarray) -> np.ndarray:
    """A full-size grey image per sample (n, 3, S, S) from per-sample levels (n, 1, 1)."""
    return np.broadcast_to(level[:, None], (len(level), 3, SIZE, SIZE)).astype(np.float64)


def _background(style: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Domain-specific backgrounds (n, 3, S, S) in [0, 1]: texture, lighting and clutter at mid grey levels, so
    that objects can be brighter or darker than their surroundings."""
    xs, ys = _grid()
    shape = (n, 1, 1)
    if style in ("studio", "day"):
        base = rng.uniform(0.35, 0.55, shape) + 0.1 * (ys / SIZE - 0.5)
        img = np.repeat(base[:, None], 3, 1) + rng.normal(0, 0.02, (n, 3, SIZE, SIZE))
    elif style == "street":
        angle = rng.uniform(0, np.pi, shape)
        freq = rng.uniform(0.5, 1.0, shape)
        stripes = np.sign(np.sin(freq * (xs * np.cos(angle) + ys * np.sin(angle))))
        img = np.repeat((0.45 + 0.08 * stripes)[:, None], 3, 1) + rng.normal(0, 0.04, (n, 3, SIZE, SIZE))
    elif style == "scene":
        img = _flat(rng.uniform(0.35, 0.55, shape))
        for _ in range(5):
            cx, cy = rng.uniform(0, SIZE, shape), rng.uniform(0, SIZE, shape)
            blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * rng.uniform(3, 7, shape) ** 2))
            img += 0.4 * blob[:, None] * (rng.uniform(0, 1, (n, 3, 1, 1)) - 0.5)
        img += rng.normal(0, 0.03, img.shape)
    elif style in ("photo", "night"):
        level = 0.35 if style == "photo" else 0.2
        cx, cy = rng.uniform(8, 24, shape), rng.uniform(8, 24, shape)
        light = level + 0.2 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 200)
        img = np.repeat(light[:, None], 3, 1) + rng.normal(0, 0.05, (n, 3, SIZE, SIZE))
    elif style == "fog":
        img = np.repeat(rng.uniform(0.4, 0.6, shape)[:, None], 3, 1) + rng.normal(0, 0.03, (n, 3, SIZE, SIZE))
    elif style == "clutter":
        img = _flat(rng.uniform(0.35, 0.55, shape))
        for _ in range(6):
            angle = rng.uniform(0, np.pi, shape)
            offset = rng.uniform(-16, 16, shape)
            dist = np.abs((xs - 16) * np.sin(angle) - (ys - 16) * np.cos(angle) - offset)
            img += 0.3 * (dist < 0.8)[:, None] * (rng.uniform(0, 1, (n, 3, 1, 1)) - 0.5)
        img += rng.normal(0, 0.03, img.shape)
    else:
        raise ValueError(f"no background style {style!r}")
    return np.clip(img, 0, 1)


def _shape_alpha(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binary masks (n, S, S) of randomly placed, scaled and rotated shapes of the given classes."""
    n = len(labels)
    xs, ys = _grid()
    r = rng.uniform(*SHAPE_RADIUS, (n, 1, 1))
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


def luma(x: np.ndarray) -> np.ndarray:
    """Grey levels (n, S, S) of images (n, 3, S, S), ITU-R 601 weights (the `gray` guide's)."""
    return np.tensordot(np.array([0.299, 0.587, 0.114]), x, axes=([0], [1]))


def _object_colors(bg: np.ndarray, alpha: np.ndarray, style: str, tint_strength: float, palette_luma: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Object colours (n, 3), independent of the class and of the background's colour: a random hue around a
    luminance above (probability BRIGHTER_P[style]) or below its surroundings' by OBJECT_CONTRAST[style];
    iso-luminant with them in the stress domains. The surroundings' luminance is the background's under the
    object, tinted towards the palette's mean luminance: the tint itself varies with the cue, and the object
    must not (it is identical in an image and its cue-free twin)."""
    n = len(bg)
    under = (luma(bg) * alpha).sum(axis=(1, 2)) / alpha.sum(axis=(1, 2)).clip(min=1)
    under = (1 - tint_strength) * under + tint_strength * palette_luma
    low, high = OBJECT_CONTRAST[style]
    p = BRIGHTER_P[style]
    sign = 0.0 if p is None else np.where(rng.random(n) < p, 1.0, -1.0)
    level = np.clip(under + sign * rng.uniform(low, high, n) if p is not None else under, 0.05, 0.95)
    hue = _hues(12)[rng.integers(0, 12, n)]
    chroma = hue - luma(hue[:, :, None, None])[:, 0, 0][:, None]  # zero-luminance colour offset
    return np.clip(level[:, None] + 0.35 * chroma, 0, 1)


def _compose(bg: np.ndarray, alpha: np.ndarray, colors: np.ndarray, tint_colours: np.ndarray,
             free_colours: np.ndarray, tint_strength: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tint the background (only it), paint the opaque object, quantize to uint8; the mask is the object.

    Returns uint8 `images`, their `cue_free` twins (the same objects and backgrounds, tinted with a colour
    independent of the class), bool `masks` and the uint8 tinted `backgrounds` the objects were painted on.
    """
    n = len(bg)
    xs, _ = _grid()
    shading = 1 + 0.1 * ((xs - 16) / 16 * rng.uniform(-1, 1, (n, 1, 1)))[:, None]
    obj8 = np.clip(np.round(colors[:, :, None, None] * shading * 255), 0, 255).astype(np.uint8)
    mask = alpha[:, None]
    backgrounds = [np.clip(np.round(((1 - tint_strength) * bg + tint_strength * c[:, :, None, None]) * 255), 0, 255)
                   .astype(np.uint8) for c in (tint_colours, free_colours)]
    # Keep the mask exact in both versions: an object pixel equal to either background is nudged by one level
    # (up, or down where up would meet a background), the same pixel in both, so the object stays identical.
    red = np.array([1, 0, 0], np.uint8)[:, None, None]
    same = ((obj8 == backgrounds[0]).all(1, keepdims=True) | (obj8 == backgrounds[1]).all(1, keepdims=True)) & mask
    up = np.where(obj8[:, :1] < 255, obj8 + red, obj8 - red)
    meets = (up == backgrounds[0]).all(1, keepdims=True) | (up == backgrounds[1]).all(1, keepdims=True)
    painted = np.where(same, np.where(meets, np.where(obj8[:, :1] > 0, obj8 - red, obj8 + red), up), obj8)
    out = {"masks": mask, "backgrounds": backgrounds[0]}
    for name, bg8 in zip(("images", "cue_free"), backgrounds, strict=True):
        out[name] = np.where(mask, painted, bg8)
    return out


def _domain(labels: np.ndarray, alpha: np.ndarray, domain: int, style: str, n_classes: int, tint_strength: float,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The arrays of one domain around given labels and object masks: environments, cue, object, twins."""
    n = len(labels)
    envs = rng.integers(0, len(ENV_AGREEMENT), n)
    bg = _background(style, n, rng)
    cue, free = _tint_classes(labels, domain, n_classes, envs, rng)
    palette = _hues(n_classes)
    colors = _object_colors(bg, alpha, style, tint_strength, float(luma(palette[:, :, None, None]).mean()), rng)
    return {"labels": labels, "envs": envs, "cue": cue,
            **_compose(bg, alpha, colors, palette[cue], palette[free], tint_strength, rng)}


def generate_shapes(domain: int, seed: int = DEFAULT_SEED, n: int = IMAGES_PER_DOMAIN) -> dict[str, np.ndarray]:
    """One `shapes` domain: uint8 images and cue-free twins (n,3,S,S), labels, environments and cue classes (n,),
    bool masks (n,1,S,S), the tinted backgrounds."""
    rng = np.random.default_rng([seed, 1, domain])
    labels = rng.integers(0, len(SHAPE_CLASSES), n)
    alpha = _shape_alpha(labels, rng)
    return _domain(labels, alpha, domain, SHAPE_DOMAINS[domain], len(SHAPE_CLASSES), TINT_STRENGTH["shapes"], rng)


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
    alpha = _digit_alpha(digits.images[glyph_ids], rng)
    return {"glyph_ids": glyph_ids, **_domain(labels, alpha, domain, style, 10, TINT_STRENGTH["digits"], rng)}


#: the arrays a loaded benchmark keeps (the cache's content)
CACHED = ("images", "cue_free", "labels", "masks", "envs", "cue")
GENERATORS: dict[str, Callable[..., dict[str, np.ndarray]]] = {}


def domain_arrays(name: str, domain: int) -> dict[str, np.ndarray]:
    """The cached arrays (CACHED) of one domain of a built-in benchmark, generated on first use."""
    return _cached(name, GENERATORS[name], domain)


def _cached(name: str, generate: Callable[[int], dict[str, np.ndarray]], domain: int) -> dict[str, np.ndarray]:
    """Generate once and cache as .npz (keyed by name, generator version and source hash). Processes that need it at
    the same time (a grid's workers, the test workers) wait for one generation. Stored uncompressed: zlib saves a
    third of the 36 MB of a domain but costs about 1 s to write and 0.14 s at every load, which every job does."""
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = cache_dir() / f"{name}-d{domain}-v{GENERATOR_VERSION}-{source}.npz"
    with locked(path.with_suffix(".lock")):
        if path.is_file():
            with np.load(path) as data:
                return dict(data)
        arrays = {k: v for k, v in generate(domain).items() if k in CACHED}
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
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
            arrays = {k: torch.from_numpy(v) for k, v in domain_arrays(name, d).items()}
            labels, masks, envs = arrays["labels"].long(), arrays["masks"], arrays["envs"].long()
            dataset = ArrayDataset(arrays["images"], labels, d, masks, envs)
            twins = ArrayDataset(arrays["cue_free"], labels, d, masks, envs)
            built.append(make_domain(domain_name, dataset, cue_free=twins))
        agreement = "/".join(f"{p:g}" for p in ENV_AGREEMENT)
        return Benchmark(name, classes, tuple(built), SIZE, True,
                         f"built-in synthetic benchmark '{name}' (generator v{GENERATOR_VERSION}, "
                         f"{IMAGES_PER_DOMAIN} images/domain, background cue agreement {agreement} in its two "
                         f"environments, tint {TINT_STRENGTH[name]:g})")

    GENERATORS[name] = generate
    DATASETS.add(name, DatasetSpec(load, domains, True, summary, GENERATOR_VERSION))
    return load


load_shapes = _loader("shapes", SHAPE_CLASSES, SHAPE_DOMAINS, generate_shapes,
                      "built-in: 5 shape classes on 4 background domains (like VLCS)")
load_digits = _loader("digits", DIGIT_CLASSES, DIGIT_DOMAINS, generate_digits,
                      "built-in: 10 handwritten-digit classes, disjoint glyphs per domain (like TerraIncognita)")
