"""Convergence to a reference: the DPM-Solver++ paper's own measure of a sampler on Stable Diffusion.

For the deterministic (ODE) samplers the output is a function of z_T alone, so a sampler at few steps can
be judged by its distance to a converged solution from the same z_T: no extra weights, every model.
Two distances per seed:
- latent MSE: mean squared difference of the final latents (Generation.latents), before the VAE;
- SSIM of the decoded images (uint8, as everywhere in the suite).

The reference is DPM-Solver++ at 200 steps (the claim's `convergence_reference`). It is only a reference if
it is itself converged, so each run checks that (`reference_check`): per seed, the RMS latent distance of
the reference to a coarser solution (DPM-Solver++@100) over that of the known-bad DPM-Solver++@5 (the
claim's `reference_check`), with its 95% interval at or under its `converged_ratio`. A reference that fails the check makes every
convergence statement inconclusive (`gated_reference`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .engine import Generation
from .metrics import ssim
from .registry import Control, Run
from .verdict import Separation, Verdict, at_most, inconclusive, separation, t_interval

def latent_mse(latents: torch.Tensor, reference: torch.Tensor) -> list[float]:
    """Per seed: mean squared difference of final latents k and reference k (same z_T)."""
    if latents.shape != reference.shape:
        raise ValueError(f"latents {tuple(latents.shape)} against reference {tuple(reference.shape)}")
    d = (latents.double() - reference.double()) ** 2
    return [float(x) for x in d.flatten(1).mean(1)]


def image_ssim(images: np.ndarray, reference: np.ndarray) -> list[float]:
    if len(images) != len(reference):
        raise ValueError(f"{len(images)} images against {len(reference)} references")
    return [ssim(a, b) for a, b in zip(images, reference)]


@dataclass(frozen=True)
class Distance:
    """One generation's distance to the reference, per seed."""

    label: str
    mse: list[float]
    ssim: list[float] | None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "latent_mse": t_interval(self.mse).as_dict(),
                **({"ssim": t_interval(self.ssim).as_dict()} if self.ssim is not None else {})}


def distance(gen: Generation, reference: Generation, label: str = "") -> Distance:
    """Per seed, `gen`'s distance to the reference from the same z_T. A generation on a longer roster than the
    reference's (registry.DDPM_SEEDS) is compared on the reference's seeds, which are its first ones."""
    n = len(reference.request.seeds)
    seeds = tuple(gen.request.seeds)
    if seeds[:n] != tuple(reference.request.seeds):
        raise ValueError(f"the reference's seeds {tuple(reference.request.seeds)[:4]}... are not the first of "
                         f"{seeds[:4]}...: a distance needs the same z_T")
    s = None
    if gen.images is not None and reference.images is not None:
        s = image_ssim(gen.images[:n], reference.images)
    return Distance(label or gen.request.label, latent_mse(gen.latents[:n], reference.latents), s)


@dataclass(frozen=True)
class ReferenceCheck:
    """Is the reference converged? Per seed, RMS distance to the coarser solution over that of the bad one."""

    reference: str
    coarser: str
    bad: str
    ratios: list[float]
    bound: float

    @property
    def verdict(self) -> Verdict:
        return at_most(t_interval(self.ratios), self.bound,
                       f"reference {self.reference}: RMS latent distance to {self.coarser} / to {self.bad}")

    @property
    def converged(self) -> bool:
        return self.verdict.verdict == "confirmed"

    def __str__(self) -> str:
        word = "is converged" if self.converged else "is NOT shown converged"
        return f"{self.reference} {word}: {self.verdict.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "coarser": self.coarser, "bad": self.bad,
                "ratio": t_interval(self.ratios).as_dict(), "bound": self.bound, "converged": self.converged}


def reference_check(reference: Generation, coarser: Generation, bad: Generation, *, bound: float,
                    labels: tuple[str, str, str] | None = None) -> ReferenceCheck:
    """The reference's own convergence: per seed sqrt(MSE(ref, coarser)) / sqrt(MSE(ref, bad))."""
    near = latent_mse(coarser.latents, reference.latents)
    far = latent_mse(bad.latents, reference.latents)
    ratios = [float(np.sqrt(a / b)) if b > 0 else float("inf") for a, b in zip(near, far)]
    r, c, b = labels or (reference.request.label, coarser.request.label, bad.request.label)
    return ReferenceCheck(r, c, b, ratios, bound)


def control(good: Generation, bad: Generation, reference: Generation, good_label: str, bad_label: str) -> Separation:
    """Does latent MSE to the reference separate a good solution from a bad one (lower is better)?"""
    return separation("latent MSE to the reference", latent_mse(good.latents, reference.latents),
                      latent_mse(bad.latents, reference.latents), good_label, bad_label, higher_is_better=False)


def gated_reference(check: ReferenceCheck | None, verdict: Verdict) -> Verdict:
    """A verdict that compares with the reference decides only if the reference passed its own check."""
    if check is None:
        return verdict
    nums = dict(verdict.numbers)
    nums["reference_check"] = check.as_dict()
    if not check.converged:
        return inconclusive(f"the reference is not shown converged, so nothing can be measured against it: {check}",
                            reference_check=check.as_dict())
    return Verdict(verdict.verdict, f"{verdict.reason} [reference check: {check}]", nums, verdict.seeds_needed)


def ranks_in_order(values: Sequence[float], lower_is_better: bool) -> bool:
    """True when the values improve strictly along the sequence (e.g. 5 < 10 < 20 steps)."""
    v = [-x for x in values] if lower_is_better else list(values)
    return all(b > a for a, b in zip(v, v[1:]))


@dataclass
class Basis:
    """The run's convergence basis: the reference, its own check, and the metric's control."""

    reference: Generation
    check: ReferenceCheck
    control: Separation
    reference_label: str

    def distance(self, gen: Generation, label: str = "") -> Distance:
        return distance(gen, self.reference, label)

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference_label, "reference_check": self.check.as_dict(),
                "control": self.control.as_dict()}


def basis(engine: Any, roster: Any, *, reference: Run, check: Control, pair: Control, bound: float) -> Basis:
    """Generate (or take from the cache) what the convergence metric needs over the roster and check it:
    the `reference`, the two solutions of its own `check`, and the metric's control `pair`."""
    from .schedulers import SchedulerSpec

    runs = {reference, check.good_run, check.bad_run, pair.good_run, pair.bad_run}
    gens = {r: engine.generate(roster.request(SchedulerSpec.of(r.sampler), r.steps)) for r in runs}
    ref = gens[reference]
    result = reference_check(ref, gens[check.good_run], gens[check.bad_run], bound=bound,
                             labels=(reference.label, check.good_run.label, check.bad_run.label))
    return Basis(ref, result, control(gens[pair.good_run], gens[pair.bad_run], ref, pair.good_run.label,
                                      pair.bad_run.label), reference.label)
