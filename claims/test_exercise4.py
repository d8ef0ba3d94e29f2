"""Exercise 4: intermediates (callbacks, cloning, coarse-to-fine, DDPM at 10 steps, DDPM's noisier row)
and the two mechanism claims the exercise's solution makes (DDPM's formula over gaps, DPM-Solver's points
per step).

Each test wires the engine to a rule in sampler_claims/rules/exercise4.py and ends with
`claim.decide(verdict)`.
"""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims.engine import Generation, Request
from sampler_claims.quality import Roster, match_rates
from sampler_claims.rules.exercise4 import (
    DDIM,
    DDPM,
    SOLVERS,
    STEPS,
    Trace,
    adjacent_step,
    aliasing,
    callback_after_step,
    calls_per_step,
    clone_needed,
    coarse_first,
    coarse_to_fine,
    ddpm_10_worse,
    decoded_batch,
    dpm_multi_point,
    final_step_with_alpha_one,
    formula_adjacent,
    intermediates_noisier,
    late_steps,
    measure_trajectories,
    measure_formula_gap,
    measure_late_steps,
    median_settling,
    noise_control,
    rises,
    trace,
)
from sampler_claims.schedulers import make_scheduler
from sampler_claims.verdict import all_of, t_interval

pytestmark = pytest.mark.exercise4

#: Shown as image rows in the evidence (all seeds enter the numbers).
SHOWN_SEEDS = 4


@pytest.fixture(scope="module")
def traces(engine, prompts) -> dict[str, Trace]:
    """DDIM and DDPM at 10 steps on the exercise's seed, captured once for every claim of this module."""
    prompt, seed = prompts.single("exercise4")
    return {name: trace(engine, name, spec, STEPS, seed, prompt) for name, spec in (("DDIM", DDIM), ("DDPM", DDPM))}


def roster_runs(engine, roster: Roster) -> dict[str, Generation]:
    """DDIM and DDPM at 10 steps over the shared roster, captured: one batched call each, shared through the
    engine cache by coarse-to-fine and ddpm-intermediates-noisier (the trajectories) and ddpm-10-worse."""
    return {name: engine.generate(roster.request(spec, STEPS, capture=True)) for name, spec in
            (("DDIM", DDIM), ("DDPM", DDPM))}


# ----------------------------------------------------------------------------------------- callback-after-step
@pytest.mark.claim("callback-after-step")
def test_callback_after_step(claim, engine, prompts, traces):
    prompt, seed = prompts.single("exercise4")
    verdicts, rows = {}, []
    for name, spec in (("DDIM", DDIM), ("DDPM", DDPM)):
        tr = traces[name]
        latent = engine.generate(Request(spec, STEPS, (seed,), prompt, output="latent")).latents
        verdicts[name] = callback_after_step(len(tr.references), STEPS, tr.generation.intermediates[-1], latent)
        rows.append([name, len(tr.references), STEPS, verdicts[name].verdict])
    claim.table("Callbacks and the last capture", ["sampler", "callbacks", "steps", "verdict"], rows)
    claim.key(f"{rows[0][1]} callbacks / {STEPS} steps; last capture == output_type='latent': "
              f"{all(v.verdict == 'confirmed' for v in verdicts.values())}")
    claim.decide(all_of([v.named(n) for n, v in verdicts.items()], "callback after each step"))


# ----------------------------------------------------------------------------------------- clone-needed
@pytest.mark.claim("clone-needed")
def test_clone_needed(claim, traces):
    alias = {name: aliasing(tr.references, tr.generation.intermediates) for name, tr in traces.items()}
    claim.metric(**{n: a.as_dict() for n, a in alias.items()})
    claim.table("Capture without .clone()", ["sampler", "entries", "objects", "storages", "equal neighbours",
                                              "changed after capture"],
                [[n, a.entries, a.distinct_objects, a.distinct_storages, a.equal_neighbours, a.changed_after_capture]
                 for n, a in alias.items()])
    d = alias["DDIM"]
    claim.key(f"{d.distinct_storages} distinct storages of {d.entries} entries (DDIM); "
              f"{d.changed_after_capture} changed after capture")
    claim.decide(clone_needed(alias))


# ----------------------------------------------------------------------------------------- coarse-to-fine
@pytest.mark.claim("coarse-to-fine")
def test_coarse_to_fine(claim, engine, roster, traces):
    rel = claim.t("settle_rel_error")
    gens = roster_runs(engine, roster)
    n = len(roster)
    m = measure_trajectories(engine, gens, max_dip=claim.t("max_ssim_dip"), settle_rel_error=rel)
    main = "DDIM z_t decoded"
    settle = {k: median_settling(v, STEPS) for k, v in m.settling.items()}
    claim.metric(seeds=n, mean_ssim_to_final=m.curves, seeds_ok={k: sum(v) for k, v in m.ok.items()},
                 median_band_settling_step=settle, band_settling_step_per_seed=m.settling,
                 mean_curve_rises={k: rises(c, claim.t("max_ssim_dip")) for k, c in m.curves.items()},
                 coarse_first_of_medians={k: coarse_first(s)[0] for k, s in settle.items()})
    for name, tr in traces.items():
        claim.images(f"{name} at {STEPS} steps, seed {tr.generation.request.seeds[0]}: decoded z_t after each step",
                     list(tr.decoded("steps")), [f"{name} step {i + 1}" for i in range(STEPS)], per_row=STEPS)
        claim.images(f"{name} at {STEPS} steps, seed {tr.generation.request.seeds[0]}: x0 preview at each step",
                     list(tr.decoded("x0")), [f"{name} x0 @ step {i + 1}" for i in range(STEPS)], per_row=STEPS)
    steps = list(range(1, STEPS + 1))
    claim.series(f"SSIM to the final image after each step (mean over {n} seeds)", steps, m.curves,
                 xlabel="step", ylabel="SSIM")
    e = m.errors[main]
    claim.series(f"DDIM z_t: band error energy / final's band energy (mean over {n} seeds)", steps,
                 {"low": list(e[0]), "mid": list(e[1]), "high": list(e[2]), f"settled (≤ {rel})": [rel] * STEPS},
                 xlabel="step", ylabel="relative band error", logy=True)
    claim.table("Seeds whose trajectory rises smoothly and settles coarse-first (only DDIM z_t decides)",
                ["trajectory", "seeds", "share"], [[k, f"{sum(v)}/{n}", round(sum(v) / n, 3)] for k, v in m.ok.items()])
    claim.key(f"DDIM z_t smooth and coarse-first in {sum(m.ok[main])}/{n} seeds; median settling low/mid/high "
              f"{settle[main]}")
    claim.decide(coarse_to_fine(m.ok[main], typical_share=claim.t("typical_share")))


# ----------------------------------------------------------------------------------------- ddpm-10-worse
@pytest.mark.claim("ddpm-10-worse")
def test_ddpm_10_worse(claim, engine, claim_roster, quality_claim):
    q = quality_claim
    gens = roster_runs(engine, claim_roster)
    shown = min(SHOWN_SEEDS, len(claim_roster))
    margin = q.margin("much_worse_margin")
    rows = {"DDIM@10": gens["DDIM"], "DDPM@10": gens["DDPM"], "DPM-Solver@5 (control)": q.bad}
    claim.images("Finals: DDIM@10 (top), DDPM@10 (middle), control DPM-Solver@5 (bottom)",
                 [g.image(i) for g in rows.values() for i in range(shown)],
                 [f"{n}, seed {claim_roster.seeds[i]}" for n in rows for i in range(shown)])

    def rule(judge):
        if judge.control is None:
            return ddpm_10_worse([], [], None, margin=judge.margin("much_worse_margin"), missing=judge.missing)
        return ddpm_10_worse(judge.scores(rows["DDIM@10"]), judge.scores(rows["DDPM@10"]), judge.control,
                             margin=judge.margin("much_worse_margin"))

    q.decide_if_no_metric(rule)
    s = {n: q.scores(g) for n, g in rows.items()}
    m = match_rates(q.quality, rows)
    gap = t_interval([a - b for a, b in zip(s["DDIM@10"], s["DDPM@10"])])
    claim.metric(seeds=len(claim_roster), mean_score={n: float(np.mean(v)) for n, v in s.items()}, match_rate=m,
                 gap=gap, control=q.control, metric=q.metric, margin=margin)
    claim.table("Finals", ["sampler", f"mean {q.metric}", "match rate"],
                [[n, round(float(np.mean(s[n])), 4), "n/a" if m is None else round(m[n], 3)] for n in rows])
    claim.key(f"{q.metric} DDIM@10 − DDPM@10 {gap.mean:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}] (much worse: "
              f"≥ {margin:g})" + ("" if m is None else f"; match {m['DDIM@10']:.2f} vs {m['DDPM@10']:.2f}"))
    q.decide(rule, {"much worse": "much_worse_margin"})


# ----------------------------------------------------------------------------------------- ddpm-intermediates-noisier
@pytest.mark.claim("ddpm-intermediates-noisier")
def test_ddpm_intermediates_noisier(claim, engine, claim_roster):
    gens = roster_runs(engine, claim_roster)
    ddim, ddpm = decoded_batch(engine, gens["DDIM"]), decoded_batch(engine, gens["DDPM"])
    steps = late_steps(STEPS)
    m = measure_late_steps(ddim, ddpm, gens["DDIM"].images, gens["DDPM"].images, steps)
    control = noise_control(ddim[0], gens["DDIM"].images)
    noise, coh = t_interval(m.noise_gap), t_interval(m.coherence_gap)
    claim.metric(late=m, control=control)
    shown = min(2, len(claim_roster))
    for k in range(shown):
        claim.images(f"Seed {claim_roster.seeds[k]}: DDIM@10 (top) and DDPM@10 (bottom) decoded z_t after each step",
                     [ddim[i, k] for i in range(STEPS)] + [ddpm[i, k] for i in range(STEPS)],
                     [f"DDIM step {i + 1}" for i in range(STEPS)] + [f"DDPM step {i + 1}" for i in range(STEPS)],
                     per_row=STEPS)
    claim.key(f"steps {steps[0]}-{steps[-1]}: noise DDPM − DDIM {noise.mean:+.2f} [{noise.low:+.2f}, {noise.high:+.2f}]"
              f"/255; SSIM to own final DDIM − DDPM {coh.mean:+.3f} [{coh.low:+.3f}, {coh.high:+.3f}]")
    claim.decide(intermediates_noisier(m, control, margin=claim.t("margin")))


# ----------------------------------------------------------------------------------------- ddpm-formula-adjacent
@pytest.mark.claim("ddpm-formula-adjacent")
def test_ddpm_formula_adjacent(claim, engine):
    cfg = engine.stock_config
    g = measure_formula_gap(cfg, STEPS)
    adj = measure_formula_gap(cfg, STEPS, ddpm=lambda c: adjacent_step(make_scheduler(DDPM, c)[0]))
    last_mean, last_std = final_step_with_alpha_one(cfg, STEPS)
    rtol = claim.t("rtol")
    claim.metric(timesteps=g.timesteps, gaps=g.gaps, mean_rel=g.mean_rel, std_rel=g.std_rel,
                 residuals=g.residuals, ddpm_std=g.ddpm_std, ddim_eta1_std=g.ddim_std,
                 adjacent_mean_rel=adj.mean_rel, adjacent_std_rel=adj.std_rel,
                 final_step_note="the last step (t=1 -> t<0) differs only through the stock set_alpha_to_one="
                                 f"False: with DDIM set_alpha_to_one=True it matches (mean rel {last_mean:.1e}, "
                                 f"std diff {last_std:.1e})")
    claim.table("One step, same epsilon and x_t: DDPM against DDIM(eta=1) and the adjacent-step formula",
                ["t", "gap", "DDPM std", "DDIM(η=1) std", "mean rel diff", "adjacent: mean rel diff",
                 "adjacent: std rel diff"],
                [[t, gp, ps, ds, mm, am, asd] for t, gp, ps, ds, mm, am, asd in
                 zip(g.timesteps, g.gaps, g.ddpm_std, g.ddim_std, g.mean_rel, adj.mean_rel, adj.std_rel)])
    claim.key(f"DDPM == DDIM(η=1) over {g.gaps[0]}-step gaps: max rel diff {max(g.max_mean_rel, g.max_std_rel):.1e}")
    claim.decide(formula_adjacent(g, adj, rtol))


# ----------------------------------------------------------------------------------------- dpm-multi-point
@pytest.mark.claim("dpm-multi-point")
def test_dpm_multi_point(claim, engine, prompts):
    prompt, seed = prompts.single("exercise3")
    gens = {n: engine.generate(Request(spec, STEPS, (seed,), prompt)) for n, spec in SOLVERS.items()}
    single = make_scheduler(SOLVERS["DPMSolverSinglestep"], engine.stock_config)[0]
    single.set_timesteps(STEPS)
    per = {n: calls_per_step(g) for n, g in gens.items()}
    claim.metric(calls_per_step=per, unet_calls={n: g.unet_calls for n, g in gens.items()},
                 batch_sizes={n: sorted(set(g.unet_batch_sizes)) for n, g in gens.items()},
                 singlestep_order_list=list(single.order_list), steps=STEPS)
    claim.table("U-Net calls per step", ["scheduler", "steps", "U-Net calls", "calls per step"],
                [[n, STEPS, gens[n].unet_calls, per[n]] for n in SOLVERS])
    claim.key(", ".join(f"{n}: {v:g}/step" for n, v in per.items()))
    claim.decide(dpm_multi_point(per, claim.t("multi_point_calls")))
