"""An analytic quality checker for the embedded world: does the picture show the shape the prompt asks for?

Why analytic: the checker must be independent of the diffusion model it judges, and every rule in
it can be read and argued with. It reads an image in four steps:

1. background: the outer two pixel rings show only background (the generator keeps a margin); a
   plane fitted per channel to them models the unnamed background colour and its lighting gradient.
   If the plane does not explain the border (pure noise, a scene torn apart), nothing is read;
2. foreground: pixels far from that background plane; the median of their interior, matched to
   the nearest named colour, is the shape's colour;
3. mask: each pixel's position on the line from background to foreground colour (0 = background,
   1 = foreground), thresholded at one half so blurred edges keep the shape's geometry; the
   largest connected component, holes filled;
4. shape: the mask is compared (IoU) with each ideal shape drawn in its bounding box, using the
   generator's own shape definitions; the best match wins if it is good enough.

Colour matching allows for shading (lightening towards white / darkening towards black), because
the generator shades the shape's colour for its stripes: a darkened yellow is still yellow.
"""
from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import ndimage

from .dataset import COLOR_NAMES, PALETTE, sample, shade, shape_inside
from .vocab import ATTRIBUTES, COLORS, SHAPES, caption_of, swapped

#: Shading factors tried when matching a pixel to a named colour (the stripes shade by at most 0.12).
SHADES = np.linspace(-0.3, 0.3, 13)
#: A pixel belongs to the rough foreground if it is this far (RGB Euclidean) from the background plane
#: (the generator keeps the shape's colour at least 120 from the background's).
ROUGH_DISTANCE = 40.0
#: Fewer foreground pixels than this is no shape at all (the smallest generated shape, a diamond of
#: side 9 px, covers ~36).
MIN_AREA = 30
#: More foreground than this share of the image is no single shape (the largest generated one is ~20%).
MAX_AREA_SHARE = 0.5
#: The best shape template must reach this IoU with the mask, else the shape is unrecognised.
MIN_IOU = 0.8
#: The background plane must explain the best-fitting BORDER_INLIERS of the border to this RMS (RGB units)
#: for there to be a background at all: the generator's gradient is linear up to clipping in the corners;
#: noise misses by ~50 or more.
MAX_BORDER_RESIDUAL = 20.0
#: Share of border pixels the background plane is fitted to (the rest are the worst-explained ones).
BORDER_INLIERS = 0.75
#: The background is read from the outer two pixel rings: the generator keeps both free of the
#: shape, and two rings outvote a one-pixel frame artefact or a shape that strays to the edge.
BORDER_WIDTH = 2

_PROMPT = re.compile(r"^an? (\w+) (\w+)$")


@dataclass(frozen=True)
class Reading:
    """What the checker sees in an image; None where it could not read an attribute. Frozen, its colours read-only:
    one Reading serves every request for the same pixels (read)."""

    shape: str | None
    fg: str | None
    shape_iou: float = 0.0
    area: int = 0
    #: The median foreground and background colours read (RGB, 0..255); None where unread.
    fg_rgb: np.ndarray | None = None
    bg_rgb: np.ndarray | None = None
    #: Best-placement IoU of every ideal shape with the mask (empty where no mask was found).
    shape_scores: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckResult:
    """Per-attribute verdicts against the prompt, and what was read."""

    shape_ok: bool
    fg_ok: bool
    match: bool
    expected: dict[str, str] = field(default_factory=dict)
    read: Reading | None = None


def parse_prompt(prompt: str) -> dict[str, str] | None:
    """{'shape','fg'} for a prompt of the world's caption template, None for anything else."""
    text = " ".join(prompt.lower().strip().rstrip(".").split())
    m = _PROMPT.match(text)
    if m is None:
        return None
    fg, shape = m.groups()
    if fg not in COLORS or shape not in SHAPES:
        return None
    return {"shape": shape, "fg": fg}


def _shaded_palette() -> np.ndarray:
    """[n_colours, n_shades, 3]: every named colour at every shading factor tried."""
    return np.stack([shade(np.broadcast_to(c, (len(SHADES), 3)), SHADES) for c in PALETTE])


_SHADED = _shaded_palette()


def colour_distances(pixels: np.ndarray) -> np.ndarray:
    """[n, n_colours]: distance of each RGB pixel to each named colour, allowing for shading."""
    diff = pixels[:, None, None, :] - _SHADED[None]
    return np.sqrt((diff**2).sum(-1)).min(-1)


def nearest_colour(pixels: np.ndarray) -> np.ndarray:
    """Index of the nearest named colour (shading allowed) for each pixel of an [n, 3] array."""
    return colour_distances(pixels).argmin(-1)


def _border(h: int, w: int, width: int = 1) -> np.ndarray:
    """The outer `width` pixels of the image."""
    ring = np.zeros((h, w), dtype=bool)
    ring[:width, :] = ring[-width:, :] = ring[:, :width] = ring[:, -width:] = True
    return ring


def _background(img: np.ndarray) -> np.ndarray | None:
    """A per-pixel background model (plane fit per channel over the border), None if it fits badly.

    The fit is trimmed: refitted twice on the three quarters of border pixels it explains best, so a
    few pixels of decoder artefact at the image's edge or corner (common in generated images) cannot
    tilt the plane or fail the fit.
    """
    h, w, _ = img.shape
    ring = _border(h, w, BORDER_WIDTH)
    ys, xs = np.nonzero(ring)
    design = np.stack([np.ones(len(xs)), xs, ys], axis=1).astype(np.float64)
    pixels = img[ring]
    keep = np.ones(len(pixels), dtype=bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], pixels[keep], rcond=None)
        residual = np.linalg.norm(pixels - design @ coef, axis=-1)
        keep = residual <= np.quantile(residual, BORDER_INLIERS)
    if float(np.sqrt((residual[keep] ** 2).mean())) > MAX_BORDER_RESIDUAL:
        return None
    gy, gx = np.mgrid[0:h, 0:w]
    return coef[0] + gx[..., None] * coef[1] + gy[..., None] * coef[2]


def _coverage_map(mask: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Soft per-pixel shape coverage: 1 inside, the clipped alpha on the edge, 0 elsewhere.

    The interior is set to 1 because the stripes modulate alpha there; only the edge carries the
    sub-pixel information that places a small shape precisely.
    """
    cov = np.where(ndimage.binary_dilation(mask), np.clip(alpha, 0.0, 1.0), 0.0)
    cov[ndimage.binary_erosion(mask)] = 1.0
    return cov


def _template(name: str, params: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Coverage of an ideal shape centred at (cx, cy) with half-extents (hw, hh), 4x supersampled.

    The box may be non-square: a slightly squashed generated circle should still read as a circle.
    """
    cx, cy, hw, hh = (float(v) for v in params)
    return _template_at(name, cx, cy, hw, hh, int(shape[0]), int(shape[1]))


#: Templates kept: the coordinate descent of `_fit` steps back and forth over the same placements (about three
#: calls per distinct placement on generated images). About 80 new placements an image, about 2 KB each: 8,192
#: cover the last hundred images in about 16 MB.
TEMPLATE_CACHE = 1 << 13


@lru_cache(maxsize=TEMPLATE_CACHE)
def _template_at(name: str, cx: float, cy: float, hw: float, hh: float, h: int, w: int) -> np.ndarray:
    """`_template` for one placement, computed once (read-only: it is shared)."""
    ss = 4
    sx = (np.arange(w * ss) + 0.5) / ss
    sy = (np.arange(h * ss) + 0.5) / ss
    inside = shape_inside(name, (sx[None, :] - cx) / hw, (sy[:, None] - cy) / hh).astype(np.float64)
    out = inside.reshape(h, ss, w, ss).mean(axis=(1, 3))
    out.flags.writeable = False
    return out


def _soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.minimum(a, b).sum() / max(np.maximum(a, b).sum(), 1e-9))


def _fit(name: str, cov: np.ndarray, init: np.ndarray) -> float:
    """Best IoU of one ideal shape with the coverage map, placing it by coordinate descent.

    Starts from the mask's bounding box and nudges centre and half-extents by half and quarter
    pixels: at 32x32 a one-pixel error in the box is enough to confuse a small diamond with a circle.
    """
    params = init.copy()
    best = _soft_iou(cov, _template(name, params, cov.shape))
    for step in (0.5, 0.25):
        for _ in range(3):
            improved = False
            for k in range(4):
                for sign in (1.0, -1.0):
                    trial = params.copy()
                    trial[k] += sign * step
                    if trial[2] < 1.0 or trial[3] < 1.0:
                        continue
                    iou = _soft_iou(cov, _template(name, trial, cov.shape))
                    if iou > best:
                        params, best, improved = trial, iou, True
            if not improved:
                break
    return best


def _shape_scores(mask: np.ndarray, alpha: np.ndarray) -> dict[str, float]:
    """Best-placement IoU of each ideal shape with the coverage map."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    # Work in a window around the box (2 px of slack): same result, several times cheaper.
    wx0, wy0 = max(x0 - 2, 0), max(y0 - 2, 0)
    cov = _coverage_map(mask, alpha)[wy0 : y1 + 2, wx0 : x1 + 2]
    init = np.array([(x0 + x1) / 2.0 - wx0, (y0 + y1) / 2.0 - wy0, (x1 - x0) / 2.0, (y1 - y0) / 2.0])
    return {name: _fit(name, cov, init) for name in SHAPES}


def _best_shape(scores: dict[str, float]) -> tuple[str | None, float]:
    """Template matching: the ideal shape whose best placement explains the coverage map best."""
    best = max(scores, key=scores.__getitem__)
    return (best if scores[best] >= MIN_IOU else None), scores[best]


#: Readings kept, by image content: a run asks for the same image's reading several times (its scores and its
#: match, a roster and the longer roster that extends it, a generation asked for under another name), and a
#: reading depends on the pixels alone (the prompt is compared afterwards). Per process: xdist workers read for
#: themselves.
READING_CACHE = 1 << 14
_readings: OrderedDict[tuple, Reading] = OrderedDict()


def read(image: np.ndarray) -> Reading:
    """Read the shape and its colour (and the background's median colour) from an HxWx3 image; the same pixels
    are read once (READING_CACHE): the Reading returned is shared, so do not modify it."""
    arr = np.ascontiguousarray(image)
    key = (arr.shape, arr.dtype.str, hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
    hit = _readings.get(key)
    if hit is not None:
        _readings.move_to_end(key)
        return hit
    reading = _read(arr)
    for rgb in (reading.fg_rgb, reading.bg_rgb):
        if rgb is not None:
            rgb.flags.writeable = False
    _readings[key] = reading
    if len(_readings) > READING_CACHE:
        _readings.popitem(last=False)
    return reading


def _read(image: np.ndarray) -> Reading:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    plane = _background(img)
    if plane is None:
        return Reading(shape=None, fg=None)
    ring = _border(img.shape[0], img.shape[1], BORDER_WIDTH)
    bg_rgb = np.median(img[ring], axis=0)
    dist = np.linalg.norm(img - plane, axis=-1)
    rough = dist > ROUGH_DISTANCE
    rough &= ~_border(*rough.shape)
    if rough.sum() < MIN_AREA:
        return Reading(shape=None, fg=None, bg_rgb=bg_rgb)
    labels, n = ndimage.label(rough)
    sizes = ndimage.sum(rough, labels, index=np.arange(1, n + 1))
    rough = labels == (1 + int(np.argmax(sizes)))
    interior = ndimage.binary_erosion(rough)
    fg_pixels = img[interior] if interior.sum() >= 8 else img[rough]
    fg_rgb = np.median(fg_pixels, axis=0)
    fg = int(nearest_colour(fg_rgb[None])[0])
    seen = dict(fg=COLOR_NAMES[fg], fg_rgb=fg_rgb, bg_rgb=bg_rgb)

    # Fractional position of each pixel on the line from the local background to the foreground colour.
    axis = fg_rgb[None, None, :] - plane
    alpha = ((img - plane) * axis).sum(-1) / np.maximum((axis**2).sum(-1), 1e-6)
    mask = ndimage.binary_fill_holes(alpha > 0.5)
    labels, n = ndimage.label(mask)
    if n == 0:
        return Reading(shape=None, **seen)
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    mask = labels == (1 + int(np.argmax(sizes)))
    area = int(mask.sum())
    if area < MIN_AREA or area > MAX_AREA_SHARE * mask.size:
        return Reading(shape=None, area=area, **seen)
    scores = _shape_scores(mask, alpha)
    shape, iou = _best_shape(scores)
    return Reading(shape=shape, shape_iou=iou, area=area, shape_scores=scores, **seen)


@dataclass(frozen=True)
class Scores:
    """Continuous per-image readings against the prompt, each in [0, 1] (1 = exactly as asked).

    Why continuous: a pass/fail match per image needs hundreds of images to tell two samplers apart
    within a few points; paired by seed, these scores tell them apart with tens. `score` is their mean.
    - shape: the IoU of the prompt's shape, placed as well as it fits the mask (0 without a mask);
    - fg: where the read colour lies between the nearest *other* named colour (0) and the prompt's
      colour (1): d_other / (d_asked + d_other), shading allowed; 0.5 is the checker's decision boundary.
    """

    shape: float
    fg: float

    @property
    def score(self) -> float:
        return (self.shape + self.fg) / 2.0

    def as_dict(self) -> dict[str, float]:
        return {"shape": round(self.shape, 4), "fg": round(self.fg, 4), "score": round(self.score, 4)}


def colour_score(rgb: np.ndarray | None, asked: str) -> float:
    """d_other / (d_asked + d_other) for one read colour: 1 on the asked colour, 0 on another named one."""
    if rgb is None:
        return 0.0
    d = colour_distances(np.asarray(rgb, dtype=np.float64)[None])[0]
    k = COLOR_NAMES.index(asked)
    d_asked = float(d[k])
    d_other = float(np.delete(d, k).min())
    return d_other / max(d_asked + d_other, 1e-9)


def scores(image: np.ndarray, prompt: str, reading: Reading | None = None) -> Scores:
    """Continuous readings of one image against its prompt (see Scores); raises for prompts outside the world."""
    expected = parse_prompt(prompt)
    if expected is None:
        raise ValueError(f"prompt is outside the embedded world: {prompt!r}")
    r = read(image) if reading is None else reading
    return Scores(shape=float(r.shape_scores.get(expected["shape"], 0.0)), fg=colour_score(r.fg_rgb, expected["fg"]))


def check(image: np.ndarray, prompt: str) -> CheckResult:
    """Judge one image against its prompt; raises ValueError for prompts outside the world."""
    expected = parse_prompt(prompt)
    if expected is None:
        raise ValueError(f"prompt is outside the embedded world: {prompt!r}")
    r = read(image)
    shape_ok = r.shape == expected["shape"]
    fg_ok = r.fg == expected["fg"]
    return CheckResult(shape_ok, fg_ok, shape_ok and fg_ok, expected, r)


def adherence(images: Sequence[np.ndarray] | np.ndarray, prompts: Sequence[str]) -> dict:
    """Match rate and per-attribute accuracies over a set of images and their prompts."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    results = [check(np.asarray(im), p) for im, p in zip(images, prompts)]
    n = max(len(results), 1)
    return {
        "match_rate": sum(r.match for r in results) / n,
        "shape_acc": sum(r.shape_ok for r in results) / n,
        "fg_acc": sum(r.fg_ok for r in results) / n,
        "per_image": [r.match for r in results],
        "scores": [scores(np.asarray(im), p, r.read) for im, p, r in zip(images, prompts, results)],
        "results": results,
    }


def renderer_drop(n: int = 200, seed: int = 4242) -> dict[str, float]:
    """The score drop of one wrong attribute, on the world's renderer alone (no sampler involved).

    Each rendered image is scored against its own caption and against the caption with one attribute
    swapped for another value; the mean drop per attribute and over attributes. This is the checker's
    scale: the registry states quality margins in wrong attributes per image and converts them with it.
    """
    batch = sample(seed, n)
    rng = np.random.default_rng(seed + 1)
    reads = [read(im) for im in batch.images]
    own = [scores(im, c, r).score for im, c, r in zip(batch.images, batch.captions, reads)]
    out: dict[str, float] = {}
    for attr in ATTRIBUTES:
        wrong = [scores(im, caption_of(swapped(a, attr, rng)), r).score
                 for im, a, r in zip(batch.images, batch.attributes, reads)]
        out[attr] = float(np.mean(np.subtract(own, wrong)))
    out["mean"] = float(np.mean([out[a] for a in ATTRIBUTES]))
    out["own_mean"] = float(np.mean(own))
    return out
