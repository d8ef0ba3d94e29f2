"""The measurements verdicts rest on, each small and tested on synthetic images.

SSIM and residual noise come from scikit-image (intervals live in sampler_claims.verdict); this module only
fixes the arguments (data range, channel axis) so that every claim measures the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity
from skimage.restoration import estimate_sigma

#: An image whose pixel range is at most this is "constant": blank, black or a flat colour.
CONSTANT_RANGE = 2


class GenerationError(AssertionError):
    """A generation produced NaNs or blank images; the message names the configuration."""


class BlankImageError(ValueError):
    """A blank image was compared for identity: two black images are not evidence of determinism."""


def _u8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise TypeError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
    return image


def is_constant(image: np.ndarray) -> bool:
    image = _u8(image)
    return int(image.max()) - int(image.min()) <= CONSTANT_RANGE


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 RGB images, data range 255, channels last."""
    a, b = _u8(a), _u8(b)
    win = min(7, min(a.shape[:2]) // 2 * 2 - 1)
    return float(structural_similarity(a, b, data_range=255, channel_axis=-1, win_size=win))


def pixel_identical(a: np.ndarray, b: np.ndarray) -> bool:
    """np.array_equal on uint8 images; refuses blank images, which are identical for the wrong reason."""
    a, b = _u8(a), _u8(b)
    if is_constant(a) or is_constant(b):
        raise BlankImageError("refusing to call blank or constant images identical: the generation failed")
    return bool(np.array_equal(a, b))


@dataclass(frozen=True)
class Difference:
    identical: bool
    mean_abs: float
    max_abs: int

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"identical": self.identical, "mean_abs": round(self.mean_abs, 4), "max_abs": self.max_abs}


def difference(a: np.ndarray, b: np.ndarray) -> Difference:
    identical = pixel_identical(a, b)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return Difference(identical, float(d.mean()), int(d.max()))


def residual_noise(image: np.ndarray) -> float:
    """Wavelet estimate of the Gaussian noise sigma left in an image, in 0..255 units."""
    return float(estimate_sigma(_u8(image).astype(np.float64), channel_axis=-1, average_sigmas=True))


def guard(images: np.ndarray, latents: torch.Tensor | None, label: str) -> None:
    """Fail loudly on NaN/inf latents or blank images, naming the configuration that made them."""
    if latents is not None and not torch.isfinite(latents).all():
        bad = int((~torch.isfinite(latents)).sum())
        raise GenerationError(f"{label}: {bad} NaN/inf values in the final latents (try --dtype float32)")
    blanks = [i for i, img in enumerate(images) if is_constant(img)]
    if blanks:
        raise GenerationError(
            f"{label}: image(s) {blanks} are blank or constant (range <= {CONSTANT_RANGE}); the sampler or the "
            "model produced no picture"
        )


def radial_band_energy(image: np.ndarray, bands: int = 3) -> np.ndarray:
    """Power of the grey image's spectrum in `bands` equal-width rings of radial frequency, low first."""
    grey = image.astype(np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h // 2, xx - w // 2) / (min(h, w) / 2)
    edges = np.linspace(0, 1, bands + 1)
    return np.array([power[(r > lo) & (r <= hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])])


def band_settling(series: Sequence[np.ndarray], final: np.ndarray, rel: float, bands: int = 3) -> list[int | None]:
    """For each band, the first index from which |x_i - final|'s band energy stays under rel x final's."""
    target = radial_band_energy(final, bands)
    errors = np.array([radial_band_energy(x.astype(np.float64) - final.astype(np.float64), bands) for x in series])
    settled: list[int | None] = []
    for b in range(bands):
        ok = errors[:, b] <= rel * max(target[b], 1e-12)
        idx = None
        for i in range(len(ok)):
            if ok[i:].all():
                idx = i
                break
        settled.append(idx)
    return settled
