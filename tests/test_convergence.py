"""Convergence to a reference (sampler_claims/convergence.py) and its negative control: a reference that is not
converged is caught, and every statement against it becomes inconclusive (the CLIP path's second metric)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sampler_claims import registry
from sampler_claims.convergence import (
    control,
    distance,
    gated_reference,
    latent_mse,
    ranks_in_order,
    reference_check,
)
from sampler_claims.rules.exercise3 import no_gain_past_25
from sampler_claims.verdict import separation

BOUND = registry.CONVERGED_RATIO.value


def _gen(latents: torch.Tensor, seeds: tuple[int, ...] | None = None):
    seeds = tuple(range(len(latents))) if seeds is None else seeds
    return SimpleNamespace(latents=latents, images=None, request=SimpleNamespace(label="x", seeds=seeds))


def test_a_longer_roster_is_compared_on_the_references_seeds():
    """comparable-quality's generations run on DDPM_SEEDS x the roster, the convergence reference on the roster:
    the distance reads the reference's seeds, the generation's first ones, and refuses other seeds."""
    ref = _gen(torch.zeros(2, 4, 2, 2), (7, 8))
    longer = _gen(torch.cat([torch.ones(2, 4, 2, 2), 9 * torch.ones(2, 4, 2, 2)]), (7, 8, 9, 10))
    assert distance(longer, ref).mse == [1.0, 1.0]
    with pytest.raises(ValueError, match="same z_T"):
        distance(_gen(torch.ones(2, 4, 2, 2), (8, 7)), ref)


def _solutions(n: int = 16):
    """A made-up ODE: the exact solution x, and k-step solutions whose error shrinks as 1/k^2 (second order)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, 8, 8, generator=g)
    direction = torch.randn(n, 4, 8, 8, generator=g)
    wobble = torch.randn(n, 4, 8, 8, generator=g)
    return {k: _gen(x + (25.0 / k ** 2) * (direction + 0.3 * wobble * (k % 7) / 7)) for k in (5, 10, 20, 100, 200)}


def test_latent_mse_per_seed():
    a = torch.zeros(2, 4, 2, 2)
    b = torch.ones(2, 4, 2, 2)
    b[1] *= 2
    assert latent_mse(b, a) == [1.0, 4.0]


def test_a_converged_reference_passes_its_check():
    s = _solutions()
    check = reference_check(s[200], s[100], s[5], bound=BOUND)
    assert check.converged, str(check)


def test_a_reference_that_is_not_converged_is_caught():
    """DPM@10 posing as the reference: its distance to the 100-step solution is not small against the 5-step one."""
    s = _solutions()
    fake = reference_check(s[10], s[100], s[5], bound=BOUND)
    assert not fake.converged
    assert fake.verdict.verdict == "refuted"
    v = gated_reference(fake, no_gain_past_25([0.9] * 16, [0.9] * 16,
                                              separation("score", [1.0] * 8 + [1.1] * 8, [0.0] * 16, "good", "bad"),
                                              margin=0.05))
    assert v.verdict == "inconclusive" and "not shown converged" in v.reason


def test_the_convergence_control_and_ranking():
    s = _solutions()
    sep = control(s[20], s[5], s[200], "DPM-Solver@20", "DPM-Solver@5")
    assert sep.separates and not sep.higher_is_better
    d = [float(np.mean(latent_mse(s[k].latents, s[200].latents))) for k in (5, 10, 20)]
    assert ranks_in_order(d, lower_is_better=True)
    assert not ranks_in_order(d[::-1], lower_is_better=True)


@pytest.mark.slow
def test_on_the_embedded_model_dpm10_is_caught_as_a_reference_and_dpm200_is_not():
    """The real thing, on 3 seeds of the embedded model: DPM-Solver++@200 is converged, @10 is not."""
    from sampler_claims.engine import Engine
    from sampler_claims.models import native_size
    from sampler_claims.paths import TINY_MODEL
    from sampler_claims.schedulers import SchedulerSpec
    from diffusers import StableDiffusionPipeline
    from sampler_claims.quality import Roster

    torch.set_num_threads(1)
    pipe = StableDiffusionPipeline.from_pretrained(TINY_MODEL, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    engine = Engine(pipe, model_key="tiny-test", size=native_size(pipe), device="cpu")
    roster = Roster(("a red circle", "a white square",
                     "a green triangle"), (1, 2, 3))
    dpm = SchedulerSpec.of("dpm-solver")
    g = {s: engine.generate(roster.request(dpm, s)) for s in (5, 10, 100, 200)}
    assert reference_check(g[200], g[100], g[5], bound=BOUND).converged
    assert not reference_check(g[10], g[100], g[5], bound=BOUND).converged
