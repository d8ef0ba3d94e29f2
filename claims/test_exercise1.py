"""Exercise 1: same model, different sampler.

Each test wires the engine to a rule in sampler_claims/rules/exercise1.py, records the evidence and ends
with `claim.decide(verdict)`, which alone sets the pytest outcome.
"""
from __future__ import annotations

import pytest

from sampler_claims.engine import Generation
from sampler_claims.names import LABELS as SAMPLER_LABELS
from sampler_claims.names import STOCHASTIC
from sampler_claims.quality import match_rates
from sampler_claims.rules.exercise1 import (
    cfg_counts,
    cfg_two_passes,
    decide_comparable_quality,
    decide_different_paths,
    decide_speedup,
    label,
    labels,
    lesson_code_runs,
    margin_position,
    measure_paths,
    measure_stock_ddpm,
    ode_margin_per_seed,
    pair_key,
    path_pairs,
    pairwise_differences,
    run_samplers,
    same_weights,
    speedup_analysis,
    speedup_timed,
    state_hash,
    stock_of,
)
from sampler_claims.timing import claim_timed

pytestmark = pytest.mark.exercise1

#: Seeds of the Exercise 1 batch shown as images (all seeds enter the numbers).
SHOWN_SEEDS = 3


@pytest.mark.claim("same-weights")
def test_same_weights(claim, engine, runs):
    hashes = {"before any run": state_hash(engine.pipe.unet)}
    for name in runs.names():
        runs.generate(name)
        hashes[f"after swapping to and sampling with {runs[name].spec().label}"] = state_hash(engine.pipe.unet)
    verdict = same_weights(hashes)
    claim.metric(hashes=hashes)
    claim.key(f"{len(set(hashes.values()))} distinct U-Net hash(es) over {len(hashes)} checkpoints")
    claim.decide(verdict)


# ------------------------------------------------------------------------------------ shared state
def exercise1_batch(runs) -> dict[str, Generation]:
    """The claim's three samplers over its roster, one batched engine call each; later calls hit the cache."""
    return {name: runs.generate(name) for name in runs.names()}


def caption(name: str, gen: Generation, k: int) -> str:
    """Sampler, seed, and the batch's time and U-Net calls, as the lesson's figure titles them."""
    return (f"{name}, seed {gen.request.seeds[k]}: {gen.seconds:.1f} s for {len(gen.request.seeds)} "
            f"images, {gen.unet_calls} U-Net calls")


def side_by_side(claim, title: str, gens: dict[str, Generation], names: dict[str, str], shown: int) -> None:
    """The three samplers side by side on the same seed, one row per seed (`names`: run -> label)."""
    claim.images(title, [gens[n].image(k) for k in range(shown) for n in gens],
                 [caption(names[n], gens[n], k) for k in range(shown) for n in gens], per_row=len(gens))


# ------------------------------------------------------------------------------------ comparable-quality
@pytest.mark.claim("comparable-quality")
def test_comparable_quality(claim, runs, quality_claim):
    q = quality_claim
    gens = exercise1_batch(runs)
    names = labels(claim.claim.runs)
    seeds = next(iter(gens.values())).request.seeds
    n = len(seeds)
    shown = min(SHOWN_SEEDS, n)
    margin = q.margin("comparable_margin")
    bad = f"{SAMPLER_LABELS[q.bad.request.scheduler.name]}@{q.bad.request.steps}"
    side_by_side(claim, f"The three samplers on the same seeds (first {shown} of {n})", gens, names, shown)
    claim.images(f"Known-bad control: {bad} on the same seeds", [q.bad.image(k) for k in range(shown)],
                 [f"{bad}, seed {seeds[k]}" for k in range(shown)])

    def rule(judge):
        return decide_comparable_quality(judge, {names[k]: g for k, g in gens.items()})

    q.decide_if_no_metric(rule)
    scores = {names[k]: q.scores(g) for k, g in gens.items()}
    diffs = pairwise_differences(scores)
    claim.metric(seeds=n, quality_basis=q.quality.basis, metric=q.metric, margin=margin, control=q.control,
                 scores=scores, paired_differences=diffs, match_rate=match_rates(q.quality, gens, names))
    if q.convergence is not None:
        # The ODE half (the deterministic samplers): their distance to the converged solution from the same z_T.
        ode = {names[k]: q.convergence.distance(g, names[k]) for k, g in gens.items()
               if runs[k].sampler not in STOCHASTIC}
        claim.metric(convergence=q.convergence.as_dict(),
                     ode_distance_to_reference={k: d.as_dict() for k, d in ode.items()})
    claim.table(f"{q.metric} over {n} seeds, paired by seed (95% intervals)",
                ["pair", "mean difference", "95% interval", f"margin ±{margin:g}"],
                [[p.replace("|", " − "), round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]", margin_position(iv, margin)]
                 for p, iv in diffs.items()])
    claim.key(" / ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in scores.items()) + f" mean {q.metric}; "
              "control " + ("separates" if q.control and q.control.separates else "does NOT separate"))
    q.decide(rule, {"comparable": "comparable_margin"})


# ------------------------------------------------------------------------------------ different-paths
@pytest.mark.claim("different-paths")
def test_different_paths(claim, runs):
    gens = exercise1_batch(runs)
    declared = claim.claim.runs
    names, pairs = labels(declared), path_pairs(declared)
    seeds = next(iter(gens.values())).request.seeds
    paths = measure_paths({n: g.images for n, g in gens.items()}, seeds, pairs, run_samplers(declared))
    claim.metric(paths=paths, ode_margin_per_seed=ode_margin_per_seed(paths))
    claim.table(f"SSIM between samplers on the same seed ({len(seeds)} seeds)", ["pair", "mean SSIM", "min", "max"],
                [[f"{names[a]} vs {names[b]}", round(paths.mean(pair_key(a, b)), 4),
                  round(min(paths.ssim[pair_key(a, b)]), 4), round(max(paths.ssim[pair_key(a, b)]), 4)]
                 for a, b in pairs])
    side_by_side(claim, "Same seed, three samplers", gens, names, 1)
    claim.key("mean SSIM " + ", ".join(f"{names[a]}–{names[b]} {paths.mean(pair_key(a, b)):.3f}"
                                       for a, b in pairs))
    claim.decide(decide_different_paths(claim, paths))


# ------------------------------------------------------------------------------------ speedup
@pytest.mark.timing
@pytest.mark.claim("speedup")
def test_speedup(claim, timing_rounds):
    timed = speedup_timed(claim.claim)
    base = claim.claim.run(f"timed-{timed.base}")
    s = speedup_analysis(timing_rounds, timed)
    claim.metric(speedup=s, rounds=timing_rounds)
    rows = []
    for n, key in timed.names.items():
        cpu, wall = timing_rounds.seconds(key, "cpu"), timing_rounds.seconds(key, "wall")
        iv = s.ratios.get(n)
        rows.append([timed.labels[n], timing_rounds.unet_calls[key], timing_rounds.reps.get(key, 1),
                     f"{min(cpu):.3f}–{max(cpu):.3f}", f"{min(wall):.3f}–{max(wall):.3f}",
                     "1" if iv is None else f"{iv.mean:.1f} [{iv.low:.1f}, {iv.high:.1f}]",
                     round(s.call_ratio.get(n, 1.0), 1), claim.t("lesson_factor").get(n, 1)])
    claim.table(f"Time over {timing_rounds.rounds} interleaved rounds (one seed, guidance {base.guidance:g}; "
                f"{timing_rounds.clock} time decides; per round the {timing_rounds.statistic} of calls lasting "
                f"{timing_rounds.min_time_s:g} s or more together)",
                ["sampler", "U-Net calls", "calls per round", "CPU s (range over rounds)", "wall s (range)",
                 f"speed-up vs {SAMPLER_LABELS[base.sampler]} [95%]", "call ratio", "lesson"], rows)
    calls = [timing_rounds.unet_calls[k] for k in timed.names.values()]
    claim.series("Time against U-Net calls (median over rounds)", calls,
                 {f"{timing_rounds.clock} time (s)": [sorted(timing_rounds.seconds(k))[timing_rounds.rounds // 2]
                                                      for k in timed.names.values()]},
                 xlabel="U-Net calls", ylabel="seconds", fit={"a": s.intercept_s, "b": s.per_call_s, "r2": 1.0})
    claim.key(", ".join(f"{timed.labels[n]} {iv.mean:.1f}x [{iv.low:.1f}, {iv.high:.1f}]" for n, iv in s.ratios.items())
              + f"; fixed overhead {s.intercept_s:.3f} s")
    claim.decide(decide_speedup(claim, s))


# ------------------------------------------------------------------------------------ lesson-code-runs
# After speedup: the timing rounds make this DDPM@1000 image on the same seed and prompt and keep it (in the same
# process; under xdist a worker without the rounds makes its own).
@pytest.mark.claim("lesson-code-runs")
def test_lesson_code_runs(claim, engine, runs):
    prompt, (seed,) = runs.inputs("fixed")
    stock_ddpm = measure_stock_ddpm(engine, stock_of(runs["fixed"]), prompt, seed)
    fixed = runs.generate("fixed")
    claim.metric(stock=stock_ddpm, fixed={
        "scheduler": fixed.request.scheduler.label, "steps": fixed.request.steps,
        "first_timestep": fixed.timesteps[0], "last_timestep": fixed.timesteps[-1], "unet_calls": fixed.unet_calls})
    claim.table("DDPM at 1000 steps: the lesson's line against the fix",
                ["config", "timestep_spacing", "steps_offset", "first timestep", "result"],
                [["stock (the lesson's from_config)", stock_ddpm.config["timestep_spacing"],
                  stock_ddpm.config["steps_offset"], stock_ddpm.first_timestep,
                  "ran" if stock_ddpm.ran else f"{stock_ddpm.error_type}: {stock_ddpm.error}"],
                 ["stock + timestep_spacing='trailing'", fixed.scheduler_config.get("timestep_spacing"),
                  fixed.scheduler_config.get("steps_offset"), fixed.timesteps[0],
                  f"ran: {fixed.unet_calls} U-Net calls"]])
    claim.images(f"{runs['fixed'].label} (the fix)", [fixed.image(0)], [caption(label(runs["fixed"]), fixed, 0)])
    claim.key(f"stock config: {stock_ddpm.error_type or 'ran'} at t={stock_ddpm.first_timestep}; "
              f"trailing: {fixed.unet_calls} steps ran")
    claim.decide(lesson_code_runs(stock_ddpm, fixed))


# ------------------------------------------------------------------------------------ cfg-two-passes
@pytest.mark.claim("cfg-two-passes")
def test_cfg_two_passes(claim, runs, timing_rounds):
    with_cfg = runs.generate("guided")
    without = runs.generate("unguided")
    timed = claim_timed(claim.id)
    med = [sorted(timing_rounds.seconds(timed[k]))[timing_rounds.rounds // 2]
           for k in ("timed-guided", "timed-unguided")]
    c = cfg_counts(with_cfg, without, *med)
    guided, unguided = str(runs["guided"].guidance), str(runs["unguided"].guidance)
    claim.metric(cfg=c)
    claim.table(f"{label(runs['guided'])}, one image: U-Net calls with guidance {guided} and {unguided}",
                ["guidance", "U-Net calls", "batch per call", "samples evaluated", f"median {timing_rounds.clock} s"],
                [[guided, c.cfg_calls, sorted(set(c.cfg_batch_sizes)), sum(c.cfg_batch_sizes), c.cfg_seconds],
                 [unguided, c.plain_calls, sorted(set(c.plain_batch_sizes)), sum(c.plain_batch_sizes), c.plain_seconds]])
    claim.key(f"{c.cfg_calls} calls of batch {max(c.cfg_batch_sizes)} for {c.steps} steps (lesson: "
              f"{2 * c.steps} passes); compute x{c.sample_ratio:.0f}, time x{c.time_ratio:.2f}")
    claim.decide(cfg_two_passes(c))
