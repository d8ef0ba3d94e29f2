"""A seeded procedural generator of captioned 32x32 images: one shape on a background.

Why procedural: the tiny model's training data and the checker's ground truth come from the same
exactly reproducible source, so the whole fixture can be rebuilt from a seed, with no download.

Why texture: samplers differ mostly in how well they resolve fine detail. Flat shapes on flat
backgrounds would make every sampler look equally good, so the background carries a smooth
brightness gradient and the shape carries fine stripes. Both are shading (lighten / darken) of the
named colour, small enough that the colour stays recognisable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .vocab import COLORS, SHAPES, caption

#: Image side in pixels.
SIZE = 32
#: Shape bounding-box side as a fraction of the image side (the brief's 40-75 %).
MIN_FRAC, MAX_FRAC = 0.40, 0.75
#: Pixels kept free between the shape and the image border, so the 1-pixel border ring shows
#: background only (with a pixel to spare for anti-aliasing); the checker relies on it.
MARGIN = 2.0
#: Supersampling factor for anti-aliased shape edges (coverage is the mean of SS*SS sub-pixels).
SS = 4
#: Background brightness gradient: shading factor runs over +-GRADIENT across the image.
GRADIENT = (0.08, 0.16)
#: Stripe shading amplitude on the shape, and its period range in pixels.
STRIPE_AMP = 0.12
STRIPE_PERIOD = (3.0, 5.0)

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
PALETTE = np.array([COLORS[c] for c in COLOR_NAMES], dtype=np.float64)


@dataclass
class Batch:
    """Images with their captions and the attributes the captions were made from."""

    images: np.ndarray  # [n, 32, 32, 3] uint8
    captions: list[str] = field(default_factory=list)
    attributes: list[dict[str, str]] = field(default_factory=list)


def random_attributes(rng: np.random.Generator) -> dict[str, str]:
    """A shape, a foreground colour and a *different* background colour, uniformly at random."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    fg, bg = rng.choice(len(COLOR_NAMES), size=2, replace=False)
    return {"shape": shape, "fg": COLOR_NAMES[fg], "bg": COLOR_NAMES[bg]}


def shape_inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean inside-test in box coordinates u, v in [-1, 1] (v grows downwards).

    All four shapes fill the same square bounding box, so size means the same thing for each;
    the checker uses these same definitions as templates.
    """
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if shape == "triangle":  # apex at the top centre, base along the bottom edge
        return (v <= 1.0) & (np.abs(u) <= (v + 1.0) / 2.0)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    raise ValueError(f"unknown shape {shape!r}")


def coverage(shape: str, cx: float, cy: float, half: float, size: int = SIZE) -> np.ndarray:
    """Per-pixel fraction of the pixel covered by the shape, by SSxSS supersampling."""
    sub = (np.arange(size * SS) + 0.5) / SS  # sub-pixel centres in pixel units
    u = (sub[None, :] - cx) / half
    v = (sub[:, None] - cy) / half
    inside = shape_inside(shape, u, v).astype(np.float64)
    return inside.reshape(size, SS, size, SS).mean(axis=(1, 3))


def shade(color: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Lighten towards white (f > 0) or darken towards black (f < 0); works for black and white too."""
    f = f[..., None]
    return np.where(f > 0, color + f * (255.0 - color), color * (1.0 + f))


def render(rng: np.random.Generator, attrs: dict[str, str]) -> np.ndarray:
    """Draw one image for the given attributes, with random size, position, gradient and stripes."""
    side = rng.uniform(MIN_FRAC, MAX_FRAC) * SIZE
    half = side / 2.0
    cx = rng.uniform(MARGIN + half, SIZE - MARGIN - half)
    cy = rng.uniform(MARGIN + half, SIZE - MARGIN - half)

    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    # Background: linear brightness gradient in a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    proj = ((xs - SIZE / 2) * np.cos(theta) + (ys - SIZE / 2) * np.sin(theta)) / (SIZE / 2)
    bg = shade(np.array(COLORS[attrs["bg"]], dtype=np.float64), rng.uniform(*GRADIENT) * np.clip(proj, -1, 1))
    # Shape: fine sinusoidal stripes at a random angle, period and phase.
    phi = rng.uniform(0, np.pi)
    period = rng.uniform(*STRIPE_PERIOD)
    wave = np.sin(2 * np.pi * (xs * np.cos(phi) + ys * np.sin(phi)) / period + rng.uniform(0, 2 * np.pi))
    fg = shade(np.array(COLORS[attrs["fg"]], dtype=np.float64), STRIPE_AMP * wave)

    alpha = coverage(attrs["shape"], cx, cy, half)[..., None]
    img = alpha * fg + (1.0 - alpha) * bg
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def sample(seed: int, n: int) -> Batch:
    """n images from one seed; the same seed always gives identical arrays and captions."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    captions: list[str] = []
    attributes: list[dict[str, str]] = []
    for i in range(n):
        attrs = random_attributes(rng)
        images[i] = render(rng, attrs)
        attributes.append(attrs)
        captions.append(caption(attrs["shape"], attrs["fg"], attrs["bg"]))
    return Batch(images=images, captions=captions, attributes=attributes)
