"""Shared pieces of the negative controls: a guard-free engine over the fast random pipeline, a way to
break a scheduler's step, and synthetic per-seed scores and timing rounds for the statistical rules."""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sampler_claims.engine import Request
from sampler_claims.schedulers import SchedulerSpec
from sampler_claims.timing import Rounds, unet_samples

STEPS = 4  # the identity rules do not depend on the step count; 4 keeps each run a few milliseconds
PROMPT = "a red circle"
SEED = 7


def req(spec: SchedulerSpec, *, eta: float = 0.0, fixed_zT: bool = False, steps: int = STEPS) -> Request:
    return Request(spec, steps, (SEED,), PROMPT, eta=eta, latents_seed=SEED if fixed_zT else None)


def patch_step(monkeypatch: pytest.MonkeyPatch, cls: type, change: Any) -> None:
    """Replace cls.step by a wrapper; `change(original, self, args, kwargs)` returns the step's output."""
    original = cls.step

    @functools.wraps(original)  # keeps the signature, so the pipeline still passes eta and generator
    def step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return change(original, self, args, kwargs)

    monkeypatch.setattr(cls, "step", step)


def scores(mean: float, n: int = 32, sd: float = 0.02, seed: int = 0) -> list[float]:
    """n per-seed scores around `mean`: a synthetic sampler whose quality is known."""
    return list(np.random.default_rng(seed).normal(mean, sd, n))


def shifted(base: list[float], by: float, sd: float = 0.01, seed: int = 1) -> list[float]:
    """The same seeds as `base`, each moved by `by` plus a little paired noise."""
    noise = np.random.default_rng(seed).normal(0, sd, len(base))
    return [b + by + e for b, e in zip(base, noise)]


def rounds(seconds: dict[str, list[float]], calls: dict[str, int], device: str = "cpu") -> Rounds:
    """Timing rounds as sampler_claims.timing records them, from made-up times (the same on both clocks)."""
    names = list(seconds)
    n = len(next(iter(seconds.values())))
    return Rounds(device, names, {k: list(v) for k, v in seconds.items()}, {k: list(v) for k, v in seconds.items()},
                  dict(calls), {k: [2] * c for k, c in calls.items()}, [names] * n)


class TimedEngine:
    """A stand-in engine for the timing rounds whose per-call time is known: seconds = overhead + per_sample x U-Net samples, times a factor from `noise(name, k)`."""

    device = "cpu"

    def __init__(self, configs, overhead=0.01, per_sample=0.0005, noise=None, extra=None):
        self.names = {id(r): n for n, r in configs.items()}
        self.overhead, self.per_sample = overhead, per_sample
        self.noise = noise or (lambda name, k: 1.0)
        self.extra = extra or {}
        self.calls: list[str] = []

    def generate(self, req, cached=True):  # noqa: ANN001, ANN201
        name = self.names.get(id(req), "warm-up")
        self.calls.append(name)
        samples = unet_samples(req) * self.extra.get(name, 1)  # extra: U-Net work the counter does not see
        t = (self.overhead + self.per_sample * samples) * self.noise(name, len(self.calls))
        return SimpleNamespace(seconds=t, cpu_seconds=t, unet_calls=req.steps,
                               unet_batch_sizes=[2 if req.guidance > 1 else 1] * req.steps)
