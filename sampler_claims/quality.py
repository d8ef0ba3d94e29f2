"""Quality of a batch of images: prompt adherence where the model has a checker, and no-reference stats.

The embedded model's world has an independent checker (sampler_claims.tinyshapes.checker) that reads
shape and colours from pixels. SD 1.5 has none here, so its quality verdicts rest on residual noise and
sharpness alone, and the claim says so.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import Estimate, mean_ci, proportion_ci, residual_noise, sharpness


@dataclass(frozen=True)
class QualityStats:
    adherence: Estimate | None
    noise: Estimate
    sharpness: Estimate
    per_image: list[bool] | None = None

    def as_dict(self) -> dict:
        out = {"noise_sigma": self.noise.as_dict(), "sharpness": self.sharpness.as_dict()}
        if self.adherence is not None:
            out["adherence"] = self.adherence.as_dict()
        return out


class Quality:
    def __init__(self, has_checker: bool) -> None:
        self.has_checker = has_checker

    @property
    def basis(self) -> str:
        return ("prompt adherence from the tiny world's independent checker, plus residual noise"
                if self.has_checker else "no-reference statistics only (residual noise, sharpness): no checker")

    def adherence(self, images: np.ndarray, prompts: Sequence[str]) -> tuple[Estimate, list[bool]] | None:
        if not self.has_checker:
            return None
        from .tinyshapes import checker

        result = checker.adherence(list(images), list(prompts))
        per = [bool(x) for x in result["per_image"]]
        return proportion_ci(sum(per), len(per)), per

    def measure(self, images: np.ndarray, prompts: Sequence[str]) -> QualityStats:
        adh = self.adherence(images, prompts)
        return QualityStats(
            adherence=adh[0] if adh else None,
            noise=mean_ci([residual_noise(im) for im in images]),
            sharpness=mean_ci([sharpness(im) for im in images]),
            per_image=adh[1] if adh else None,
        )
