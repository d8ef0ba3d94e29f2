"""Metrics on synthetic images: each must separate what it claims to separate."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sampler_claims import metrics


def pattern(seed: int = 0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 6, y * 6, (x + y) * 3], axis=-1) % 256
    blob = ((x - 12) ** 2 + (y - 16) ** 2 < 60)[..., None] * np.array([120, -60, 40])
    return np.clip(base + blob + rng.integers(0, 3, (size, size, 3)), 0, 255).astype(np.uint8)


def noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_ssim_is_one_for_identical_and_falls_with_noise() -> None:
    img = pattern()
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    unrelated = np.random.default_rng(9).integers(0, 256, img.shape, dtype=np.uint8)
    assert metrics.ssim(img, noisy(img, 10)) > metrics.ssim(img, noisy(img, 40)) > metrics.ssim(img, unrelated)


def test_ssim_rejects_float_images() -> None:
    with pytest.raises(TypeError, match="uint8"):
        metrics.ssim(pattern().astype(float), pattern().astype(float))


def test_pixel_identity_and_difference() -> None:
    a = pattern()
    b = a.copy()
    b[0, 0, 0] = a[0, 0, 0] + 7
    assert metrics.pixel_identical(a, a.copy()) and not metrics.pixel_identical(a, b)
    d = metrics.difference(a, b)
    assert (d.identical, d.max_abs) == (False, 7) and d.mean_abs == pytest.approx(7 / a.size)


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_images_are_never_identical(value: int) -> None:
    blank = np.full((16, 16, 3), value, np.uint8)
    with pytest.raises(metrics.BlankImageError):
        metrics.pixel_identical(blank, blank.copy())


def test_residual_noise_rises_with_added_noise() -> None:
    img = pattern()
    levels = [metrics.residual_noise(noisy(img, s)) for s in (0.01, 5, 15, 30)]
    assert levels == sorted(levels) and levels[-1] > 3 * levels[1]


def test_guard_passes_real_images_and_stops_blank_and_nan() -> None:
    imgs = np.stack([pattern(0), pattern(1)])
    metrics.guard(imgs, torch.zeros(2, 4, 4, 4), "ok")
    with pytest.raises(metrics.GenerationError, match=r"cfg X: image\(s\) \[1\]"):
        metrics.guard(np.stack([pattern(0), np.zeros((32, 32, 3), np.uint8)]), None, "cfg X")
    with pytest.raises(metrics.GenerationError, match="cfg Y: 1 NaN"):
        metrics.guard(imgs, torch.tensor([0.0, float("nan")]), "cfg Y")


def test_band_settling_sees_low_frequencies_settle_first() -> None:
    from skimage.filters import gaussian

    final = pattern().astype(np.float64)
    rng = np.random.default_rng(3)
    series = []
    for k in range(6):  # coarse first: the fine noise shrinks late, the blur error shrinks early
        coarse_err = gaussian(rng.normal(0, 40, final.shape), sigma=3, channel_axis=-1) * max(0, 2 - k)
        fine_err = rng.normal(0, 30, final.shape) * max(0, 5 - k) / 5
        series.append(final + coarse_err + fine_err)
    low, *_, high = metrics.band_settling(series, final, rel=0.1)
    assert low is not None and high is not None and low < high
