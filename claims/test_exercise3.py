"""Exercise 3: step count (the sweet spot, time against steps, and no gain past 25 steps).

Each test wires the engine to a rule in sampler_claims/rules/exercise3.py and ends with
`claim.decide(verdict)`.
"""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims import registry
from sampler_claims.convergence import ranks_in_order
from sampler_claims.quality import referee_control, show_basis
from sampler_claims.rules.exercise3 import (
    DPM,
    knee_of,
    line_fits,
    linear_time,
    no_gain_past_25,
    per_seed_ssim,
    sweet_spot,
)
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.exercise3

STEP_COUNTS: tuple[int, ...] = registry.get("sweet-spot").t("step_counts")
TIME_STEPS: tuple[int, ...] = registry.get("linear-time").t("step_counts")
#: Seeds of the sweet-spot grid shown as images (all seeds enter the numbers).
GRID_SEEDS = 3


@pytest.mark.claim("sweet-spot")
def test_sweet_spot(claim, engine, roster, quality, quality_control, convergence):
    control, good, bad = quality_control
    gens = {s: engine.generate(roster.request(DPM, s)) for s in STEP_COUNTS}
    top = max(STEP_COUNTS)
    ssim_ref = {s: per_seed_ssim(gens[s].images, gens[top].images) for s in STEP_COUNTS}
    to_20 = {s: per_seed_ssim(gens[s].images, gens[20].images) for s in STEP_COUNTS if s > 20}
    scores = {s: quality.scores(gens[s]) for s in STEP_COUNTS} if control is not None else None
    mean_ssim = [float(np.mean(ssim_ref[s])) for s in STEP_COUNTS]
    claim.metric(step_counts=STEP_COUNTS, seeds=len(roster), reference_steps=top, quality_basis=quality.basis,
                 metric=quality.metric,
                 ssim_to_converged={str(s): t_interval(v) for s, v in ssim_ref.items() if s != top},
                 ssim_to_20={str(s): t_interval(v) for s, v in to_20.items()},
                 mean_score=None if scores is None else {str(s): float(np.mean(v)) for s, v in scores.items()},
                 knee_ssim_info=knee_of(STEP_COUNTS, mean_ssim), control=control)
    shown = min(GRID_SEEDS, len(roster))
    claim.images(f"DPM-Solver at {', '.join(map(str, STEP_COUNTS))} steps (rows: first {shown} seeds)",
                 [gens[s].image(i) for i in range(shown) for s in STEP_COUNTS],
                 [f"seed {roster.seeds[i]}, {s} steps" for i in range(shown) for s in STEP_COUNTS])
    curves = {"SSIM to converged (mean)": mean_ssim}
    if scores is not None:
        curves[f"{quality.metric} (mean)"] = [float(np.mean(scores[s])) for s in STEP_COUNTS]
    claim.series("Quality against steps (DPM-Solver)", list(STEP_COUNTS), curves, xlabel="steps",
                 ylabel="mean over seeds", logx=True)
    rv = None
    check = None
    if convergence is not None:
        # The CLIP path (SD 1.5's): convergence to the reference from the same z_T, and the reference's own check.
        check = convergence.check
        dist = {s: convergence.distance(gens[s], f"{s} steps") for s in STEP_COUNTS if s != top}
        mse = [float(np.mean(dist[s].mse)) for s in dist]
        claim.series(f"Convergence to {convergence.reference_label} (same z_T)", list(dist),
                     {"latent MSE to reference (mean)": mse}, xlabel="steps", ylabel="latent MSE", logx=True)
        ranks = {"convergence (latent MSE)": ranks_in_order([np.mean(dist[s].mse) for s in (5, 10, 20)], True)}
        if scores is not None:
            ranks[quality.metric] = ranks_in_order([np.mean(scores[s]) for s in (5, 10, 20)], False)
        referee = quality.referee()
        if referee is not None:
            rs = {s: referee.checker_scores(gens[s]) for s in STEP_COUNTS}
            ranks["checker score (referee)"] = ranks_in_order([np.mean(rs[s]) for s in (5, 10, 20)], False)
            rv = sweet_spot(rs, to_20, referee_control(referee, good, bad), claim.t)
            claim.metric(referee=rv.as_dict(), referee_mean_score={str(s): float(np.mean(v)) for s, v in rs.items()})
        claim.metric(convergence=convergence.as_dict(),
                     distance_to_reference={str(s): d.as_dict() for s, d in dist.items()},
                     ranks_5_10_20=ranks)
        claim.table(f"Distance to {convergence.reference_label} per step count (mean over {len(roster)} seeds)",
                    ["steps", "latent MSE", "SSIM", f"mean {quality.metric}"],
                    [[s, f"{np.mean(dist[s].mse):.5f}", f"{np.mean(dist[s].ssim):.4f}",
                      "n/a" if scores is None else f"{np.mean(scores[s]):.3f}"] for s in dist])
    show_basis(claim, quality, control, {k: quality.margin(claim.t(k)) for k in
                                         ("garbled_margin", "recognizable_margin", "good_margin")}, convergence, rv)
    claim.table("SSIM of the 50-200-step images to the 20-step image (per seed, 95% interval)",
                ["steps", "mean SSIM to 20 steps", "95% interval", f"needs ≥ {claim.t('indistinct_min_ssim')}"],
                [[s, round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]", claim.t("indistinct_min_ssim")]
                 for s, iv in ((s, t_interval(v)) for s, v in to_20.items())])
    claim.key(f"SSIM to 20 steps from 50-200: {min(np.mean(v) for v in to_20.values()):.3f}; SSIM of 20 to "
              f"converged {np.mean(ssim_ref[20]):.3f}")
    claim.decide(sweet_spot(scores, to_20, control, claim.t, missing=quality.missing, margin=quality.margin,
                            reference=check))


@pytest.mark.timing
@pytest.mark.claim("linear-time")
def test_linear_time(claim, timing_rounds):
    names = {s: f"dpm@{s}" for s in TIME_STEPS}
    fits = line_fits(timing_rounds, names)
    wall = line_fits(timing_rounds, names, "wall")
    claim.metric(fits=fits.as_dict(), wall_fits=wall.as_dict(), rounds=timing_rounds)
    med = {clock: [float(np.median(timing_rounds.seconds(names[s], clock))) for s in TIME_STEPS]
           for clock in ("cpu", "wall")}
    a, b = float(np.median(fits.a)), float(np.median(fits.b))
    claim.series(f"DPM-Solver time against steps (median of {timing_rounds.rounds} interleaved rounds)",
                 list(TIME_STEPS), {"CPU time (s)": med["cpu"], "wall time (s)": med["wall"]},
                 xlabel="steps", ylabel="seconds", fit={"a": a, "b": b, "r2": float(np.median(fits.r2))})
    claim.table(f"Per-round fits ({fits.clock} time decides)", ["round", "a (ms)", "b (ms/step)", "R²",
                                                                 "a / t(20)"],
                [[r + 1, round(fits.a[r] * 1e3, 2), round(fits.b[r] * 1e3, 3), round(fits.r2[r], 5),
                  round(fits.share[r], 4)] for r in range(len(fits.a))])
    r2, share = t_interval(fits.r2), t_interval(fits.share)
    claim.key(f"R² {r2.mean:.4f} [{r2.low:.4f}, {r2.high:.4f}], overhead {share.mean:.1%} "
              f"[{share.low:.1%}, {share.high:.1%}] of t(20), {b * 1e3:.2f} ms/step ({fits.clock})")
    claim.decide(linear_time(fits, min_r2=claim.t("min_r2"), max_overhead_share=claim.t("max_overhead_share"),
                             wall=wall))


@pytest.mark.claim("no-gain-past-25")
def test_no_gain_past_25(claim, engine, roster, quality, quality_control, convergence):
    control, good, bad = quality_control
    g25, g200 = engine.generate(roster.request(DPM, 25)), engine.generate(roster.request(DPM, 200))
    margin = quality.margin(claim.t("comparable_margin"))
    check = convergence.check if convergence is not None else None
    shown = min(GRID_SEEDS, len(roster))
    claim.images("DPM-Solver at 25 (top) and 200 steps (bottom), same seeds",
                 [g.image(i) for g in (g25, g200) for i in range(shown)],
                 [f"{s} steps, seed {roster.seeds[i]}" for s in (25, 200) for i in range(shown)])
    if control is None:
        claim.key(f"no validated quality metric on this model ({quality.mode})")
        claim.decide(no_gain_past_25([], [], None, margin=margin, missing=quality.missing))
    s25, s200 = quality.scores(g25), quality.scores(g200)
    gain = t_interval([a - b for a, b in zip(s200, s25)])
    ss = t_interval(per_seed_ssim(g25.images, g200.images))
    claim.metric(seeds=len(roster), score_25=s25, score_200=s200, gain=gain, ssim_25_to_200=ss, control=control,
                 metric=quality.metric, margin=margin)
    if convergence is not None:
        claim.metric(convergence=convergence.as_dict(),
                     distance_25_to_reference=convergence.distance(g25, "25 steps").as_dict())
    referee, rv = quality.referee(), None
    if referee is not None:
        rv = no_gain_past_25(referee.checker_scores(g200), referee.checker_scores(g25),
                             referee_control(referee, good, bad), margin=claim.t("comparable_margin"))
        claim.metric(referee=rv.as_dict())
    show_basis(claim, quality, control, {"comparable": margin}, convergence, rv)
    claim.key(f"{quality.metric} gain 200 over 25 steps {gain.mean:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]; SSIM "
              f"{ss.mean:.3f}")
    claim.decide(no_gain_past_25(s200, s25, control, margin=margin, reference=check))
