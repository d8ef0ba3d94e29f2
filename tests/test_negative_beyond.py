"""Negative controls of the claims beyond the lesson: default-on-front, final-sigma-zero,
karras-sigmas-few-steps and lower-order-final turn their verdicts when the property is broken."""
from __future__ import annotations

import numpy as np
import pytest

from negative_support import scores, shifted
from sampler_claims import registry
from sampler_claims.atlas import Atlas, AtlasPoint, calls_to_reach, pareto_front
from sampler_claims.rules.beyond import default_on_front, final_sigma_zero, gain_at_steps
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation

MARGIN = registry.get("default-on-front").t("comparable_margin")
HALF = registry.get("default-on-front").t("half_the_calls")
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")
BLIND = separation("score", scores(0.8), scores(0.8), "good", "bad")


def _atlas(cheap_gap: float) -> tuple[Atlas, AtlasPoint]:
    base = scores(0.85)
    default = AtlasPoint("dpm-solver", 20, 20, 1.0, 1.0, base)
    pts = [AtlasPoint("ddim", 10, 10, 0.5, 0.5, shifted(base, cheap_gap, seed=2)),
           AtlasPoint("euler", 5, 5, 0.25, 0.25, shifted(base, -0.4, seed=3)),
           AtlasPoint("ddim", 50, 50, 2.5, 2.5, shifted(base, 0.0, seed=4)), default]
    return Atlas(pts), default


@pytest.mark.negative_of("default-on-front")
def test_default_on_front_confirms_when_every_cheap_sampler_is_clearly_worse():
    atlas, default = _atlas(-0.3)
    assert default_on_front(atlas, default, CONTROL, margin=MARGIN, half_the_calls=HALF).verdict == CONFIRMED


@pytest.mark.negative_of("default-on-front")
def test_a_sampler_as_good_at_half_the_calls_refutes_it_and_is_named():
    atlas, default = _atlas(0.0)
    v = default_on_front(atlas, default, CONTROL, margin=MARGIN, half_the_calls=HALF)
    assert v.verdict == REFUTED and "DDIM@10" in v.reason


@pytest.mark.negative_of("default-on-front")
def test_default_on_front_needs_a_validated_metric():
    atlas, default = _atlas(0.0)
    assert default_on_front(atlas, default, BLIND, margin=MARGIN, half_the_calls=HALF).verdict == INCONCLUSIVE
    assert default_on_front(atlas, default, None, margin=MARGIN, half_the_calls=HALF).verdict == INCONCLUSIVE


@pytest.mark.negative_of("default-on-front")
def test_pareto_front_and_calls_to_reach():
    atlas, _ = _atlas(0.1)
    front = pareto_front(atlas.points)
    assert [p.label for p in front] == ["Euler@5", "DDIM@10"]  # cheapest, then best; the rest are dominated
    reach = calls_to_reach(atlas.points, 0.9)
    assert reach["ddim"] == 10 and reach["euler"] is None


def _noisy(sd: float, n: int = 16, seed: int = 0) -> list[float]:
    return list(np.random.default_rng(seed).normal(sd, 0.1, n))


@pytest.mark.negative_of("final-sigma-zero")
def test_final_sigma_zero_turns_with_the_residual_noise():
    noise_ok = separation("residual noise", _noisy(6.0), _noisy(1.0, seed=1), "noisy", "clean")
    assert final_sigma_zero(_noisy(2.0), _noisy(1.0, seed=2), noise_ok).verdict == CONFIRMED
    assert final_sigma_zero(_noisy(1.0), _noisy(1.0), noise_ok).verdict == REFUTED  # the same: nothing removed
    noise_blind = separation("residual noise", _noisy(1.0), _noisy(1.0), "noisy", "clean")
    assert final_sigma_zero(_noisy(2.0), _noisy(1.0, seed=2), noise_blind).verdict == INCONCLUSIVE


@pytest.mark.negative_of("karras-sigmas-few-steps", "lower-order-final")
def test_an_option_that_helps_at_every_step_count_is_confirmed_and_one_that_hurts_refuted():
    base = {s: scores(0.6, seed=s) for s in (5, 10)}
    helps = {s: shifted(v, 0.1, seed=s + 1) for s, v in base.items()}
    hurts = {s: shifted(v, -0.1, seed=s + 1) for s, v in base.items()}
    assert gain_at_steps(helps, base, CONTROL, "x").verdict == CONFIRMED
    assert gain_at_steps(hurts, base, CONTROL, "x").verdict == REFUTED
    assert gain_at_steps(base, base, CONTROL, "x").verdict == REFUTED  # identical configs: no gain at all
    assert gain_at_steps(helps, base, BLIND, "x").verdict == INCONCLUSIVE
    assert gain_at_steps({}, {}, None, "x").verdict == INCONCLUSIVE
