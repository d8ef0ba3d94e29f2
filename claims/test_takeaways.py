"""Takeaways: DPM-Solver++ at 20-30 steps is the default to use.

Quality against the converged DPM-Solver@200 of the shared roster (the same generations as sweet-spot),
time from the run's one set of interleaved timing rounds (the same DDPM@1000 timing as speedup).
"""
from __future__ import annotations

import pytest

from sampler_claims.quality import referee_control, show_basis
from sampler_claims.rules.exercise3 import DPM, per_seed_ssim
from sampler_claims.rules.takeaways import DEFAULT_STEPS, recommended_default, time_shares
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.takeaways

REFERENCE_STEPS = 200


@pytest.mark.timing
@pytest.mark.claim("recommended-default")
def test_recommended_default(claim, engine, roster, quality, quality_control, convergence, timing_rounds):
    control, good, bad = quality_control
    margin = quality.margin(claim.t("comparable_margin"))
    check = convergence.check if convergence is not None else None
    ddpm = timing_rounds.seconds("ddpm@1000")
    shares = {s: time_shares(timing_rounds.seconds(f"dpm@{s}"), ddpm) for s in DEFAULT_STEPS}
    gens = {s: engine.generate(roster.request(DPM, s)) for s in DEFAULT_STEPS}
    ssim = {s: t_interval(per_seed_ssim(gens[s].images, good.images)) for s in DEFAULT_STEPS}
    scores = {s: quality.scores(g) for s, g in gens.items()}
    ref = quality.scores(good)
    rows = []
    for s in DEFAULT_STEPS:
        sh = t_interval(shares[s])
        gap = None if ref is None else t_interval([a - b for a, b in zip(ref, scores[s])])
        rows.append([s, "n/a" if gap is None else f"{gap.mean:+.4f} [{gap.low:+.4f}, {gap.high:+.4f}]",
                     f"{ssim[s].mean:.3f}", f"{sh.mean:.2%} [{sh.low:.2%}, {sh.high:.2%}]"])
    claim.metric(reference_steps=REFERENCE_STEPS, quality_basis=quality.basis, time_shares=shares,
                 ssim_to_converged=ssim, control=control, clock=timing_rounds.clock, metric=quality.metric,
                 margin=margin)
    if convergence is not None:
        claim.metric(convergence=convergence.as_dict(),
                     distance_to_reference={str(s): convergence.distance(g, f"{s} steps").as_dict()
                                            for s, g in gens.items()})
    referee, rv = quality.referee(), None
    if referee is not None:
        rv = recommended_default(
            referee.checker_scores(good), {s: referee.checker_scores(g) for s, g in gens.items()}, shares,
            referee_control(referee, good, bad), margin=claim.t("comparable_margin"),
            max_time_share=claim.t("max_time_share"))
        claim.metric(referee=rv.as_dict())
    show_basis(claim, quality, control, {"comparable": margin}, convergence, rv)
    claim.table(f"DPM-Solver at 20 and 25 steps against DPM-Solver@{REFERENCE_STEPS} and DDPM@1000",
                ["steps", f"converged {quality.metric} − score [95%]", "SSIM to converged", "time / DDPM@1000 [95%]"], rows)
    claim.key("; ".join(f"{r[0]} steps: score gap {r[1].split(' ')[0]}, {r[3].split(' ')[0]} of DDPM@1000 time"
                        for r in rows))
    if control is None:
        claim.decide(recommended_default([], {}, shares, None, margin=margin,
                                         max_time_share=claim.t("max_time_share"), missing=quality.missing))
    claim.decide(recommended_default(ref, scores, shares, control, margin=margin,
                                     max_time_share=claim.t("max_time_share"), check=check))
