"""Exercise 3: step count (the sweet spot, time against steps, and no gain past 25 steps).

Each test wires the engine to a rule in sampler_claims/rules/exercise3.py and ends with
`claim.decide(verdict)`.
"""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims.convergence import ranks_in_order
from sampler_claims.rules.exercise3 import (
    DPM,
    knee_of,
    line_fits,
    linear_time,
    no_gain_past_25,
    per_seed_ssim,
    sweet_spot,
)
from sampler_claims.timing import timed_name
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.exercise3

#: Seeds of the sweet-spot grid shown as images (all seeds enter the numbers).
GRID_SEEDS = 3


@pytest.mark.claim("sweet-spot")
def test_sweet_spot(claim, engine, roster, claim_roster, quality_claim):
    """The step grid on the roster (images, SSIM statements); the scored step counts again on the claim's longer
    roster (registry.SCORE_SEEDS), whose first seeds are the roster's, for the checker-score statements."""
    q = quality_claim
    grid = claim.t("step_counts", tuple)
    gens = {s: engine.generate(roster.request(DPM, s)) for s in grid}
    scored = {s: engine.generate(claim_roster.request(DPM, s)) for s in claim.t("scored_steps", tuple)}
    top = max(grid)
    ssim_ref = {s: per_seed_ssim(gens[s].images, gens[top].images) for s in grid}
    to_20 = {s: per_seed_ssim(gens[s].images, gens[20].images) for s in grid if s > 20}

    def rule(judge):
        scores = {s: judge.scores(g) for s, g in scored.items()} if judge.control is not None else None
        return sweet_spot(scores, to_20, judge.control, judge.t, missing=judge.missing, margin=judge.scale,
                          reference=judge.reference)

    scores = {s: q.scores(g) for s, g in scored.items()} if q.control is not None else None
    on_roster = {s: q.scores(gens[s]) for s in grid} if q.control is not None else None
    mean_ssim = [float(np.mean(ssim_ref[s])) for s in grid]
    claim.metric(step_counts=grid, seeds=len(roster), score_seeds=len(claim_roster), reference_steps=top,
                 quality_basis=q.quality.basis, metric=q.metric,
                 ssim_to_converged={str(s): t_interval(v) for s, v in ssim_ref.items() if s != top},
                 ssim_to_20={str(s): t_interval(v) for s, v in to_20.items()},
                 mean_score=None if scores is None else {str(s): float(np.mean(v)) for s, v in scores.items()},
                 knee_ssim_info=knee_of(grid, mean_ssim), control=q.control)
    shown = min(GRID_SEEDS, len(roster))
    claim.images(f"DPM-Solver at {', '.join(map(str, grid))} steps (rows: first {shown} seeds)",
                 [gens[s].image(i) for i in range(shown) for s in grid],
                 [f"seed {roster.seeds[i]}, {s} steps" for i in range(shown) for s in grid], per_row=len(grid))
    curves = {"SSIM to converged (mean)": mean_ssim}
    if on_roster is not None:
        curves[f"{q.metric} (mean)"] = [float(np.mean(on_roster[s])) for s in grid]
    claim.series(f"Quality against steps (DPM-Solver, the {len(roster)} roster seeds)", list(grid), curves,
                 xlabel="steps", ylabel="mean over seeds", logx=True)
    if q.convergence is not None:
        # The CLIP path (SD 1.5's): convergence to the reference from the same z_T, and the reference's own check.
        dist = {s: q.convergence.distance(gens[s], f"{s} steps") for s in grid if s != top}
        mse = [float(np.mean(dist[s].mse)) for s in dist]
        claim.series(f"Convergence to {q.convergence.reference_label} (same z_T)", list(dist),
                     {"latent MSE to reference (mean)": mse}, xlabel="steps", ylabel="latent MSE", logx=True)
        ranks = {"convergence (latent MSE)": ranks_in_order([np.mean(dist[s].mse) for s in (5, 10, 20)], True)}
        if scores is not None:
            ranks[q.metric] = ranks_in_order([np.mean(scores[s]) for s in (5, 10, 20)], False)
        if q.referee is not None:
            rs = {s: q.referee.scores(g) for s, g in scored.items()}
            ranks["checker score (referee)"] = ranks_in_order([np.mean(rs[s]) for s in (5, 10, 20)], False)
            claim.metric(referee_mean_score={str(s): float(np.mean(v)) for s, v in rs.items()})
        claim.metric(convergence=q.convergence.as_dict(),
                     distance_to_reference={str(s): d.as_dict() for s, d in dist.items()},
                     ranks_5_10_20=ranks)
        claim.table(f"Distance to {q.convergence.reference_label} per step count (mean over {len(roster)} seeds)",
                    ["steps", "latent MSE", "SSIM", f"mean {q.metric}"],
                    [[s, f"{np.mean(dist[s].mse):.5f}", f"{np.mean(dist[s].ssim):.4f}",
                      "n/a" if on_roster is None else f"{np.mean(on_roster[s]):.3f}"] for s in dist])
    claim.table("SSIM of the 50-200-step images to the 20-step image (per seed, 95% interval)",
                ["steps", "mean SSIM to 20 steps", "95% interval", f"needs ≥ {claim.t('indistinct_min_ssim')}"],
                [[s, round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]", claim.t("indistinct_min_ssim")]
                 for s, iv in ((s, t_interval(v)) for s, v in to_20.items())])
    gaps = "" if scores is None else f"{q.metric} below {top} steps ({len(claim_roster)} seeds): " + ", ".join(
        f"{s} steps {np.mean(scores[top]) - np.mean(scores[s]):+.3f}" for s in scores if s < top) + "; "
    claim.key(f"{gaps}SSIM to 20 steps from 50-200: {min(np.mean(v) for v in to_20.values()):.3f}; SSIM of 20 to "
              f"converged {np.mean(ssim_ref[20]):.3f}")
    q.decide(rule, {k: k for k in ("garbled_margin", "recognizable_margin", "good_margin")})


@pytest.mark.timing
@pytest.mark.claim("linear-time")
def test_linear_time(claim, timing_rounds):
    grid = claim.t("step_counts", tuple)
    names = {s: timed_name(DPM.name, s) for s in grid}
    fits = line_fits(timing_rounds, names)
    wall = line_fits(timing_rounds, names, "wall")
    claim.metric(fits=fits.as_dict(), wall_fits=wall.as_dict(), rounds=timing_rounds)
    med = {clock: [float(np.median(timing_rounds.seconds(names[s], clock))) for s in grid]
           for clock in ("cpu", "wall")}
    a, b = float(np.median(fits.a)), float(np.median(fits.b))
    claim.series(f"DPM-Solver time against steps (median of {timing_rounds.rounds} interleaved rounds)",
                 list(grid), {"CPU time (s)": med["cpu"], "wall time (s)": med["wall"]},
                 xlabel="steps", ylabel="seconds", fit={"a": a, "b": b, "r2": float(np.median(fits.r2))})
    claim.table(f"Per-round fits ({fits.clock} time decides; a and b fitted on relative errors, R² of the "
                f"least-squares line)", ["round", "a (ms)", "b (ms/step)", "R²", "a / (a + 20b)"],
                [[r + 1, round(fits.a[r] * 1e3, 2), round(fits.b[r] * 1e3, 3), round(fits.r2[r], 5),
                  round(fits.share[r], 4)] for r in range(len(fits.a))])
    r2, share = t_interval(fits.r2), t_interval(fits.share)
    claim.key(f"R² {r2.mean:.4f} [{r2.low:.4f}, {r2.high:.4f}], overhead {share.mean:.1%} "
              f"[{share.low:.1%}, {share.high:.1%}] of t(20), {b * 1e3:.2f} ms/step ({fits.clock})")
    claim.decide(linear_time(fits, min_r2=claim.t("min_r2"), max_overhead_share=claim.t("max_overhead_share"),
                             wall=wall))


@pytest.mark.claim("no-gain-past-25")
def test_no_gain_past_25(claim, engine, roster, quality_claim):
    q = quality_claim
    g25, g200 = engine.generate(roster.request(DPM, 25)), engine.generate(roster.request(DPM, 200))
    margin = q.margin("comparable_margin")
    shown = min(GRID_SEEDS, len(roster))
    claim.images("DPM-Solver at 25 (top) and 200 steps (bottom), same seeds",
                 [g.image(i) for g in (g25, g200) for i in range(shown)],
                 [f"{s} steps, seed {roster.seeds[i]}" for s in (25, 200) for i in range(shown)])

    def rule(judge):
        if judge.control is None:
            return no_gain_past_25([], [], None, margin=judge.margin("comparable_margin"), missing=judge.missing)
        return no_gain_past_25(judge.scores(g200), judge.scores(g25), judge.control,
                               margin=judge.margin("comparable_margin"), reference=judge.reference)

    q.decide_if_no_metric(rule)
    s25, s200 = q.scores(g25), q.scores(g200)
    gain = t_interval([a - b for a, b in zip(s200, s25)])
    ss = t_interval(per_seed_ssim(g25.images, g200.images))
    claim.metric(seeds=len(roster), score_25=s25, score_200=s200, gain=gain, ssim_25_to_200=ss, control=q.control,
                 metric=q.metric, margin=margin)
    if q.convergence is not None:
        claim.metric(convergence=q.convergence.as_dict(),
                     distance_25_to_reference=q.convergence.distance(g25, "25 steps").as_dict())
    claim.key(f"{q.metric} gain 200 over 25 steps {gain.mean:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]; SSIM "
              f"{ss.mean:.3f}")
    q.decide(rule, {"comparable": "comparable_margin"})
