"""Exercise 1: same model, different sampler."""
from __future__ import annotations

import pytest

from sampler_claims.checks import same_weights, state_hash
from sampler_claims.engine import Request
from sampler_claims.schedulers import SchedulerSpec

pytestmark = pytest.mark.exercise1

#: The lesson's three configurations; DDPM needs trailing spacing at 1000 steps (see lesson-code-runs).
LESSON_SAMPLERS = {
    "ddpm": (SchedulerSpec.of("ddpm", timestep_spacing="trailing"), 1000),
    "ddim": (SchedulerSpec.of("ddim"), 50),
    "dpm-solver": (SchedulerSpec.of("dpm-solver"), 20),
}


@pytest.mark.claim("same-weights")
def test_same_weights(claim, engine, prompts):
    prompt, seed = prompts.single("exercise1")
    hashes = {"before any run": state_hash(engine.pipe.unet)}
    for name, (spec, _steps) in LESSON_SAMPLERS.items():
        engine.generate(Request(spec, 2, (seed,), prompt), cached=False)
        hashes[f"after swapping to and sampling with {spec.label}"] = state_hash(engine.pipe.unet)
    holds, why = same_weights(hashes)
    claim.metric(hashes=hashes)
    claim.key(f"1 distinct U-Net hash over {len(hashes)} checkpoints" if holds else why)
    claim.judge(holds, why)
    assert holds, why
