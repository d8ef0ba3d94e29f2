"""The decision layer on its own, with no model: intervals decide, margins are fixed, metrics must pass
their controls, and the pytest outcome follows the verdict."""
from __future__ import annotations

import math
import re

import numpy as np
from scipy import stats

import pytest

from negative_support import scores, shifted
from sampler_claims.verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    POWER,
    REFUTED,
    all_of,
    at_least,
    at_most,
    equivalent,
    exact,
    gated,
    paired,
    rounds_needed,
    separation,
    seeds_needed,
    t_interval,
    wilson,
    within,
)

MARGIN = 0.05


def test_identical_score_lists_are_confirmed_equivalent():
    a = scores(0.8)
    v = equivalent(paired(a, a), MARGIN, "same")
    assert v.verdict == CONFIRMED, v.reason


def test_a_thirty_point_gap_is_refuted():
    a = scores(0.8)
    v = equivalent(paired(a, shifted(a, -0.30)), MARGIN, "gap")
    assert v.verdict == REFUTED, v.reason


def test_a_small_noisy_sample_is_inconclusive_with_a_seed_estimate():
    a = scores(0.8, n=6, sd=0.2, seed=3)
    b = scores(0.8, n=6, sd=0.2, seed=4)
    v = equivalent(paired(a, b), MARGIN, "noisy")
    assert v.verdict == INCONCLUSIVE and v.seeds_needed is not None and v.seeds_needed > 6, v.reason
    assert "seeds would decide it" in v.reason


def test_the_suggested_seeds_decide_a_rerun_with_the_stated_power():
    """An undecided one-sided claim (a 5-step gap +0.131 over 32 seeds against 'at least 0.174', as the embedded
    model's sweet-spot measured it): rerun at the suggested seeds, with that mean and spread true, its interval
    is decided about POWER of the time, not half the time as a bare half-width count would give."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=32)
    iv = t_interval(0.131 + 0.125 * (z - z.mean()) / z.std(ddof=1))
    v = at_least(iv, 0.174, "gap")
    assert v.verdict == INCONCLUSIVE and f"{POWER:.0%} of the time" in v.reason
    need = v.seeds_needed
    draws = rng.normal(iv.mean, iv.sd, size=(4000, need))  # reruns, the observed mean and spread taken as true
    half = stats.t.ppf(0.975, need - 1) * draws.std(1, ddof=1) / np.sqrt(need)
    decided = (draws.mean(1) + half < 0.174) | (draws.mean(1) - half >= 0.174)
    assert abs(float(decided.mean()) - POWER) < 0.05


def test_a_metric_that_fails_its_control_makes_the_claim_inconclusive():
    good = scores(0.8, seed=1)
    bad = shifted(good, 0.0, sd=0.05)  # the 'known bad' case scores like the good one
    check = separation("score", good, bad, "good", "bad")
    assert not check.separates
    v = gated(check, equivalent(paired(good, good), MARGIN, "would confirm"))
    assert v.verdict == INCONCLUSIVE and "failed its control" in v.reason


def test_a_metric_that_passes_its_control_decides():
    good = scores(0.8, seed=1)
    check = separation("score", good, shifted(good, -0.3), "good", "bad")
    assert check.separates
    assert gated(check, equivalent(paired(good, good), MARGIN, "x")).verdict == CONFIRMED


def test_no_metric_at_all_is_inconclusive_and_says_why():
    v = gated(None, exact(True, "would confirm"), "no checker on this model")
    assert v.verdict == INCONCLUSIVE and "no checker" in v.reason


def test_one_sided_bounds_mirror_each_other():
    iv = t_interval(scores(0.3, sd=0.01))
    assert at_least(iv, 0.15, "gap").verdict == CONFIRMED and at_most(iv, 0.15, "gap").verdict == REFUTED
    iv = t_interval(scores(0.05, sd=0.01))
    assert at_least(iv, 0.15, "gap").verdict == REFUTED and at_most(iv, 0.15, "gap").verdict == CONFIRMED
    iv = t_interval(scores(0.15, n=4, sd=0.1))
    assert at_least(iv, 0.15, "gap").verdict == INCONCLUSIVE == at_most(iv, 0.15, "gap").verdict


def test_within_a_band():
    assert within(t_interval([20.0, 21.0, 19.5]), 12.6, 31.6, "ratio").verdict == CONFIRMED
    assert within(t_interval([5.0, 5.1, 4.9]), 12.6, 31.6, "ratio").verdict == REFUTED
    assert within(t_interval([12.0, 14.0, 30.0]), 12.6, 31.6, "ratio").verdict == INCONCLUSIVE


def test_an_undecided_time_ratio_counts_its_rounds_on_the_log_scale():
    """A CI run's DPM-Solver@20 speed-up, 43.6x [31.1, 61] over 3 rounds against [31.6, 79]: the rounds that
    would decide it follow from the spread of the logs and the log distance to the nearer edge, with the t
    quantile, not from a log spread set against a distance in ratio units (which asked for the 3 rounds it had)."""
    from sampler_claims.rules.exercise1 import ratio_interval

    ratios = [38.0, 43.0, 50.5]
    iv = ratio_interval(ratios, [1.0] * 3, "time DDPM@1000 / dpm-solver")
    v = within(iv, 50 / 1.5811, 50 * 1.5811, "dpm-solver: cpu-time ratio")
    assert v.verdict == INCONCLUSIVE and iv.low < 50 / 1.5811
    log_distance = math.log(iv.mean) - math.log(50 / 1.5811)
    with_power = rounds_needed(iv.sd, log_distance, power=POWER)
    assert v.seeds_needed == with_power >= rounds_needed(iv.sd, log_distance) > 3
    assert f"about {v.seeds_needed} rounds" in v.reason


def test_one_value_decides_nothing():
    iv = t_interval([0.9])
    assert math.isinf(iv.low) and at_least(iv, 0.5, "x").verdict == INCONCLUSIVE


def test_all_of_refutes_on_any_refutation_and_confirms_only_on_all():
    c, r, i = exact(True, "c"), exact(False, "r"), at_least(t_interval([0.1, 0.9]), 0.5, "i")
    assert all_of([c, c]).verdict == CONFIRMED
    assert all_of([c, i]).verdict == INCONCLUSIVE
    assert all_of([c, i, r]).verdict == REFUTED


def test_seeds_needed_grows_as_the_mean_nears_the_margin():
    iv = t_interval(scores(0.0, n=10, sd=0.1))
    assert seeds_needed(iv, 0.04) > seeds_needed(iv, 0.08)
    assert seeds_needed(t_interval([1.0, 1.0]), 0.1) is None  # no spread to extrapolate from


def test_wilson_share():
    assert at_least(wilson(16, 16), 0.5, "share").verdict == CONFIRMED
    assert at_least(wilson(0, 16), 0.5, "share").verdict == REFUTED
    assert at_least(wilson(8, 16), 0.5, "share").verdict == INCONCLUSIVE


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def test_every_claim_has_one_home_for_its_rule_test_and_negative_control():
    """From a claim id: its rule in sampler_claims/rules/<module>.py, its test in claims/test_<module>.py and
    its negative control in tests/test_negative_<module>.py, each naming the id."""
    from pathlib import Path

    from sampler_claims import registry

    root = Path(__file__).resolve().parents[1]
    for claim in registry.CLAIMS.values():
        rules = root / "sampler_claims" / "rules" / f"{claim.module}.py"
        test = root / "claims" / f"test_{claim.module}.py"
        negative = root / "tests" / f"test_negative_{claim.module}.py"
        assert rules.is_file() and test.is_file() and negative.is_file(), claim.id
        assert f'claim("{claim.id}")' in test.read_text(), f"{claim.id} has no deciding test in {test.name}"
        # The deciding test is named after the claim: xdist's claim groups are read from that name.
        from sampler_claims.distribute import test_name

        assert re.search(rf'claim\("{re.escape(claim.id)}"\)\n(@.*\n)*def {test_name(claim.id)}\(',
                         test.read_text()), f"{claim.id}: its test is not named {test_name(claim.id)}"
    # Each claim's negative control is linked by @pytest.mark.negative_of(id), checked at collection
    # (sampler_claims.negatives): test_negative_controls_are_linked_by_their_mark.


def test_negative_controls_are_linked_by_their_mark():
    """Every claim id has a test marked negative_of(id) in tests/test_negative_<module>.py; a section comment or
    a mention of the id in the file does not count, and a mark naming no claim is an error."""
    import importlib
    import sys
    import types
    from pathlib import Path

    from sampler_claims import negatives, registry

    sys.path.insert(0, str(Path(__file__).parent))
    modules = [importlib.import_module(f"test_negative_{m}") for m in sorted({c.module for c in registry.CLAIMS.values()})]
    assert negatives.problems(modules) == []
    assert set().union(*(negatives.marked_ids(m) for m in modules)) == set(registry.CLAIMS)

    fake = types.ModuleType("test_negative_takeaways")
    exec("import pytest\n# ---- recommended-default\ndef test_x(): pass\n"
         "@pytest.mark.negative_of('no-such-claim')\ndef test_y(): pass\n", fake.__dict__)
    found = negatives.problems([fake])
    assert any("recommended-default has no negative control" in p for p in found)
    assert any("negative_of('no-such-claim'), not a claim id" in p for p in found)


def test_every_rule_kind_records_its_statements_as_fields() -> None:
    """The reason, the plain sentence and the report are written from fields, never parsed back from text: each
    constructor records label, estimate, interval, n, limit, relation and whether it decided."""
    from sampler_claims.verdict import Interval, all_of, at_least, equivalent, improves, within

    iv = Interval(0.03, 0.01, 0.05, 32, 0.05)
    eq = equivalent(iv, 0.058, "score A - B")
    (st,) = eq.statements
    assert (st.label, st.estimate, st.low, st.high, st.n, st.limit, st.relation, st.decided) == (
        "score A - B", 0.03, 0.01, 0.05, 32, 0.058, "inside ±limit", True)
    assert at_least(iv, 0.02, "x").statements[0].verdict == "inconclusive"
    assert improves(iv, "gain").statements[0].relation == "above"
    assert within(Interval(20.0, 19.0, 21.0, 5), 12.6, 31.6, "ratio").statements[0].limit == (12.6, 31.6)
    both = all_of([eq, improves(iv, "gain")], "two")
    assert [s.label for s in both.statements] == ["score A - B", "gain"]
    assert both.as_dict()["statements"][0]["ci95"] == [0.01, 0.05]
