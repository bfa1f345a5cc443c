"""The synthetic pretraining corpus of the quick profile's small cnns (benchmark/pretraining.py trains on it).

Its classes are disjoint from the built-in benchmarks' (no circle, square, triangle, cross, ring, no
digits): 12 other shapes and 8 letters of PIL's default font, at random position, scale, rotation and
aspect, in a random colour, on 8 kinds of random backgrounds drawn independently of the class (no
spurious cue to learn). `make_corpus` is deterministic in its seed and vectorized over chunks of images.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmark.registry import UserError

#: shapes as polygons (or the drawing of `_draw_shape`) in [-1, 1]^2, y pointing down
SHAPES = ("star", "hexagon", "ellipse", "arrow", "crescent", "heart", "diamond", "l_shape", "t_shape",
          "semicircle", "hourglass", "lightning")
#: upper-case letters that look like none of the shapes above nor a digit (no O, I, S, Z, B, G, T, L, X)
LETTERS = ("A", "E", "F", "H", "K", "M", "R", "W")
CLASSES = SHAPES + tuple(f"letter_{c}" for c in LETTERS)

BACKGROUNDS = ("flat", "gradient", "radial", "noise", "stripes", "checker", "blobs", "lines")

#: side of the class templates the objects are resampled from
TEMPLATE = 64
#: images are rendered at this many samples per pixel side and averaged (anti-aliased edges)
SUPERSAMPLE = 2
#: images generated per vectorized batch
CHUNK = 500



_POLYGONS: dict[str, list[tuple[float, float]]] = {
    "star": [(math.cos(a) * r, math.sin(a) * r) for k in range(10)
             for a, r in [(-math.pi / 2 + k * math.pi / 5, 1.0 if k % 2 == 0 else 0.42)]],
    "hexagon": [(math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)) for k in range(6)],
    "arrow": [(-1, -0.22), (0.15, -0.22), (0.15, -0.6), (1, 0), (0.15, 0.6), (0.15, 0.22), (-1, 0.22)],
    "diamond": [(0, -1), (0.55, 0), (0, 1), (-0.55, 0)],
    "l_shape": [(-0.6, -1), (-0.12, -1), (-0.12, 0.52), (0.7, 0.52), (0.7, 1), (-0.6, 1)],
    "t_shape": [(-0.9, -1), (0.9, -1), (0.9, -0.55), (0.22, -0.55), (0.22, 1), (-0.22, 1), (-0.22, -0.55),
                (-0.9, -0.55)],
    "hourglass": [(-0.8, -1), (0.8, -1), (0.14, 0), (0.8, 1), (-0.8, 1), (-0.14, 0)],
    "lightning": [(0.25, -1), (-0.65, 0.15), (-0.05, 0.15), (-0.3, 1), (0.65, -0.2), (0.05, -0.2)],
}


def _draw_shape(draw: ImageDraw.ImageDraw, name: str, to_px) -> None:
    """Draw shape `name` in white; `to_px` maps [-1, 1] coordinates to template pixels."""
    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*to_px(x0, y0), *to_px(x1, y1)]

    if name in _POLYGONS:
        draw.polygon([to_px(x, y) for x, y in _POLYGONS[name]], fill=255)
    elif name == "ellipse":
        draw.ellipse(box(-1, -0.5, 1, 0.5), fill=255)
    elif name == "crescent":
        draw.ellipse(box(-1, -1, 1, 1), fill=255)
        draw.ellipse(box(-0.45, -1.1, 1.45, 0.8), fill=0)
    elif name == "heart":
        draw.ellipse(box(-1, -0.85, 0.05, 0.2), fill=255)
        draw.ellipse(box(-0.05, -0.85, 1, 0.2), fill=255)
        draw.polygon([to_px(-0.95, -0.15), to_px(0.95, -0.15), to_px(0, 0.95)], fill=255)
    elif name == "semicircle":
        draw.pieslice(box(-1, -0.5, 1, 1.5), 180, 360, fill=255)
    else:
        raise ValueError(f"no drawing of shape {name!r}")


def _letter_template(letter: str) -> np.ndarray:
    """The glyph of PIL's default font, upscaled to fill the template's central 84% (height), binarized."""
    font = ImageFont.load_default()
    canvas = Image.new("L", (48, 48), 0)
    ImageDraw.Draw(canvas).text((8, 8), letter, fill=255, font=font)
    glyph = canvas.crop(canvas.getbbox())
    height = round(0.84 * TEMPLATE)
    width = min(height, max(1, round(glyph.width * height / glyph.height)))
    glyph = glyph.resize((width, height), Image.Resampling.BICUBIC)
    out = Image.new("L", (TEMPLATE, TEMPLATE), 0)
    out.paste(glyph, ((TEMPLATE - width) // 2, (TEMPLATE - height) // 2))
    return (np.asarray(out, dtype=np.float32) > 100).astype(np.float32)


@cache
def templates() -> np.ndarray:
    """One float mask (TEMPLATE x TEMPLATE, object = 1) per class of CLASSES, objects in the central 84%."""
    half = 0.42 * TEMPLATE

    def to_px(x: float, y: float) -> tuple[float, float]:
        return TEMPLATE / 2 + half * x, TEMPLATE / 2 + half * y

    masks = []
    for name in SHAPES:
        canvas = Image.new("L", (TEMPLATE, TEMPLATE), 0)
        _draw_shape(ImageDraw.Draw(canvas), name, to_px)
        masks.append(np.asarray(canvas, dtype=np.float32) / 255)
    masks += [_letter_template(letter) for letter in LETTERS]
    return np.stack(masks)


def _object_alpha(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage (n, size, size) in [0, 1] of each class's template under a random affine map."""
    n = len(labels)
    radius = rng.uniform(0.2, 0.4, n) * size  # half the object's extent, in image pixels
    angle = rng.uniform(-np.pi / 6, np.pi / 6, n)  # limited: M and W stay apart, letters upright
    aspect = np.exp(rng.uniform(-0.2, 0.2, n))
    shear = rng.uniform(-0.2, 0.2, n)
    centre = size / 2 + rng.uniform(-1, 1, (n, 2)) * (size / 2 - 0.8 * radius)[:, None]
    # template pixel = inverse(scale * rotation * shear * aspect) @ (image pixel - centre) + template centre
    scale = radius / (0.42 * TEMPLATE)
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0], forward[:, 0, 1] = cos * aspect, (cos * shear - sin) / aspect
    forward[:, 1, 0], forward[:, 1, 1] = sin * aspect, (sin * shear + cos) / aspect
    inverse = np.linalg.inv(forward * scale[:, None, None]).astype(np.float32)
    fine = size * SUPERSAMPLE
    grid = ((np.arange(fine) + 0.5) / SUPERSAMPLE).astype(np.float32)
    px = grid[None, None, :] - centre[:, 0, None, None].astype(np.float32)  # (n, 1, fine): image x - centre
    py = grid[None, :, None] - centre[:, 1, None, None].astype(np.float32)  # (n, fine, 1)
    # template coordinates, shifted by the one pixel of zero padding (outside the template: no object)
    offset = TEMPLATE / 2 - 0.5 + 1
    x = (inverse[:, 0, 0, None, None] * px + inverse[:, 0, 1, None, None] * py + offset).reshape(n, -1)
    y = (inverse[:, 1, 0, None, None] * px + inverse[:, 1, 1, None, None] * py + offset).reshape(n, -1)
    padded = np.pad(templates(), ((0, 0), (1, 1), (1, 1))).reshape(len(CLASSES), -1)
    x = np.clip(x, 0, TEMPLATE + 0.999)
    y = np.clip(y, 0, TEMPLATE + 0.999)
    fx, fy = x - np.floor(x), y - np.floor(y)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, TEMPLATE + 1), np.minimum(y0 + 1, TEMPLATE + 1)
    side = TEMPLATE + 2
    rows = padded[labels]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return np.take_along_axis(rows, yy * side + xx, axis=1)

    alpha = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)))
    return alpha.reshape(n, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4))


def _mix(t: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Per-pixel blend (m, 3, S, S) of colours c1 (t = 0) and c2 (t = 1) by t (m, S, S)."""
    return c1[:, :, None, None] + (c2 - c1)[:, :, None, None] * t[:, None]


def _backgrounds(kinds: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Backgrounds (n, 3, S, S) in [0, 1] of the given BACKGROUNDS indices, in random colours."""
    n = len(kinds)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    xs, ys = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="xy")
    for kind, name in enumerate(BACKGROUNDS):
        idx = np.flatnonzero(kinds == kind)
        m = len(idx)
        if m == 0:
            continue
        c1, c2 = rng.uniform(0, 1, (m, 3)), rng.uniform(0, 1, (m, 3))
        theta = rng.uniform(0, 2 * np.pi, (m, 1, 1))
        along = xs * np.cos(theta) + ys * np.sin(theta)  # (m, S, S) coordinate along a random direction
        across = -xs * np.sin(theta) + ys * np.cos(theta)
        if name == "flat":
            img = _mix(np.zeros((m, size, size)), c1, c2)
        elif name == "gradient":
            lo, hi = along.min(axis=(1, 2), keepdims=True), along.max(axis=(1, 2), keepdims=True)
            img = _mix((along - lo) / (hi - lo), c1, c2)
        elif name == "radial":
            cx, cy = rng.uniform(0, 1, (2, m, 1, 1))
            reach = rng.uniform(0.4, 1.2, (m, 1, 1))
            img = _mix(np.clip(np.hypot(xs - cx, ys - cy) / reach, 0, 1), c1, c2)
        elif name == "noise":
            cells = int(rng.integers(3, 9))  # smooth value noise on a coarse grid, bilinearly upsampled
            coarse = rng.uniform(0, 1, (m, cells + 1, cells + 1))
            pos = (np.arange(size) + 0.5) / size * cells
            lo = np.minimum(np.floor(pos).astype(int), cells - 1)
            weights = np.zeros((size, cells + 1))
            weights[np.arange(size), lo] = 1 - (pos - lo)
            weights[np.arange(size), lo + 1] = pos - lo
            t = np.einsum("yi,nij,xj->nyx", weights, coarse, weights)
            img = _mix(t, c1, c2) + rng.normal(0, 0.04, (m, 3, size, size))
        elif name == "stripes":
            freq = rng.uniform(2, 7, (m, 1, 1))
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * along + rng.uniform(0, 2 * np.pi, (m, 1, 1)))
            hard = rng.uniform(0, 1, (m, 1, 1)) < 0.5
            img = _mix(np.where(hard, wave > 0.5, wave), c1, c2)
        elif name == "checker":
            freq = rng.uniform(2, 6, (m, 1, 1))
            t = (np.floor(along * freq) + np.floor(across * freq)) % 2
            img = _mix(t, c1, c2)
        elif name == "blobs":
            img = _mix(np.zeros((m, size, size)), c1, c2)
            for _ in range(5):
                cx, cy = rng.uniform(0, 1, (2, m, 1, 1))
                sigma = rng.uniform(0.06, 0.25, (m, 1, 1))
                weight = 0.9 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
                img = img + (rng.uniform(0, 1, (m, 3, 1, 1)) - img) * weight[:, None]
        elif name == "lines":
            img = _mix(np.zeros((m, size, size)), c1, c2)
            for _ in range(8):  # segments of random colour, about 1 px wide
                a, b = rng.uniform(-0.1, 1.1, (2, m, 2, 1, 1))
                d = b - a
                t = np.clip(((xs - a[:, 0]) * d[:, 0] + (ys - a[:, 1]) * d[:, 1])
                            / np.maximum((d**2).sum(1), 1e-6), 0, 1)
                dist = np.hypot(xs - a[:, 0] - t * d[:, 0], ys - a[:, 1] - t * d[:, 1]) * size
                weight = np.clip(rng.uniform(1.0, 1.8, (m, 1, 1)) - dist, 0, 1)
                img = img + (rng.uniform(0, 1, (m, 3, 1, 1)) - img) * weight[:, None]
        else:
            raise ValueError(f"no background {name!r}")
        out[idx] = img
    return out


def _chunk(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 images (n, 3, S, S) of objects of the given classes on class-independent backgrounds."""
    n = len(labels)
    bg = _backgrounds(rng.integers(0, len(BACKGROUNDS), n), size, rng)
    alpha = _object_alpha(labels, size, rng)[:, None]
    colour = rng.uniform(0, 1, (n, 3))
    # Keep the object visible: where its colour is close to the background's mean under it, take the
    # opposite extreme of that mean in every channel.
    under = (bg * alpha).sum(axis=(2, 3)) / np.maximum(alpha.sum(axis=(2, 3)), 1e-6)
    close = np.linalg.norm(colour - under, axis=1, keepdims=True) < 0.45
    colour = np.where(close, (under < 0.5).astype(np.float64), colour)
    shading = 1 + rng.uniform(-0.15, 0.15, (n, 1, 1, 1)) * np.linspace(-1, 1, size)[None, None, None, :]
    img = bg * (1 - alpha) + np.clip(colour[:, :, None, None] * shading, 0, 1) * alpha
    img = img + rng.uniform(0, 0.04, (n, 1, 1, 1)) * rng.standard_normal(img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_corpus(images: int, *, classes: int = len(CLASSES), image_size: int = 32,
                seed: int | list[int] = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic corpus: uint8 images (n, 3, S, S) and int64 labels (n,), balanced over the first
    `classes` classes of CLASSES (counts differ by at most one), in random order."""
    if not 2 <= classes <= len(CLASSES):
        raise UserError(f"the pretraining corpus has 2 to {len(CLASSES)} classes, not {classes}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(images) % classes)
    x = np.empty((images, 3, image_size, image_size), dtype=np.uint8)
    for start in range(0, images, CHUNK):
        x[start : start + CHUNK] = _chunk(labels[start : start + CHUNK], image_size, rng)
    return x, labels.astype(np.int64)
