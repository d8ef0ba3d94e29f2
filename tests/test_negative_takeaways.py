"""Negative controls of the takeaways: recommended-default turns when the default is slow, or far from the
converged quality, or when its metric fails its control.

The controls sit at the margins (see tests/test_negative_exercise1.py): differences at 0.8x and 1.5x of the
comparable margin and of the time-share bound, on both sides of the one-sided quality statement, through the
claim's own wiring (`decide_recommended_default` with a quality Judge on the catalogue entry). The fed values are
scaled from the margins as the controls state them, never from the entry, so an edited margin is caught.
"""
from __future__ import annotations

import pytest

from negative_support import scores, shifted
from sampler_claims import registry
from sampler_claims.quality_claim import Judge
from sampler_claims.rules.takeaways import candidates, decide_recommended_default, time_shares
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation

RD = registry.get("recommended-default")
#: The comparable margin as the entry's reference states it, and the time-share bound as it was when these controls
#: were written (a tenth of DDPM@1000's time).
MARGIN, MAX_SHARE = registry.COMPARABLE.value, 0.1
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")


def _default(gap: float = 0.0, share: float = 0.02, control=CONTROL):
    """The candidates of the entry's runs, each `gap` below the converged reference on the same seeds (negative: above
    it), each taking `share` of the baseline's time in every round."""
    judge = Judge("checker score", list, control, lambda m: m, RD.t)
    ref = scores(0.85)
    gens = {s: shifted(ref, -gap, seed=s) for s in candidates(RD)}
    baseline = [50.0, 51.0, 49.0, 50.5]
    shares = {s: time_shares([x * share for x in baseline], baseline) for s in gens}
    return decide_recommended_default(judge, ref, gens, shares)


@pytest.mark.negative_of("recommended-default")
def test_recommended_default_confirms_a_cheap_converged_default():
    assert _default().verdict == CONFIRMED


@pytest.mark.parametrize(("gap", "expected"), [(0.8, CONFIRMED), (1.5, REFUTED), (-1.5, CONFIRMED), (-0.8, CONFIRMED)],
                         ids=["0.8x-worse", "1.5x-worse", "1.5x-better", "0.8x-better"])
@pytest.mark.negative_of("recommended-default")
def test_recommended_default_quality_at_its_margin(gap, expected):
    """Converged score minus the default's at 0.8x the comparable margin holds, at 1.5x it does not; a default
    better than the reference holds at any distance (one-sided). A halved margin refutes 0.8x-worse, a doubled one
    confirms 1.5x-worse, a two-sided check refutes 1.5x-better and a flipped difference (score minus converged)
    confirms 1.5x-worse."""
    v = _default(gap=gap * MARGIN)
    assert v.verdict == expected, v.reason


@pytest.mark.parametrize(("factor", "expected"), [(0.8, CONFIRMED), (1.5, REFUTED)], ids=["0.8x", "1.5x"])
@pytest.mark.negative_of("recommended-default")
def test_recommended_default_time_at_its_bound(factor, expected):
    """A time share of 0.8x the bound is cheap enough, 1.5x is not (halving or doubling the bound turns one)."""
    v = _default(share=factor * MAX_SHARE)
    assert v.verdict == expected, v.reason


@pytest.mark.parametrize("broken", [dict(share=0.5), dict(gap=0.3)], ids=["slow", "far-from-converged"])
@pytest.mark.negative_of("recommended-default")
def test_recommended_default_refutes_a_slow_or_unconverged_default(broken):
    v = _default(**broken)
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("recommended-default")
def test_recommended_default_quality_needs_a_validated_metric():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    assert _default(control=blind).verdict == INCONCLUSIVE
