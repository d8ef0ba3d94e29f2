"""Beyond the lesson: the sampler atlas and default-on-front (opt-in: --atlas), and three diffusers pitfalls
(final sigma, Karras sigmas, lower-order final steps). Rules in sampler_claims/rules/beyond.py."""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims.atlas import AtlasPoint, pareto_front, run_atlas
from sampler_claims.quality import noise_per_image
from sampler_claims.rules.beyond import (
    DEFAULT,
    calls_to_reach_converged,
    default_on_front,
    final_sigma_zero,
    gain_at_steps,
)
from sampler_claims.rules.exercise4 import decoded_batch, noise_control
from sampler_claims.schedulers import DDIM, LABELS, SchedulerSpec
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.beyond


@pytest.mark.claim("default-on-front")
def test_default_on_front(claim, request, engine, roster, quality_claim):
    if not request.config.getoption("--atlas"):
        claim.skip("the sampler atlas is opt-in: run with --atlas (about 3-5 minutes on a 2-core CPU)")
    q = quality_claim
    atlas = run_atlas(engine, roster, q.quality, q.good, claim.t("calls_grid", tuple))
    # The default itself, whatever step the grid landed DPM-Solver++ on (a cache hit: the roster already has it).
    g = engine.generate(roster.request(SchedulerSpec.of(DEFAULT[0]), DEFAULT[1]))
    default = AtlasPoint(DEFAULT[0], DEFAULT[1], g.unet_calls, g.seconds, g.cpu_seconds, q.scores(g))
    claim.metric(atlas=atlas, default=default.as_dict(), control=q.control)
    for cost, unit in (("calls", "U-Net calls per image"), ("seconds", "seconds per batch")):
        groups = {}
        for name in dict.fromkeys(p.scheduler for p in atlas.points):
            pts = sorted((p for p in atlas.points if p.scheduler == name and p.mean_score is not None),
                         key=lambda p: p.calls)
            if pts:
                groups[LABELS.get(name, name)] = ([p.calls if cost == "calls" else p.seconds for p in pts],
                                                  [p.mean_score for p in pts])
        front = pareto_front(atlas.points, cost)
        claim.scatter(f"{q.metric} against {unit} ({len(roster)} seeds; dashed: Pareto front)", groups,
                      xlabel=unit, ylabel=f"mean {q.metric}", logx=True,
                      front=([p.calls if cost == "calls" else p.seconds for p in front],
                             [p.mean_score for p in front]))
    reach = calls_to_reach_converged(atlas.points, q.scores(q.good) if q.control is not None else None)
    claim.table("The atlas: every compatible scheduler on the grid",
                ["scheduler", "steps", "U-Net calls", "mean score", "SSIM to converged", "s / call", "calls to 95%"],
                [[LABELS.get(p.scheduler, p.scheduler), p.steps, p.calls,
                  None if p.mean_score is None else round(p.mean_score, 4),
                  None if p.ssim_to_ref is None else round(float(np.mean(p.ssim_to_ref)), 4),
                  round(p.seconds_per_call, 5), reach.get(p.scheduler)] for p in atlas.points])
    if atlas.failed:
        claim.table("Schedulers that could not run, and why", ["scheduler", "reason"],
                    [[n, why] for n, why in atlas.failed.items()])
    front = pareto_front(atlas.points)
    claim.key(f"{len({p.scheduler for p in atlas.points})} schedulers ran, {len(atlas.failed)} could not; "
              f"front by calls: " + ", ".join(p.label for p in front))
    claim.decide(default_on_front(atlas, default, q.control, margin=q.margin("comparable_margin"),
                                  half_the_calls=claim.t("half_the_calls"), missing=q.quality.missing))


@pytest.mark.claim("final-sigma-zero")
def test_final_sigma_zero(claim, engine, roster):
    steps = claim.t("steps")
    gens = {k: engine.generate(roster.request(SchedulerSpec.of("dpm-solver", final_sigmas_type=k), steps))
            for k in ("sigma_min", "zero")}
    noise = {k: noise_per_image(g.images) for k, g in gens.items()}
    early = decoded_batch(engine, engine.generate(roster.request(DDIM, 10, capture=True)))[0]
    control = noise_control(early, engine.generate(roster.request(DDIM, 10, capture=True)).images)
    diff = t_interval([a - b for a, b in zip(noise["sigma_min"], noise["zero"])])
    shown = min(3, len(roster))
    claim.images(f"DPM-Solver++@{steps}: final_sigmas_type 'sigma_min' (top) and 'zero' (bottom)",
                 [gens[k].image(i) for k in gens for i in range(shown)],
                 [f"{k}, seed {roster.seeds[i]}" for k in gens for i in range(shown)])
    claim.metric(noise={k: float(np.mean(v)) for k, v in noise.items()}, difference=diff, control=control)
    claim.key(f"residual noise sigma_min − zero {diff.mean:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}] /255")
    claim.decide(final_sigma_zero(noise["sigma_min"], noise["zero"], control))


def _gain(claim, engine, roster, q, option: str, base: dict, what: str):
    """DPM-Solver++ with option=True against option=False (else the same config), at the claim's step counts."""
    steps = claim.t("steps", tuple)
    with_ = {s: engine.generate(roster.request(SchedulerSpec.of("dpm-solver", **{option: True}, **base), s))
             for s in steps}
    without = {s: engine.generate(roster.request(SchedulerSpec.of("dpm-solver", **{option: False}, **base), s))
               for s in steps}
    if q.control is None:
        claim.decide(gain_at_steps({}, {}, None, what, missing=q.quality.missing))
    sw = {s: q.scores(g) for s, g in with_.items()}
    so = {s: q.scores(g) for s, g in without.items()}
    gains = {s: t_interval([a - b for a, b in zip(sw[s], so[s])]) for s in steps}
    claim.table(f"{q.metric} with and without {what} (paired by seed)",
                ["steps", "with", "without", "gain [95%]"],
                [[s, round(float(np.mean(sw[s])), 4), round(float(np.mean(so[s])), 4),
                  f"{gains[s].mean:+.4f} [{gains[s].low:+.4f}, {gains[s].high:+.4f}]"] for s in steps])
    claim.metric(gains=gains, control=q.control)
    claim.key(", ".join(f"{s} steps {g.mean:+.3f}" for s, g in gains.items()) + f" score gain with {what}")
    claim.decide(gain_at_steps(sw, so, q.control, what))


@pytest.mark.claim("karras-sigmas-few-steps")
def test_karras_sigmas_few_steps(claim, engine, roster, quality_claim):
    _gain(claim, engine, roster, quality_claim, "use_karras_sigmas", {}, "Karras sigmas")


@pytest.mark.claim("lower-order-final")
def test_lower_order_final(claim, engine, roster, quality_claim):
    # diffusers forces lower_order_final=True with final_sigmas_type='zero' (its default): compare at sigma_min.
    _gain(claim, engine, roster, quality_claim, "lower_order_final", {"final_sigmas_type": "sigma_min"},
          "lower_order_final")
