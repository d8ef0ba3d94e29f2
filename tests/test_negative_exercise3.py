"""Negative controls of Exercise 3: sweet-spot, linear-time and no-gain-past-25 turn their verdicts when
the property is broken (a sampler that keeps improving, garbled images that are not garbled, quadratic
time, a dominant fixed overhead, a noisy neighbour), and confirm the lesson-shaped case.
"""
from __future__ import annotations

import numpy as np
import pytest

from negative_support import rounds, scores, shifted
from sampler_claims import registry
from sampler_claims.rules.exercise3 import fit_rounds, knee, linear_time, line_fits, no_gain_past_25, ssim_knee, sweet_spot
from sampler_claims.timing import timed_name
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation

STEPS = registry.get("sweet-spot").t("step_counts")
SWEET = registry.get("sweet-spot").t
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")


# ----------------------------------------------------------------------------------------- sweet-spot
def _sweet(gaps: dict[int, float], to_20: dict[int, float], control=CONTROL):
    """Per-seed scores whose gap below the converged score is `gaps[steps]`; SSIM to 20 steps near `to_20`."""
    ref = scores(0.85)
    sc = {s: shifted(ref, -gaps.get(s, 0.0), seed=s) for s in STEPS}
    sc[max(STEPS)] = ref
    ss = {s: list(np.clip(np.random.default_rng(s).normal(v, 0.005, 32), 0, 1)) for s, v in to_20.items()}
    return sweet_spot(sc, ss, control, SWEET)


LESSON_SHAPED = dict(gaps={5: 0.35, 10: 0.08, 20: 0.0}, to_20={50: 0.97, 100: 0.97, 200: 0.97})


@pytest.mark.negative_of("sweet-spot")
def test_sweet_spot_confirms_the_lesson_shaped_curve():
    v = _sweet(**LESSON_SHAPED)
    assert v.verdict == CONFIRMED, v.reason


@pytest.mark.parametrize("broken", ["5 not garbled", "10 unrecognizable", "20 not good", "keeps changing past 20"])
@pytest.mark.negative_of("sweet-spot")
def test_each_sweet_spot_statement_can_refute(broken):
    gaps, to_20 = dict(LESSON_SHAPED["gaps"]), dict(LESSON_SHAPED["to_20"])
    if broken == "5 not garbled":
        gaps[5] = 0.02
    elif broken == "10 unrecognizable":
        gaps[10] = 0.35
    elif broken == "20 not good":
        gaps[20] = 0.2
    else:
        to_20 = {50: 0.8, 100: 0.78, 200: 0.77}  # a sampler that keeps improving: 50-200 differ from 20
    v = _sweet(gaps, to_20)
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("sweet-spot")
def test_sweet_spot_quality_statements_need_a_validated_metric():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    assert _sweet(**LESSON_SHAPED, control=blind).verdict == INCONCLUSIVE
    assert sweet_spot(None, {50: [0.97] * 8}, None, SWEET).verdict == INCONCLUSIVE


SATURATING = [0.50, 0.80, 0.95, 0.965, 0.975, 1.0]  # the last point is the reference itself


@pytest.mark.negative_of("sweet-spot")
def test_the_knee_shown_in_the_report():
    assert ssim_knee(STEPS, SATURATING, 0.02) == 20
    assert ssim_knee(STEPS, [0.4 + 0.1 * np.log2(s / 5) for s in STEPS], 0.02) is None
    assert knee(STEPS, SATURATING, 0.02) is None  # with the reference point itself: no knee


# ----------------------------------------------------------------------------------------- linear-time
LT = registry.get("linear-time").t
NAMES = {s: timed_name("dpm-solver", s) for s in STEPS}


def _linear(law, jitter: float = 0.01, n: int = 4, wall_law=None):
    rng = np.random.default_rng(0)
    cpu = {NAMES[s]: [law(s) * (1 + rng.normal(0, jitter)) for _ in range(n)] for s in STEPS}
    r = rounds(cpu, {NAMES[s]: s for s in STEPS})
    if wall_law is not None:
        r.wall = {NAMES[s]: [wall_law(s, k) for k in range(n)] for s in STEPS}
    return linear_time(line_fits(r, NAMES), min_r2=LT("min_r2"), max_overhead_share=LT("max_overhead_share"),
                       wall=line_fits(r, NAMES, "wall"))


@pytest.mark.negative_of("linear-time")
def test_linear_time_confirms_linear_time():
    assert _linear(lambda s: 0.01 + 0.01 * s).verdict == CONFIRMED


@pytest.mark.negative_of("linear-time")
def test_quadratic_time_refutes_linear_time():
    v = _linear(lambda s: 1e-4 * s * s)
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("linear-time")
def test_large_fixed_overhead_refutes_linear_time():
    v = _linear(lambda s: 2.0 + 0.001 * s)  # perfectly linear, but the overhead dwarfs 20 steps
    assert v.verdict == REFUTED and "intercept" in v.reason, v.reason


@pytest.mark.negative_of("linear-time")
def test_a_fixed_overhead_of_half_the_20_step_time_refutes_linear_time():
    """Perfectly linear, but the intercept is half of t(20) (a = 20 b): 'small overhead' must be refuted at the
    registry's rounds and a realistic 3% per-round spread, not only for an overhead that dwarfs everything."""
    b = 0.005
    v = _linear(lambda s: 20 * b + b * s, jitter=0.03, n=LT("timing_rounds"))
    assert v.verdict == REFUTED and "intercept" in v.reason, v.reason


@pytest.mark.negative_of("linear-time")
def test_quadratic_time_refutes_linear_time_at_the_registry_rounds():
    v = _linear(lambda s: 1e-4 * s * s, jitter=0.03, n=LT("timing_rounds"))
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("linear-time")
def test_a_noisy_neighbour_makes_it_inconclusive_never_refuted():
    """CPU time stays linear; wall time is wrecked by contention: the verdict may not become 'refuted'."""
    rng = np.random.default_rng(5)
    v = _linear(lambda s: 0.01 + 0.01 * s, wall_law=lambda s, k: (0.01 + 0.01 * s) * rng.uniform(1, 20))
    assert v.verdict in (CONFIRMED, INCONCLUSIVE), v.reason
    noisy_cpu = _linear(lambda s: 0.01 + 0.01 * s, jitter=0.5, n=3)
    assert noisy_cpu.verdict != REFUTED, noisy_cpu.reason


@pytest.mark.negative_of("linear-time")
def test_fit_rounds_recovers_the_line():
    f = fit_rounds(STEPS, [[0.1 + 0.01 * s for s in STEPS]] * 2, "cpu")
    assert f.a[0] == pytest.approx(0.1) and f.b[0] == pytest.approx(0.01) and f.r2[0] == pytest.approx(1.0)
    assert f.share[0] == pytest.approx(0.1 / 0.3)


# ----------------------------------------------------------------------------------------- no-gain-past-25
MARGIN = registry.get("no-gain-past-25").t("comparable_margin")


@pytest.mark.negative_of("no-gain-past-25")
def test_no_gain_past_25_confirms_a_converged_sampler():
    s25 = scores(0.85)
    assert no_gain_past_25(shifted(s25, 0.0), s25, CONTROL, margin=MARGIN).verdict == CONFIRMED


@pytest.mark.negative_of("no-gain-past-25")
def test_a_sampler_still_improving_at_200_refutes_it():
    s25 = scores(0.7)
    assert no_gain_past_25(shifted(s25, 0.2), s25, CONTROL, margin=MARGIN).verdict == REFUTED


@pytest.mark.negative_of("no-gain-past-25")
def test_no_gain_without_a_validated_metric_is_inconclusive():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    s25 = scores(0.7)
    assert no_gain_past_25(shifted(s25, 0.2), s25, blind, margin=MARGIN).verdict == INCONCLUSIVE
    assert no_gain_past_25([], [], None, margin=MARGIN).verdict == INCONCLUSIVE
