"""Exercise 3: step count (the sweet spot, time against steps, and no gain past 25 steps).

Each test asks for its claim's declared runs by name (the step counts are the runs' own), wires them to a rule in
sampler_claims/rules/exercise3.py and ends with `claim.decide(verdict)`.
"""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims.convergence import ranks_in_order
from sampler_claims.names import LABELS
from sampler_claims.rules.exercise3 import (
    NO_GAIN_RUNS,
    SweetSpotGrid,
    judge_no_gain,
    judge_sweet_spot,
    knee_of,
    line_fits,
    linear_time,
    per_seed_ssim,
)
from sampler_claims.timing import claim_timed
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.exercise3

#: Seeds of the sweet-spot grid shown as images (all seeds enter the numbers).
GRID_SEEDS = 3


@pytest.mark.claim("sweet-spot")
def test_sweet_spot(claim, runs, roster, claim_roster, quality_claim):
    """The step grid (every declared run) on the roster (images, SSIM statements); the scored runs (those on the
    claim's longer roster, registry.SCORE_SEEDS, whose first seeds are the roster's) again on it, for the
    checker-score statements."""
    q = quality_claim
    roles = SweetSpotGrid.of(runs.claim.runs)
    name = {runs[n].steps: n for n in runs.names()}
    grid = roles.steps
    gens = {s: runs.generate(name[s], seeds=roster.seeds, prompt=roster.prompts) for s in grid}
    scored = {s: runs.generate(name[s]) for s in roles.scored}
    top, good = roles.converged, roles.good
    sampler = LABELS[runs[name[top]].sampler]
    ssim_ref = {s: per_seed_ssim(gens[s].images, gens[top].images) for s in grid}
    to_good = {s: per_seed_ssim(gens[s].images, gens[good].images) for s in roles.beyond}

    def rule(judge):
        return judge_sweet_spot(judge, scored, to_good, roles)

    scores = {s: q.scores(g) for s, g in scored.items()} if q.control is not None else None
    on_roster = {s: q.scores(gens[s]) for s in grid} if q.control is not None else None
    mean_ssim = [float(np.mean(ssim_ref[s])) for s in grid]
    claim.metric(step_counts=grid, seeds=len(roster), score_seeds=len(claim_roster), reference_steps=top,
                 quality_basis=q.quality.basis, metric=q.metric,
                 ssim_to_converged={str(s): t_interval(v) for s, v in ssim_ref.items() if s != top},
                 ssim_to_20={str(s): t_interval(v) for s, v in to_good.items()},
                 mean_score=None if scores is None else {str(s): float(np.mean(v)) for s, v in scores.items()},
                 knee_ssim_info=knee_of(grid, mean_ssim), control=q.control)
    shown = min(GRID_SEEDS, len(roster))
    claim.images(f"{sampler} at {', '.join(map(str, grid))} steps (rows: first {shown} seeds)",
                 [gens[s].image(i) for i in range(shown) for s in grid],
                 [f"seed {roster.seeds[i]}, {s} steps" for i in range(shown) for s in grid], per_row=len(grid))
    curves = {"SSIM to converged (mean)": mean_ssim}
    if on_roster is not None:
        curves[f"{q.metric} (mean)"] = [float(np.mean(on_roster[s])) for s in grid]
    claim.series(f"Quality against steps ({sampler}, the {len(roster)} roster seeds)", list(grid), curves,
                 xlabel="steps", ylabel="mean over seeds", logx=True)
    if q.convergence is not None:
        # The CLIP path (SD 1.5's): convergence to the reference from the same z_T, and the reference's own check.
        dist = {s: q.convergence.distance(gens[s], f"{s} steps") for s in grid if s != top}
        mse = [float(np.mean(dist[s].mse)) for s in dist]
        claim.series(f"Convergence to {q.convergence.reference_label} (same z_T)", list(dist),
                     {"latent MSE to reference (mean)": mse}, xlabel="steps", ylabel="latent MSE", logx=True)
        below = roles.scored[:-1]  # garbled, recognizable, good: their order of quality is the lesson's
        ranks = {"convergence (latent MSE)": ranks_in_order([np.mean(dist[s].mse) for s in below], True)}
        if scores is not None:
            ranks[q.metric] = ranks_in_order([np.mean(scores[s]) for s in below], False)
        if q.referee is not None:
            rs = {s: q.referee.scores(g) for s, g in scored.items()}
            ranks["checker score (referee)"] = ranks_in_order([np.mean(rs[s]) for s in below], False)
            claim.metric(referee_mean_score={str(s): float(np.mean(v)) for s, v in rs.items()})
        claim.metric(convergence=q.convergence.as_dict(),
                     distance_to_reference={str(s): d.as_dict() for s, d in dist.items()},
                     ranks_5_10_20=ranks)
        claim.table(f"Distance to {q.convergence.reference_label} per step count (mean over {len(roster)} seeds)",
                    ["steps", "latent MSE", "SSIM", f"mean {q.metric}"],
                    [[s, f"{np.mean(dist[s].mse):.5f}", f"{np.mean(dist[s].ssim):.4f}",
                      "n/a" if on_roster is None else f"{np.mean(on_roster[s]):.3f}"] for s in dist])
    claim.table(f"SSIM of the {min(to_good)}-{max(to_good)}-step images to the {good}-step image (per seed, 95% "
                "interval)",
                ["steps", f"mean SSIM to {good} steps", "95% interval", f"needs ≥ {claim.t('indistinct_min_ssim')}"],
                [[s, round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]", claim.t("indistinct_min_ssim")]
                 for s, iv in ((s, t_interval(v)) for s, v in to_good.items())])
    gaps = "" if scores is None else f"{q.metric} below {top} steps ({len(claim_roster)} seeds): " + ", ".join(
        f"{s} steps {np.mean(scores[top]) - np.mean(scores[s]):+.3f}" for s in scores if s < top) + "; "
    claim.key(f"{gaps}SSIM to {good} steps from {min(to_good)}-{max(to_good)}: "
              f"{min(np.mean(v) for v in to_good.values()):.3f}; SSIM of {good} to converged {np.mean(ssim_ref[good]):.3f}")
    q.decide(rule, {k: k for k in ("garbled_margin", "recognizable_margin", "good_margin")})


@pytest.mark.timing
@pytest.mark.claim("linear-time")
def test_linear_time(claim, runs, timing_rounds):
    names = {runs[run].steps: timed for run, timed in claim_timed("linear-time").items()}  # steps -> timed name
    grid = tuple(sorted(names))
    fits = line_fits(timing_rounds, names)
    wall = line_fits(timing_rounds, names, "wall")
    claim.metric(fits=fits.as_dict(), wall_fits=wall.as_dict(), rounds=timing_rounds)
    med = {clock: [float(np.median(timing_rounds.seconds(names[s], clock))) for s in grid]
           for clock in ("cpu", "wall")}
    a, b = float(np.median(fits.a)), float(np.median(fits.b))
    sampler = LABELS[runs[next(iter(claim_timed("linear-time")))].sampler]
    claim.series(f"{sampler} time against steps (median of {timing_rounds.rounds} interleaved rounds)",
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
def test_no_gain_past_25(claim, runs, roster, quality_claim):
    q = quality_claim
    gens = {name: runs.generate(name) for name in NO_GAIN_RUNS}
    (fewer, g25), (more, g200) = ((runs[n].steps, g) for n, g in gens.items())
    sampler = LABELS[runs[NO_GAIN_RUNS[0]].sampler]
    margin = q.margin("comparable_margin")
    shown = min(GRID_SEEDS, len(roster))
    claim.images(f"{sampler} at {fewer} (top) and {more} steps (bottom), same seeds",
                 [g.image(i) for g in (g25, g200) for i in range(shown)],
                 [f"{s} steps, seed {roster.seeds[i]}" for s in (fewer, more) for i in range(shown)])

    def rule(judge):
        return judge_no_gain(judge, gens, runs)

    q.decide_if_no_metric(rule)
    s25, s200 = q.scores(g25), q.scores(g200)
    gain = t_interval([a - b for a, b in zip(s200, s25)])
    ss = t_interval(per_seed_ssim(g25.images, g200.images))
    claim.metric(seeds=len(roster), score_25=s25, score_200=s200, gain=gain, ssim_25_to_200=ss, control=q.control,
                 metric=q.metric, margin=margin)
    if q.convergence is not None:
        claim.metric(convergence=q.convergence.as_dict(),
                     distance_25_to_reference=q.convergence.distance(g25, f"{fewer} steps").as_dict())
    claim.key(f"{q.metric} gain {more} over {fewer} steps {gain.mean:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]; SSIM "
              f"{ss.mean:.3f}")
    q.decide(rule, {"comparable": "comparable_margin"})
