"""Takeaways: DPM-Solver++ at 20-30 steps is the default to use.

Quality against the converged DPM-Solver@200 of the shared roster (the same generations as sweet-spot),
time from the run's one set of interleaved timing rounds (the same DDPM@1000 timing as speedup).
"""
from __future__ import annotations

import pytest

from sampler_claims.names import LABELS as SAMPLER_LABELS
from sampler_claims.rules.exercise1 import label
from sampler_claims.rules.exercise3 import per_seed_ssim
from sampler_claims.rules.takeaways import BASELINE, candidates, decide_recommended_default, time_shares, timed_of
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.takeaways


@pytest.mark.timing
@pytest.mark.claim("recommended-default")
def test_recommended_default(claim, runs, quality_claim, timing_rounds):
    q = quality_claim
    defaults = candidates(claim.claim)  # step count -> run name
    steps = tuple(defaults)
    reference = claim.t("quality_control").good_run
    margin = q.margin("comparable_margin")
    baseline = label(runs[BASELINE])
    sampler = " / ".join(dict.fromkeys(SAMPLER_LABELS[runs[n].sampler] for n in defaults.values()))
    base_seconds = timing_rounds.seconds(timed_of(claim.claim, BASELINE))
    shares = {s: time_shares(timing_rounds.seconds(timed_of(claim.claim, n)), base_seconds)
              for s, n in defaults.items()}
    gens = {s: runs.generate(n) for s, n in defaults.items()}
    ssim = {s: t_interval(per_seed_ssim(gens[s].images, q.good.images)) for s in steps}

    def rule(judge):
        return decide_recommended_default(judge, q.good, gens, shares)

    scores = {s: q.scores(g) for s, g in gens.items()}
    ref = q.scores(q.good)
    rows = []
    for s in steps:
        sh = t_interval(shares[s])
        gap = None if ref is None else t_interval([a - b for a, b in zip(ref, scores[s])])
        rows.append([s, "n/a" if gap is None else f"{gap.mean:+.4f} [{gap.low:+.4f}, {gap.high:+.4f}]",
                     f"{ssim[s].mean:.3f}", f"{sh.mean:.2%} [{sh.low:.2%}, {sh.high:.2%}]"])
    claim.metric(reference_steps=reference.steps, quality_basis=q.quality.basis, time_shares=shares,
                 ssim_to_converged=ssim, control=q.control, clock=timing_rounds.clock, metric=q.metric,
                 margin=margin)
    if q.convergence is not None:
        claim.metric(convergence=q.convergence.as_dict(),
                     distance_to_reference={str(s): q.convergence.distance(g, f"{s} steps").as_dict()
                                            for s, g in gens.items()})
    claim.table(f"{sampler} at {' and '.join(map(str, steps))} steps against {reference.label} and {baseline}",
                ["steps", f"converged {q.metric} − score [95%]", "SSIM to converged", f"time / {baseline} [95%]"], rows)
    claim.key("; ".join(f"{r[0]} steps: score gap {r[1].split(' ')[0]}, {r[3].split(' ')[0]} of {baseline} time"
                        for r in rows))
    q.decide(rule, {"comparable": "comparable_margin"})
