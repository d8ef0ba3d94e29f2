"""Exercise 3: step count (the sweet spot, and time against steps)."""
from __future__ import annotations

import pytest

from sampler_claims import registry
from sampler_claims.engine import Request
from sampler_claims.exercise34 import (
    DPM,
    bench,
    knee,
    linear_fit_verdict,
    mean,
    per_seed_ssim,
    ssim_knee,
    sweet_spot_statements,
    timing_store,
)

pytestmark = pytest.mark.exercise3

STEP_COUNTS: tuple[int, ...] = registry.get("sweet-spot").t("step_counts")
TIME_STEPS: tuple[int, ...] = registry.get("linear-time").t("step_counts")
#: Timed rounds per step count, sized to cost: short runs are cheap and noisier, so they get more rounds.
ROUNDS = {5: 5, 10: 5, 20: 4, 50: 3, 100: 2, 200: 2}
#: Seeds of the sweet-spot grid shown as images (all seeds enter the numbers).
GRID_SEEDS = 3


@pytest.mark.claim("sweet-spot")
def test_sweet_spot(claim, engine, prompts, quality, settings):
    texts, seeds = prompts.roster("exercise3", settings.seeds)
    gens = {s: engine.generate(Request(DPM, s, seeds, texts)) for s in STEP_COUNTS}
    top = max(STEP_COUNTS)
    ssim_ref = [mean(per_seed_ssim(gens[s].images, gens[top].images)) for s in STEP_COUNTS]
    q = {s: quality.measure(gens[s].images, texts) for s in STEP_COUNTS}
    adherence = [q[s].adherence.mean for s in STEP_COUNTS] if quality.has_checker else None
    to_20 = {s: mean(per_seed_ssim(gens[s].images, gens[20].images)) for s in STEP_COUNTS if s > 20}
    k = ssim_knee(STEP_COUNTS, ssim_ref, claim.t("knee_epsilon"))
    k_adh = knee(STEP_COUNTS, adherence, claim.t("knee_epsilon")) if adherence else None
    statements = sweet_spot_statements(STEP_COUNTS, ssim_ref, adherence, to_20, claim.t)

    claim.metric(
        step_counts=STEP_COUNTS, seeds=len(seeds), reference_steps=top, quality_basis=quality.basis,
        ssim_to_converged=dict(zip(map(str, STEP_COUNTS), ssim_ref)),
        ssim_to_20=dict(zip(map(str, to_20), to_20.values())),
        quality={str(s): q[s].as_dict() for s in STEP_COUNTS},
        knee_ssim=k, knee_adherence=k_adh, statements={s.name: s.as_dict() for s in statements},
    )
    claim.images(
        f"DPM-Solver at {', '.join(map(str, STEP_COUNTS))} steps (rows: first {GRID_SEEDS} seeds)",
        [gens[s].image(i) for i in range(min(GRID_SEEDS, len(seeds))) for s in STEP_COUNTS],
        [f"seed {seeds[i]}, {s} steps" for i in range(min(GRID_SEEDS, len(seeds))) for s in STEP_COUNTS],
    )
    curves = {"SSIM to converged": ssim_ref}
    if adherence:
        curves["prompt adherence"] = adherence
    claim.series("Quality against steps (DPM-Solver)", list(STEP_COUNTS), curves, xlabel="steps",
                 ylabel="mean over seeds", knee=k, logx=True)
    claim.table("The lesson's statements", ["statement", "rule", "measured", "holds"],
                [[s.name, s.rule, s.measured, s.holds] for s in statements])
    claim.key(f"knee at {k} steps by SSIM, {k_adh} by adherence (gain per doubling < {claim.t('knee_epsilon')}); "
              + ", ".join(f"{s.name}: {s.holds}" for s in statements))

    undecided = [s.name for s in statements if s.holds is None]
    if undecided:
        claim.inconclusive(f"no prompt checker on this model, so these cannot be decided: {', '.join(undecided)}")
        return
    failed = [s for s in statements if not s.holds]
    why = "; ".join(f"{s.name}: {s.measured} ({s.rule})" for s in (failed or statements))
    claim.judge(not failed, why)
    assert k is not None, f"no knee: SSIM keeps gaining >= {claim.t('knee_epsilon')} per doubling up to {top}"
    assert not failed, why


# ----------------------------------------------------------------------------------------- linear-time
@pytest.mark.timing
@pytest.mark.claim("linear-time")
@pytest.mark.parametrize("steps", TIME_STEPS)
def test_time_per_step_count(steps, benchmark, engine, prompts, request):
    """Median wall time of one uncached single-seed generation at `steps` (pytest-benchmark)."""
    prompt, seed = prompts.single("exercise3")
    req = Request(DPM, steps, (seed,), prompt)
    benchmark.extra_info.update(steps=steps, scheduler=DPM.label)
    timing_store(request.config)[(DPM.label, steps)] = bench(benchmark, engine, req, rounds=ROUNDS[steps])


@pytest.mark.timing
@pytest.mark.claim("linear-time")
def test_linear_time(claim, request):
    store = timing_store(request.config)
    points = [(s, store[(DPM.label, s)]) for s in TIME_STEPS if (DPM.label, s) in store]
    if len(points) < len(TIME_STEPS):
        missing = sorted(set(TIME_STEPS) - {s for s, _ in points})
        pytest.skip(f"timings missing for {missing} steps (timing tests deselected or skipped)")
    steps, seconds = zip(*points)
    fit = linear_fit_verdict(steps, seconds, min_r2=claim.t("min_r2"),
                             max_overhead_share=claim.t("max_overhead_share"))
    claim.metric(points={str(s): t for s, t in points}, a_s=fit.a, b_s_per_step=fit.b, r2=fit.r2,
                 overhead_share_at_20=fit.overhead_share, time_20_s=fit.time_at,
                 ratio_200_to_5=seconds[-1] / seconds[0])
    claim.series("Median generation time against steps (DPM-Solver, 1 seed)", list(steps),
                 {"median time (s)": list(seconds)}, xlabel="steps", ylabel="seconds",
                 fit={"a": fit.a, "b": fit.b, "r2": fit.r2})
    claim.key(f"R² = {fit.r2:.4f}, b = {fit.b * 1e3:.2f} ms/step, a/t(20) = {fit.overhead_share:.1%}")
    claim.judge(fit.holds, fit.why)
    assert fit.holds, fit.why
