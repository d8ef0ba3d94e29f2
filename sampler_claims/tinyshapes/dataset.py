"""A seeded procedural generator of captioned 32x32 images: one named shape in an unnamed scene.

Why procedural: the tiny model's training data and the checker's ground truth come from the same
exactly reproducible source, so the whole fixture can be rebuilt from a seed, with no download.

What the caption fixes, and what it leaves to the noise: the caption names the shape and its colour.
Everything else is drawn independently of it: the background colour (anywhere in the RGB cube, kept
clearly apart from the shape's colour so the shape stays visible), a lighting gradient across it in a
random direction, the shape's size, position and its fine stripes. So most of the image's variance is
caption-independent, as it is for a Stable Diffusion caption, and classifier-free guidance has only a
small share of the image to amplify (`caption_share` measures it).

Why stripes: samplers differ mostly in how well they resolve fine detail; the shape carries fine
sinusoidal shading that a coarse sampler blurs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .vocab import COLORS, SHAPES, caption

#: Image side in pixels.
SIZE = 32
#: Shape bounding-box side as a fraction of the image side (9 to 14.4 pixels). Smaller than version 2's
#: 40-75%: the shape's coverage of a pixel, averaged over positions, sets how much of the image the caption
#: fixes. Measured before training, with a VAE trained 800 steps on each candidate (between-caption share
#: of the latents): 0.35-0.55 gave 12.7%, 0.28-0.45 gave 6.8%; small unnamed clutter shapes beside the
#: named one moved it by less than a point, so the world has none.
MIN_FRAC, MAX_FRAC = 0.28, 0.45
#: Pixels kept free between the shape and the image border, so the outer two pixel rings show
#: background only; the checker reads the background there.
MARGIN = 2.0
#: Supersampling factor for anti-aliased shape edges (coverage is the mean of SS*SS sub-pixels).
SS = 4
#: Background lighting gradient: shading factor runs over +-GRADIENT across the image.
GRADIENT = (0.10, 0.30)
#: The background colour is drawn uniformly in the RGB cube but at least this far (RGB Euclidean) from
#: the shape's colour: three times the checker's foreground distance, so stripes and gradient never
#: bring the two within it.
MIN_CONTRAST = 120.0
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
    """A shape and a colour, uniformly at random."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    fg = COLOR_NAMES[rng.integers(len(COLOR_NAMES))]
    return {"shape": shape, "fg": fg}


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


def background_colour(rng: np.random.Generator, fg: np.ndarray) -> np.ndarray:
    """A colour anywhere in the RGB cube, at least MIN_CONTRAST from the shape's colour."""
    while True:
        bg = rng.uniform(0.0, 255.0, size=3)
        if np.linalg.norm(bg - fg) >= MIN_CONTRAST:
            return bg


def render(rng: np.random.Generator, attrs: dict[str, str]) -> np.ndarray:
    """Draw one image for the given attributes; every other property of the scene is random."""
    side = rng.uniform(MIN_FRAC, MAX_FRAC) * SIZE
    half = side / 2.0
    cx = rng.uniform(MARGIN + half, SIZE - MARGIN - half)
    cy = rng.uniform(MARGIN + half, SIZE - MARGIN - half)
    fg_rgb = np.array(COLORS[attrs["fg"]], dtype=np.float64)

    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    # Background: an unnamed colour under a linear lighting gradient in a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    proj = ((xs - SIZE / 2) * np.cos(theta) + (ys - SIZE / 2) * np.sin(theta)) / (SIZE / 2)
    bg = shade(background_colour(rng, fg_rgb), rng.uniform(*GRADIENT) * np.clip(proj, -1, 1))
    # Shape: fine sinusoidal stripes at a random angle, period and phase.
    phi = rng.uniform(0, np.pi)
    period = rng.uniform(*STRIPE_PERIOD)
    wave = np.sin(2 * np.pi * (xs * np.cos(phi) + ys * np.sin(phi)) / period + rng.uniform(0, 2 * np.pi))
    fg = shade(fg_rgb, STRIPE_AMP * wave)

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
        captions.append(caption(attrs["shape"], attrs["fg"]))
    return Batch(images=images, captions=captions, attributes=attributes)


def caption_share(x: np.ndarray, captions: list[str]) -> dict[str, float]:
    """Between-caption share of the variance of images or latents x ([n, ...], any layout).

    sum over elements of Var(E[x | caption]) / Var(x): the part of the data a caption fixes. This is
    what classifier-free guidance amplifies at high noise, where the conditional and unconditional
    predictions differ by about E[x | caption] - E[x]. `share` is the plain estimate; `share_unbiased`
    removes the finite-sample excess of the per-caption means (within-caption variance / caption count).
    """
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    mu = flat.mean(0)
    total = float(((flat - mu) ** 2).sum(1).mean())
    caps = np.asarray(captions)
    between = within = 0.0
    for c in np.unique(caps):
        rows = flat[caps == c]
        between += len(rows) * float(((rows.mean(0) - mu) ** 2).sum())
        within += float(((rows - rows.mean(0)) ** 2).sum())
    n, k = len(flat), len(np.unique(caps))
    between /= n
    within_var = within / max(n - k, 1)  # pooled per-image within-caption variance
    unbiased = between - (k - 1) / n * within_var
    return {"share": between / total, "share_unbiased": max(unbiased, 0.0) / total, "n": n, "captions": k}
