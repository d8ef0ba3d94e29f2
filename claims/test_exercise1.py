"""Exercise 1: same model, different sampler.

Each test wires the engine to a rule in sampler_claims/rules/exercise1.py, records the evidence and ends
with `claim.decide(verdict)`, which alone sets the pytest outcome.
"""
from __future__ import annotations

import pytest

from sampler_claims.engine import Generation, Request
from sampler_claims.quality import referee_control, show_basis
from sampler_claims.rules.exercise1 import (
    LABELS,
    LESSON_SAMPLERS,
    PAIRS,
    TIMED,
    StockRun,
    cfg_counts,
    cfg_two_passes,
    comparable_quality,
    different_paths,
    lesson_code_runs,
    measure_paths,
    measure_stock_ddpm,
    ode_margin_per_seed,
    pair_key,
    pairwise_differences,
    run_exercise1,
    same_weights,
    speedup,
    speedup_analysis,
    state_hash,
)

pytestmark = pytest.mark.exercise1

#: Seeds of the Exercise 1 batch shown as images (all seeds enter the numbers).
SHOWN_SEEDS = 3


@pytest.mark.claim("same-weights")
def test_same_weights(claim, engine, prompts):
    prompt, seed = prompts.single("exercise1")
    hashes = {"before any run": state_hash(engine.pipe.unet)}
    for name, (spec, _steps) in LESSON_SAMPLERS.items():
        engine.generate(Request(spec, 2, (seed,), prompt), cached=False)
        hashes[f"after swapping to and sampling with {spec.label}"] = state_hash(engine.pipe.unet)
    verdict = same_weights(hashes)
    claim.metric(hashes=hashes)
    claim.key(f"{len(set(hashes.values()))} distinct U-Net hash(es) over {len(hashes)} checkpoints")
    claim.decide(verdict)


# ------------------------------------------------------------------------------------ shared state
def exercise1_batch(engine, roster) -> dict[str, Generation]:
    """The three samplers over the shared roster, one batched engine call each; later calls hit the cache."""
    return run_exercise1(engine, roster.prompts, roster.seeds)


def caption(name: str, gen: Generation, k: int) -> str:
    """Sampler, seed, and the batch's time and U-Net calls, as the lesson's figure titles them."""
    return (f"{LABELS[name]}, seed {gen.request.seeds[k]}: {gen.seconds:.1f} s for {len(gen.request.seeds)} "
            f"images, {gen.unet_calls} U-Net calls")


def side_by_side(claim, title: str, gens: dict[str, Generation], shown: int) -> None:
    """The three samplers side by side on the same seed, one row per seed."""
    claim.images(title, [gens[n].image(k) for k in range(shown) for n in LESSON_SAMPLERS],
                 [caption(n, gens[n], k) for k in range(shown) for n in LESSON_SAMPLERS])


@pytest.fixture(scope="module")
def stock_ddpm(engine, prompts) -> StockRun:
    """The lesson's literal DDPM line on the stock config."""
    prompt, seed = prompts.single("exercise1")
    return measure_stock_ddpm(engine, prompt, seed)


# ------------------------------------------------------------------------------------ lesson-code-runs
@pytest.mark.claim("lesson-code-runs")
def test_lesson_code_runs(claim, engine, prompts, stock_ddpm):
    prompt, seed = prompts.single("exercise1")
    spec, steps = LESSON_SAMPLERS["ddpm"]
    fixed = engine.generate(Request(spec, steps, (seed,), prompt))
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
    claim.images("DDPM@1000 with trailing spacing (the fix)", [fixed.image(0)], [caption("ddpm", fixed, 0)])
    claim.key(f"stock config: {stock_ddpm.error_type or 'ran'} at t={stock_ddpm.first_timestep}; "
              f"trailing: {fixed.unet_calls} steps ran")
    claim.decide(lesson_code_runs(stock_ddpm, fixed))


# ------------------------------------------------------------------------------------ comparable-quality
@pytest.mark.claim("comparable-quality")
def test_comparable_quality(claim, engine, roster, quality, quality_control, convergence):
    gens = exercise1_batch(engine, roster)
    control, good, bad = quality_control
    scores = {LABELS[n]: quality.scores(g) for n, g in gens.items()}
    n = len(roster)
    shown = min(SHOWN_SEEDS, n)
    margin = quality.margin(claim.t("comparable_margin"))
    side_by_side(claim, f"The three samplers on the same seeds (first {shown} of {n})", gens, shown)
    claim.images("Known-bad control: DPM-Solver@5 on the same seeds", [bad.image(k) for k in range(shown)],
                 [f"DPM-Solver@5, seed {roster.seeds[k]}" for k in range(shown)])
    if control is None:
        claim.key(f"no validated quality metric on this model ({quality.mode})")
        claim.decide(comparable_quality(scores, None, margin=margin, missing=quality.missing))
    diffs = pairwise_differences(scores)
    matches = {LABELS[k]: quality.matches(g) for k, g in gens.items()} if quality.has_checker else None
    claim.metric(seeds=n, quality_basis=quality.basis, metric=quality.metric, margin=margin, control=control,
                 scores={k: v for k, v in scores.items()}, paired_differences=diffs,
                 match_rate=None if matches is None else {k: sum(v) / len(v) for k, v in matches.items()})
    if convergence is not None:
        # The ODE half (DDIM@50, DPM-Solver@20): their distance to the converged solution from the same z_T.
        ode = {LABELS[k]: convergence.distance(g, LABELS[k]) for k, g in gens.items() if k != "ddpm"}
        claim.metric(convergence=convergence.as_dict(),
                     ode_distance_to_reference={k: d.as_dict() for k, d in ode.items()})
    referee, rv = quality.referee(), None
    if referee is not None:
        rs = {LABELS[k]: referee.checker_scores(g) for k, g in gens.items()}
        rv = comparable_quality(rs, referee_control(referee, good, bad), margin=claim.t("comparable_margin"))
        claim.metric(referee=rv.as_dict())
    show_basis(claim, quality, control, {"comparable": margin}, convergence, rv)
    claim.table(f"{quality.metric} over {n} seeds, paired by seed (95% intervals)",
                ["pair", "mean difference", "95% interval", f"margin ±{margin:g}"],
                [[p.replace("|", " − "), round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]",
                  "inside" if -margin < iv.low and iv.high < margin
                  else "outside" if iv.low >= margin or iv.high <= -margin
                  else "straddles"] for p, iv in diffs.items()])
    claim.key(" / ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in scores.items()) + f" mean {quality.metric}; "
              "control " + ("separates" if control and control.separates else "does NOT separate"))
    claim.decide(comparable_quality(scores, control, margin=margin))


# ------------------------------------------------------------------------------------ different-paths
@pytest.mark.claim("different-paths")
def test_different_paths(claim, engine, roster):
    gens = exercise1_batch(engine, roster)
    paths = measure_paths({n: g.images for n, g in gens.items()}, roster.seeds)
    claim.metric(paths=paths, ode_margin_per_seed=ode_margin_per_seed(paths))
    claim.table(f"SSIM between samplers on the same seed ({len(roster)} seeds)", ["pair", "mean SSIM", "min", "max"],
                [[f"{LABELS[a]} vs {LABELS[b]}", round(paths.mean(pair_key(a, b)), 4),
                  round(min(paths.ssim[pair_key(a, b)]), 4), round(max(paths.ssim[pair_key(a, b)]), 4)]
                 for a, b in PAIRS])
    side_by_side(claim, "Same seed, three samplers", gens, 1)
    claim.key("mean SSIM " + ", ".join(f"{LABELS[a]}–{LABELS[b]} {paths.mean(pair_key(a, b)):.3f}"
                                       for a, b in PAIRS))
    claim.decide(different_paths(paths, max_identity_ssim=claim.t("max_identity_ssim"),
                                 ordering_margin=claim.t("ordering_margin")))


# ------------------------------------------------------------------------------------ speedup
@pytest.mark.timing
@pytest.mark.claim("speedup")
def test_speedup(claim, timing_rounds):
    s = speedup_analysis(timing_rounds)
    claim.metric(speedup=s, rounds=timing_rounds)
    rows = []
    for n, key in TIMED.items():
        cpu, wall = timing_rounds.seconds(key, "cpu"), timing_rounds.seconds(key, "wall")
        iv = s.ratios.get(n)
        rows.append([LABELS[n], timing_rounds.unet_calls[key], f"{min(cpu):.3f}–{max(cpu):.3f}",
                     f"{min(wall):.3f}–{max(wall):.3f}",
                     "1" if iv is None else f"{iv.mean:.1f} [{iv.low:.1f}, {iv.high:.1f}]",
                     round(s.call_ratio.get(n, 1.0), 1), claim.t("lesson_factor").get(n, 1)])
    claim.table(f"Time over {timing_rounds.rounds} interleaved rounds (one seed, guidance 7.5; "
                f"{timing_rounds.clock} time decides)",
                ["sampler", "U-Net calls", "CPU s (range)", "wall s (range)", "speed-up vs DDPM [95%]",
                 "call ratio", "lesson"], rows)
    calls = [timing_rounds.unet_calls[k] for k in TIMED.values()]
    claim.series("Time against U-Net calls (median over rounds)", calls,
                 {f"{timing_rounds.clock} time (s)": [sorted(timing_rounds.seconds(k))[timing_rounds.rounds // 2]
                                                      for k in TIMED.values()]},
                 xlabel="U-Net calls", ylabel="seconds", fit={"a": s.intercept_s, "b": s.per_call_s, "r2": 1.0})
    claim.key(", ".join(f"{LABELS[n]} {iv.mean:.1f}x [{iv.low:.1f}, {iv.high:.1f}]" for n, iv in s.ratios.items())
              + f"; fixed overhead {s.intercept_s:.3f} s")
    claim.decide(speedup(s, claim.t("lesson_factor"), about_factor=claim.t("about_factor")))


# ------------------------------------------------------------------------------------ cfg-two-passes
@pytest.mark.claim("cfg-two-passes")
def test_cfg_two_passes(claim, engine, prompts, timing_rounds):
    prompt, seed = prompts.single("exercise1")
    spec, steps = LESSON_SAMPLERS["ddim"]
    with_cfg = engine.generate(Request(spec, steps, (seed,), prompt, guidance=7.5))
    without = engine.generate(Request(spec, steps, (seed,), prompt, guidance=1.0))
    med = {k: sorted(timing_rounds.seconds(k))[timing_rounds.rounds // 2] for k in ("ddim@50", "ddim@50 guidance 1")}
    c = cfg_counts(with_cfg, without, med["ddim@50"], med["ddim@50 guidance 1"])
    claim.metric(cfg=c)
    claim.table("DDIM@50, one image: U-Net calls with guidance 7.5 and 1.0",
                ["guidance", "U-Net calls", "batch per call", "samples evaluated", f"median {timing_rounds.clock} s"],
                [["7.5", c.cfg_calls, sorted(set(c.cfg_batch_sizes)), sum(c.cfg_batch_sizes), c.cfg_seconds],
                 ["1.0", c.plain_calls, sorted(set(c.plain_batch_sizes)), sum(c.plain_batch_sizes), c.plain_seconds]])
    claim.key(f"{c.cfg_calls} calls of batch {max(c.cfg_batch_sizes)} for {c.steps} steps (lesson: "
              f"{2 * c.steps} passes); compute x{c.sample_ratio:.0f}, time x{c.time_ratio:.2f}")
    claim.decide(cfg_two_passes(c))
