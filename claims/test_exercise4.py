"""Exercise 4: intermediates (callbacks, cloning, coarse-to-fine, DDPM at 10 steps, DDPM's noisier row)
and the two mechanism claims the exercise's solution makes (DDPM's formula over gaps, DPM-Solver's points
per step).

Each test makes the runs its catalogue entry declares (sampler_claims/catalogue/exercise4.toml), by name, wires
them to a rule in sampler_claims/rules/exercise4.py and ends with `claim.decide(verdict)`.
"""
from __future__ import annotations

import numpy as np
import pytest
from diffusers import DDPMScheduler

from sampler_claims.engine import Generation
from sampler_claims.names import LABELS
from sampler_claims.quality import match_rates
from sampler_claims.rules.exercise4 import (
    Trace,
    adjacent_step,
    aliasing,
    callback_after_step,
    calls_per_step,
    clone_needed,
    coarse_first,
    decide_coarse_to_fine,
    decide_ddpm_10_worse,
    decide_intermediates_noisier,
    dpm_multi_point,
    final_step_with_alpha_one,
    formula_adjacent,
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


def traces(runs) -> dict[str, Trace]:
    """The claim's single-seed traces (its captured runs on the exercise's seed), by sampler label, each made with
    the lesson's un-cloned callback beside the engine's clones. Each claim makes its own: a callback bypasses the
    engine's cache, and the plan counts an uncached run in every claim that declares it."""
    return {LABELS[runs[n].sampler]: trace(runs.engine, LABELS[runs[n].sampler], runs.request(n))
            for n in runs.names(seeds="single", capture=True)}


def roster_runs(runs) -> dict[str, Generation]:
    """The claim's captured runs over its roster (coarse-to-fine: the --seeds roster; ddpm-10-worse and
    ddpm-intermediates-noisier: the longer one), by sampler label, the deciding one first: one batched call each,
    shared through the engine cache by the three claims."""
    return {LABELS[runs[n].sampler]: runs.generate(n) for n in runs.names(capture=True) if runs[n].seeds != "single"}


def steps_of(runs) -> int:
    """The step count the claim's runs share (the exercise's)."""
    steps = {r.steps for r in (runs[n] for n in runs.names())}
    if len(steps) != 1:
        raise ValueError(f"claim {runs.claim.id!r}: its runs must share one step count, they have {sorted(steps)}")
    return steps.pop()


# ----------------------------------------------------------------------------------------- callback-after-step
@pytest.mark.claim("callback-after-step")
def test_callback_after_step(claim, runs):
    steps = steps_of(runs)
    verdicts, rows = {}, []
    for name, tr in traces(runs).items():
        # The same configuration's output_type='latent' result, declared beside the trace.
        latent_run = next(n for n in runs.names(output="latent") if LABELS[runs[n].sampler] == name)
        latent = runs.generate(latent_run).latents
        verdicts[name] = callback_after_step(len(tr.references), steps, tr.generation.intermediates[-1], latent)
        rows.append([name, len(tr.references), steps, verdicts[name].verdict])
    claim.table("Callbacks and the last capture", ["sampler", "callbacks", "steps", "verdict"], rows)
    claim.key(f"{rows[0][1]} callbacks / {steps} steps; last capture == output_type='latent': "
              f"{all(v.verdict == 'confirmed' for v in verdicts.values())}")
    claim.decide(all_of([v.named(n) for n, v in verdicts.items()], "callback after each step"))


# ----------------------------------------------------------------------------------------- clone-needed
@pytest.mark.claim("clone-needed")
def test_clone_needed(claim, runs):
    alias = {name: aliasing(tr.references, tr.generation.intermediates) for name, tr in traces(runs).items()}
    claim.metric(**{n: a.as_dict() for n, a in alias.items()})
    claim.table("Capture without .clone()", ["sampler", "entries", "objects", "storages", "equal neighbours",
                                              "changed after capture"],
                [[n, a.entries, a.distinct_objects, a.distinct_storages, a.equal_neighbours, a.changed_after_capture]
                 for n, a in alias.items()])
    first, d = next(iter(alias.items()))
    claim.key(f"{d.distinct_storages} distinct storages of {d.entries} entries ({first}); "
              f"{d.changed_after_capture} changed after capture")
    claim.decide(clone_needed(alias))


# ----------------------------------------------------------------------------------------- coarse-to-fine
@pytest.mark.claim("coarse-to-fine")
def test_coarse_to_fine(claim, engine, runs):
    rel = claim.t("settle_rel_error")
    steps = steps_of(runs)
    gens = roster_runs(runs)
    decides = next(iter(gens))  # the first declared roster run: DDIM's trajectory
    n = len(gens[decides].request.seeds)
    m = measure_trajectories(engine, gens, max_dip=claim.t("max_ssim_dip"), settle_rel_error=rel)
    main = f"{decides} z_t decoded"
    settle = {k: median_settling(v, steps) for k, v in m.settling.items()}
    claim.metric(seeds=n, mean_ssim_to_final=m.curves, seeds_ok={k: sum(v) for k, v in m.ok.items()},
                 median_band_settling_step=settle, band_settling_step_per_seed=m.settling,
                 mean_curve_rises={k: rises(c, claim.t("max_ssim_dip")) for k, c in m.curves.items()},
                 coarse_first_of_medians={k: coarse_first(s)[0] for k, s in settle.items()})
    for name, tr in traces(runs).items():
        claim.images(f"{name} at {steps} steps, seed {tr.generation.request.seeds[0]}: decoded z_t after each step",
                     list(tr.decoded("steps")), [f"{name} step {i + 1}" for i in range(steps)], per_row=steps)
        claim.images(f"{name} at {steps} steps, seed {tr.generation.request.seeds[0]}: x0 preview at each step",
                     list(tr.decoded("x0")), [f"{name} x0 @ step {i + 1}" for i in range(steps)], per_row=steps)
    axis = list(range(1, steps + 1))
    claim.series(f"SSIM to the final image after each step (mean over {n} seeds)", axis, m.curves,
                 xlabel="step", ylabel="SSIM")
    e = m.errors[main]
    claim.series(f"{main.removesuffix(' decoded')}: band error energy / final's band energy (mean over {n} seeds)",
                 axis, {"low": list(e[0]), "mid": list(e[1]), "high": list(e[2]), f"settled (≤ {rel})": [rel] * steps},
                 xlabel="step", ylabel="relative band error", logy=True)
    claim.table(f"Seeds whose trajectory rises smoothly and settles coarse-first (only {main.removesuffix(' decoded')} "
                "decides)",
                ["trajectory", "seeds", "share"], [[k, f"{sum(v)}/{n}", round(sum(v) / n, 3)] for k, v in m.ok.items()])
    claim.key(f"{main.removesuffix(' decoded')} smooth and coarse-first in {sum(m.ok[main])}/{n} seeds; median "
              f"settling low/mid/high {settle[main]}")
    claim.decide(decide_coarse_to_fine(claim, m.ok[main]))


# ----------------------------------------------------------------------------------------- ddpm-10-worse
@pytest.mark.claim("ddpm-10-worse")
def test_ddpm_10_worse(claim, runs, quality_claim):
    q = quality_claim
    better, worse = runs.names(capture=True)  # the gap is the first's score minus the second's
    labels = (runs[better].label, runs[worse].label)
    gens = {labels[0]: runs.generate(better), labels[1]: runs.generate(worse)}
    seeds = gens[labels[0]].request.seeds
    shown = min(SHOWN_SEEDS, len(seeds))
    margin = q.margin("much_worse_margin")
    control = f"{q.checker_control.bad_run.label} (control)"
    rows = {**gens, control: q.bad}
    claim.images(f"Finals: {labels[0]} (top), {labels[1]} (middle), control {q.checker_control.bad_run.label} "
                 "(bottom)",
                 [g.image(i) for g in rows.values() for i in range(shown)],
                 [f"{n}, seed {seeds[i]}" for n in rows for i in range(shown)])

    def rule(judge):
        return decide_ddpm_10_worse(judge, gens[labels[0]], gens[labels[1]], labels)

    q.decide_if_no_metric(rule)
    s = {n: q.scores(g) for n, g in rows.items()}
    m = match_rates(q.quality, rows)
    gap = t_interval([a - b for a, b in zip(s[labels[0]], s[labels[1]])])
    claim.metric(seeds=len(seeds), mean_score={n: float(np.mean(v)) for n, v in s.items()}, match_rate=m,
                 gap=gap, control=q.control, metric=q.metric, margin=margin)
    claim.table("Finals", ["sampler", f"mean {q.metric}", "match rate"],
                [[n, round(float(np.mean(s[n])), 4), "n/a" if m is None else round(m[n], 3)] for n in rows])
    claim.key(f"{q.metric} {labels[0]} − {labels[1]} {gap.mean:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}] (much worse: "
              f"≥ {margin:g})" + ("" if m is None else f"; match {m[labels[0]]:.2f} vs {m[labels[1]]:.2f}"))
    q.decide(rule, {"much worse": "much_worse_margin"})


# ----------------------------------------------------------------------------------------- ddpm-intermediates-noisier
@pytest.mark.claim("ddpm-intermediates-noisier")
def test_ddpm_intermediates_noisier(claim, engine, runs):
    n_steps = steps_of(runs)
    first, second = runs.names(capture=True)  # the clean sampler (DDIM), then the one the lesson calls noisier
    gens = {first: runs.generate(first), second: runs.generate(second)}
    a, b = LABELS[runs[first].sampler], LABELS[runs[second].sampler]
    seeds = gens[first].request.seeds
    ddim, ddpm = engine.decode_captured(gens[first]), engine.decode_captured(gens[second])
    steps = late_steps(n_steps)
    m = measure_late_steps(ddim, ddpm, gens[first].images, gens[second].images, steps)
    control = noise_control(ddim[0], gens[first].images)
    noise, coh = t_interval(m.noise_gap), t_interval(m.coherence_gap)
    claim.metric(late=m, control=control)
    shown = min(2, len(seeds))
    for k in range(shown):
        claim.images(f"Seed {seeds[k]}: {runs[first].label} (top) and {runs[second].label} (bottom) decoded z_t after "
                     "each step",
                     [ddim[i, k] for i in range(n_steps)] + [ddpm[i, k] for i in range(n_steps)],
                     [f"{a} step {i + 1}" for i in range(n_steps)] + [f"{b} step {i + 1}" for i in range(n_steps)],
                     per_row=n_steps)
    claim.key(f"steps {steps[0]}-{steps[-1]}: noise {b} − {a} {noise.mean:+.2f} [{noise.low:+.2f}, {noise.high:+.2f}]"
              f"/255; SSIM to own final {a} − {b} {coh.mean:+.3f} [{coh.low:+.3f}, {coh.high:+.3f}]")
    claim.decide(decide_intermediates_noisier(claim, m, control))


# ----------------------------------------------------------------------------------------- ddpm-formula-adjacent
@pytest.mark.claim("ddpm-formula-adjacent")
def test_ddpm_formula_adjacent(claim, engine):
    cfg, steps = engine.stock_config, claim.t("steps", int)
    g = measure_formula_gap(cfg, steps)
    adj = measure_formula_gap(cfg, steps, ddpm=lambda c: adjacent_step(DDPMScheduler.from_config(c)))
    last_mean, last_std = final_step_with_alpha_one(cfg, steps)
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
def test_dpm_multi_point(claim, engine, prompts, runs):
    # Exercise 3's prompt and seed (the exercise that runs these solvers), as this claim has always used.
    prompt, seed = prompts.single("exercise3")
    steps = steps_of(runs)
    schedulers = {n: make_scheduler(runs[n].spec(), engine.stock_config)[0] for n in runs.names()}
    # Shown by diffusers' class name: the claim is about the classes' calls per step.
    cls = {n: type(s).__name__.removesuffix("Scheduler") for n, s in schedulers.items()}
    gens = {cls[n]: runs.generate(n, seeds=(seed,), prompt=prompt) for n in runs.names()}
    decides = cls[runs.names()[0]]  # the lesson's DPM-Solver (multistep), declared first
    per = {n: calls_per_step(g) for n, g in gens.items()}
    numbers = {}
    for s in schedulers.values():
        if hasattr(s, "order_list"):  # the singlestep solver: which steps it takes at which order
            s.set_timesteps(steps)
            numbers["singlestep_order_list"] = list(s.order_list)
    claim.metric(calls_per_step=per, unet_calls={n: g.unet_calls for n, g in gens.items()},
                 batch_sizes={n: sorted(set(g.unet_batch_sizes)) for n, g in gens.items()}, **numbers, steps=steps)
    claim.table("U-Net calls per step", ["scheduler", "steps", "U-Net calls", "calls per step"],
                [[n, steps, gens[n].unet_calls, per[n]] for n in gens])
    claim.key(", ".join(f"{n}: {v:g}/step" for n, v in per.items()))
    claim.decide(dpm_multi_point(per, claim.t("multi_point_calls"), decides))
