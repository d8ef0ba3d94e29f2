"""The sampler atlas: every scheduler the pipeline lists as compatible, from the stock config, on the same
roster, on a grid of counted U-Net calls, measured for quality, convergence and cost.

Why a grid of calls, not steps: samplers spend different numbers of U-Net calls per step (Heun and KDPM2
2N-1, PNDM N+1), and calls are what cost. The grid is default-on-front's declared runs (its catalogue entry):
each scheduler at the step count whose calls land on the grid, so that the plan counts exactly what the atlas
makes; the calls of each run are counted and reported, never assumed. A scheduler that cannot run (a missing
optional dependency, an error, NaN or blank output), or a compatible one the catalogue declares no runs for,
is listed with its reason, never dropped.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Engine, Generation
from .metrics import ssim
from .quality import Quality
from .runs import RunSpec
from .schedulers import LABELS, STOCHASTIC, compatible_names, make_scheduler


@dataclass
class AtlasPoint:
    scheduler: str
    steps: int
    calls: int
    seconds: float
    cpu_seconds: float
    scores: list[float] | None = None
    ssim_to_ref: list[float] | None = None

    @property
    def label(self) -> str:
        return f"{LABELS.get(self.scheduler, self.scheduler)}@{self.steps}"

    @property
    def mean_score(self) -> float | None:
        return None if self.scores is None else float(np.mean(self.scores))

    @property
    def seconds_per_call(self) -> float:
        return self.seconds / max(self.calls, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler, "steps": self.steps, "calls": self.calls,
                "seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu_seconds, 4),
                "seconds_per_call": round(self.seconds_per_call, 6), "mean_score": self.mean_score,
                "mean_ssim_to_reference": None if self.ssim_to_ref is None else float(np.mean(self.ssim_to_ref))}


@dataclass
class Atlas:
    points: list[AtlasPoint] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # scheduler -> why it could not run
    reference: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"points": [p.as_dict() for p in self.points], "failed": self.failed, "reference": self.reference}


def compatible(engine: Engine) -> list[str]:
    """Short names of the schedulers the pipeline lists as compatible (its stock scheduler's compatibles)."""
    return compatible_names(engine.pipe.scheduler)


def run_atlas(engine: Engine, runs: Sequence[RunSpec], generate: Callable[[RunSpec], Generation], quality: Quality,
              reference: Any) -> Atlas:
    """Every declared run (default-on-front's, scheduler by scheduler in the order declared), made by `generate` (the
    claim's runs fixture: its seeds and cache); `reference` is the converged generation (same roster) that
    deterministic samplers' convergence is measured against. A compatible scheduler without runs is listed as not
    run."""
    atlas = Atlas(reference=reference.request.label)
    by_scheduler: dict[str, list[RunSpec]] = {}
    for run in runs:
        by_scheduler.setdefault(run.sampler, []).append(run)
    for name, mine in by_scheduler.items():
        try:
            if name not in LABELS:
                raise KeyError(f"{name}: not a scheduler this suite knows")
            make_scheduler(mine[0].spec(), engine.stock_config)  # a missing optional dependency fails here
            for run in mine:
                gen = generate(run)
                point = AtlasPoint(name, run.steps, gen.unet_calls, gen.seconds, gen.cpu_seconds, quality.scores(gen))
                if name not in STOCHASTIC:
                    point.ssim_to_ref = [ssim(a, b) for a, b in zip(gen.images, reference.images)]
                atlas.points.append(point)
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            atlas.failed[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
    for name in compatible(engine):
        if name not in by_scheduler:
            atlas.failed[name] = "compatible, but default-on-front's catalogue entry declares no runs for it"
    return atlas


def pareto_front(points: list[AtlasPoint], cost: str = "calls") -> list[AtlasPoint]:
    """Points no other point beats on both cost (fewer calls or seconds) and mean score (higher)."""
    scored = [p for p in points if p.mean_score is not None]

    def c(p: AtlasPoint) -> float:
        return p.calls if cost == "calls" else p.seconds

    return sorted([p for p in scored if not any(
        c(q) <= c(p) and q.mean_score >= p.mean_score and (c(q) < c(p) or q.mean_score > p.mean_score)
        for q in scored)], key=c)


def calls_to_reach(points: list[AtlasPoint], target: float) -> dict[str, int | None]:
    """Per scheduler, the fewest grid calls whose mean score reaches `target` (None: not on this grid)."""
    out: dict[str, int | None] = {}
    for p in sorted(points, key=lambda p: p.calls):
        out.setdefault(p.scheduler, None)
        if out[p.scheduler] is None and p.mean_score is not None and p.mean_score >= target:
            out[p.scheduler] = p.calls
    return out
