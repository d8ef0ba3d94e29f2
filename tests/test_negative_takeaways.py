"""Negative controls of the takeaways: recommended-default turns when the default is slow, or far from the
converged quality, or when its metric fails its control."""
from __future__ import annotations

import pytest

from negative_support import scores, shifted
from sampler_claims import registry
from sampler_claims.rules.takeaways import recommended_default, time_shares
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation

T = registry.get("recommended-default").t
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")


def _default(gap: float = 0.0, share: float = 0.02, control=CONTROL):
    ref = scores(0.85)
    sc = {20: shifted(ref, -gap, seed=20), 25: shifted(ref, -gap, seed=25)}
    ddpm = [50.0, 51.0, 49.0, 50.5]
    shares = {s: time_shares([x * share for x in ddpm], ddpm) for s in sc}
    return recommended_default(ref, sc, shares, control, margin=T("comparable_margin"),
                               max_time_share=T("max_time_share"))


@pytest.mark.negative_of("recommended-default")
def test_recommended_default_confirms_a_cheap_converged_default():
    assert _default().verdict == CONFIRMED


@pytest.mark.parametrize("broken", [dict(share=0.5), dict(gap=0.3)], ids=["slow", "far-from-converged"])
@pytest.mark.negative_of("recommended-default")
def test_recommended_default_refutes_a_slow_or_unconverged_default(broken):
    v = _default(**broken)
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("recommended-default")
def test_recommended_default_quality_needs_a_validated_metric():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    assert _default(control=blind).verdict == INCONCLUSIVE
