"""Per-image quality scores and the control that validates them.

The embedded model's world has an independent checker (sampler_claims.tinyshapes.checker) that reads
shape and colours from pixels; its continuous per-image score is what the quality claims pair by seed.
SD 1.5 has no checker here: its quality claims are inconclusive and say so, rather than resting on a
proxy that was never shown to separate a good sampler from a bad one.

Every quality claim decides only through `gated(control, ...)`: the score must separate the converged
DPM-Solver@200 (known good) from DPM-Solver@5 (known bad) on the same seeds in the same run.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .engine import Engine, Generation, Request
from .metrics import residual_noise, sharpness
from .schedulers import SchedulerSpec
from .verdict import Separation, separation

#: The control pair of every quality claim (registry QUALITY_CONTROL).
CONTROL_SPEC = SchedulerSpec.of("dpm-solver")
CONTROL_GOOD_STEPS = 200
CONTROL_BAD_STEPS = 5
NO_CHECKER = ("no validated quality metric on this model: the embedded model's checker only reads its own "
              "shapes world, and a reference-free proxy (noise, sharpness) was never shown to separate a good "
              "sampler from a bad one; run on the embedded model (--model tiny) for a quality verdict")


@dataclass(frozen=True)
class Roster:
    """The prompt-seed pairs every statistical claim shares, so that their generations are shared too."""

    prompts: tuple[str, ...]
    seeds: tuple[int, ...]

    def request(self, spec: SchedulerSpec, steps: int, **kw: object) -> Request:
        return Request(spec, steps, self.seeds, self.prompts, **kw)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.seeds)


class Quality:
    """Scores of generated images against their prompts, computed once per generation."""

    def __init__(self, has_checker: bool) -> None:
        self.has_checker = has_checker
        self._cache: dict[int, tuple[Generation, list]] = {}

    @property
    def basis(self) -> str:
        return ("checker score (tiny world: shape IoU and two colour scores, each 0..1), paired by seed"
                if self.has_checker else NO_CHECKER)

    def readings(self, gen: Generation) -> list | None:
        """The checker's Scores per image of a generation (None without a checker)."""
        if not self.has_checker:
            return None
        key = id(gen)
        if key not in self._cache:
            from .tinyshapes import checker

            self._cache[key] = (gen, checker.adherence(list(gen.images), gen.request.prompts)["scores"])
        return self._cache[key][1]

    def scores(self, gen: Generation) -> list[float] | None:
        r = self.readings(gen)
        return None if r is None else [s.score for s in r]

    def matches(self, gen: Generation) -> list[bool] | None:
        """Pass/fail per image (the checker's match: all three attributes read as asked)."""
        if not self.has_checker:
            return None
        from .tinyshapes import checker

        return checker.adherence(list(gen.images), gen.request.prompts)["per_image"]

    def control(self, engine: Engine, roster: Roster) -> tuple[Separation | None, Generation, Generation]:
        """The quality control of this run: does the score separate DPM-Solver@200 from DPM-Solver@5?"""
        good = engine.generate(roster.request(CONTROL_SPEC, CONTROL_GOOD_STEPS))
        bad = engine.generate(roster.request(CONTROL_SPEC, CONTROL_BAD_STEPS))
        g, b = self.scores(good), self.scores(bad)
        if g is None or b is None:
            return None, good, bad
        return separation("checker score", g, b, f"DPM-Solver@{CONTROL_GOOD_STEPS}",
                          f"DPM-Solver@{CONTROL_BAD_STEPS}"), good, bad


def noise_per_image(images: np.ndarray) -> list[float]:
    """Residual noise sigma (skimage estimate_sigma, 0..255) of each image."""
    return [residual_noise(im) for im in images]


def sharpness_per_image(images: Sequence[np.ndarray]) -> list[float]:
    return [sharpness(im) for im in images]
