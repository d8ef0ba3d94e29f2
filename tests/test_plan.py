"""The cost plan: U-Net evaluations counted from the registry (CFG counted, shared generations once), a time
estimate from a calibration, --claims-plan runs nothing, --budget shrinks the roster and names what it costs."""
from __future__ import annotations

import pytest

from sampler_claims import paths, plan, registry
from sampler_claims.plan import Calibration, Rate

TINY = str(paths.TINY_MODEL)


def planned(ids, seeds=8, **kw):
    return plan.make_plan(ids, seeds=seeds, model_source=TINY, quality="checker", rounds=4, **kw)


def test_cfg_doubles_the_evaluations_and_images_scale_them() -> None:
    """no-gain-past-25: DPM-Solver@25 and @200 over the roster plus its quality control (@200 shared, @5):
    (25 + 200 + 5) calls x 2 (CFG) x seeds."""
    p = planned(["no-gain-past-25"], seeds=8)
    assert p.evaluations == (25 + 200 + 5) * 2 * 8
    assert planned(["no-gain-past-25"], seeds=16).evaluations == 2 * p.evaluations


def test_random_weights_plan_no_quality_generations() -> None:
    """On random weights the quality claims skip before generating: the plan must not count (or calibrate for)
    them."""
    assert planned(["no-gain-past-25"], trained=False).evaluations == 0
    assert planned(["dpm-multi-point"], trained=False).evaluations == planned(["dpm-multi-point"]).evaluations


def test_a_generation_shared_by_claims_is_counted_once() -> None:
    one = planned(["comparable-quality"]).evaluations
    both = planned(["comparable-quality", "different-paths"])
    assert both.evaluations == one and set(both.groups) == {"roster-ddpm"}


def test_a_claim_paired_with_ddpm_plans_its_longer_roster_and_only_the_extra_seeds() -> None:
    """comparable-quality runs DDPM@1000, DDIM@50 and DPM-Solver@20 on DDPM_SEEDS x --seeds (its control, DPM-Solver
    @200 and @5, on the roster). As the engine's cache serves it, a longer roster after a shorter one costs its extra
    seeds only, and a shorter one after a longer one runs whole: after sweet-spot, whose DPM-Solver@20 runs on a
    longer roster still, comparable-quality's DPM-Solver@20 is made again; before it, sweet-spot pays only for the
    seeds beyond comparable-quality's."""
    f, seeds = registry.DDPM_SEEDS.value, 8
    own = (1000 + 50 + 20) * 2 * seeds * f
    control = (200 + 5) * 2 * seeds
    assert planned(["comparable-quality"], seeds=seeds).evaluations == own + control
    alone = planned(["sweet-spot"], seeds=seeds).evaluations
    assert planned(["sweet-spot", "comparable-quality"], seeds=seeds).evaluations == alone + own
    assert planned(["comparable-quality", "sweet-spot"], seeds=seeds).evaluations == alone + own - 20 * 2 * seeds * f


def test_sweet_spot_plans_its_scored_steps_on_the_longer_roster() -> None:
    """sweet-spot: the grid on the roster, and its scored step counts (5, 10, 20, 200) on SCORE_SEEDS x the roster,
    the roster's seeds counted once; its quality control (DPM-Solver@200 and @5 on the roster) adds nothing."""
    f, seeds = registry.SCORE_SEEDS.value, 8
    runs = registry.get("sweet-spot").runs.values()
    grid, scored = [r.steps for r in runs], [r.steps for r in runs if r.seeds == "claim"]
    expected = sum(grid) * 2 * seeds + sum(scored) * 2 * seeds * (f - 1)
    assert planned(["sweet-spot"], seeds=seeds).evaluations == expected


def test_a_run_that_spells_out_a_stock_default_is_the_stock_run() -> None:
    """final-sigma-zero's DPM-Solver@10 with final_sigmas_type="zero" is DPM-Solver's default: after sweet-spot-
    guidance's stock DPM-Solver@10 on the same roster it costs nothing (the engine's cache keys it the same way)."""
    alone = planned(["final-sigma-zero"])
    after = planned(["sweet-spot-guidance", "final-sigma-zero"])
    assert after.per_claim["final-sigma-zero"] == alone.evaluations - 10 * 2 * 8


def test_the_timing_rounds_images_serve_the_single_seed_runs_after_them() -> None:
    """lesson-code-runs shows DDPM@1000 on Exercise 1's seed, which the timing rounds make (and keep) in every
    round: after speedup it plans nothing; alone it plans its one image."""
    alone = planned(["lesson-code-runs"])
    assert alone.evaluations == 1000 * 2
    assert planned(["speedup", "lesson-code-runs"]).per_claim["lesson-code-runs"] == 0


def test_heun_counts_its_own_calls() -> None:
    """dpm-multi-point: single-seed DPM-Solver, DPM-Solver singlestep and Heun at 10 steps; Heun makes 2N-1."""
    assert planned(["dpm-multi-point"]).evaluations == (10 + 10 + 19) * 2


def test_the_plan_counts_each_claim_in_the_order_the_tests_run() -> None:
    """A generation two claims share is counted in the first that makes it: the order given, not the catalogue's."""
    first = planned(["comparable-quality", "different-paths"])
    assert first.per_claim["different-paths"] == 0 and first.per_claim["comparable-quality"] > 0
    second = planned(["different-paths", "comparable-quality"])
    assert second.per_claim["different-paths"] > 0
    assert first.evaluations == second.evaluations


def test_the_estimate_is_evaluations_and_images_at_the_calibrated_rates() -> None:
    cal = Calibration("cpu", "float32", 32, roster=Rate(0.01, 0.1, 8), single=Rate(0.02, 0.05, 1), seconds=1.0)
    p = planned(["no-gain-past-25"], seeds=8, calibration=cal)
    images = 3 * 8
    assert p.seconds == pytest.approx(p.evaluations * 0.01 + images * 0.1)
    assert "ms per U-Net evaluation" in p.lines()[-1]


def test_budget_takes_the_largest_roster_that_fits_and_names_the_likely_inconclusive() -> None:
    assert plan.budget_seeds(lambda n: n * 10 <= 125, 32) == 12
    assert plan.budget_seeds(lambda n: True, 32) == 32
    assert plan.budget_seeds(lambda n: False, 32) is None
    few = plan.POWER_SEEDS["deterministic"] - 1  # fewer than either kind of pair needs
    lost = plan.likely_inconclusive(["comparable-quality", "no-gain-past-25", "sweet-spot", "speedup"], few)
    factor = registry.DDPM_SEEDS.value  # comparable-quality runs on factor x --seeds
    assert lost == {"comparable-quality": -(-plan.POWER_SEEDS["stochastic"] // factor),  # sweet-spot: SCORE_SEEDS x few
                    "no-gain-past-25": plan.POWER_SEEDS["deterministic"]}
    assert plan.POWER_SEEDS["stochastic"] > plan.POWER_SEEDS["deterministic"]


CLAIM_TEST = """
import pytest

@pytest.mark.claim("no-gain-past-25")
def test_claim(claim, engine):
    raise AssertionError("--claims-plan must not run a claim")
"""


@pytest.mark.parametrize("extra", [(), ("--budget", "0.0001")], ids=["plan", "plan with a budget"])
def test_claims_plan_prints_the_plan_and_runs_nothing(pytester: pytest.Pytester, dummy_folder, extra) -> None:
    pytester.makepyfile(CLAIM_TEST)
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder), "--device",
                                           "cpu", "--seeds", "4", "--quality", "checker", "--claims-plan", *extra,
                                           "--claims-report", str(pytester.path / "r" / "index.html"))
    assert result.ret == 0
    out = result.stdout.str()
    seeds = 1 if extra else 4
    assert "claims plan:   roster" in out and f"{(25 + 200 + 5) * 2 * seeds:,} evaluations" in out
    assert "estimated" in out and "ms per U-Net evaluation" in out
    assert "must not run" not in out and not (pytester.path / "r" / "index.html").exists()
    if extra:
        assert "claims budget: 0.0001 min -> --seeds 1 instead of 4" in out and "over the budget even at" in out
        assert "no-gain-past-25 likely inconclusive" in out
