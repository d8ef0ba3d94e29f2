"""Beyond the lesson: the sampler atlas and default-on-front (opt-in: --atlas), three diffusers pitfalls
(final sigma, Karras sigmas, lower-order final steps), the sweet spot against the guidance scale, steps against
U-Net calls, and where DDIM's step lands. Each test makes the runs its catalogue entry declares
(sampler_claims/catalogue/beyond.toml), by name; rules in sampler_claims/rules/beyond.py."""
from __future__ import annotations

import time

import numpy as np
import pytest

from sampler_claims.atlas import AtlasPoint, compatible, pareto_front, run_atlas
from sampler_claims.catalogue import expand
from sampler_claims.metrics import difference
from sampler_claims.quality import noise_per_image
from sampler_claims.rules.beyond import (
    StepEffect,
    calls_to_reach_converged,
    count_calls,
    ddim_step_lands,
    decide_default_on_front,
    decide_final_sigma_zero,
    decide_gain,
    decide_sweet_spot_guidance,
    evaluations_per_step,
    final_sigma_runs,
    knee_of,
    option_pairs,
    probe_ddim_step,
    steps_are_calls,
)
from sampler_claims.rules.exercise3 import per_seed_ssim
from sampler_claims.rules.exercise4 import decoded_batch, noise_control
from sampler_claims.schedulers import LABELS, short_name
from sampler_claims.verdict import t_interval

pytestmark = pytest.mark.beyond


@pytest.mark.claim("default-on-front")
def test_default_on_front(claim, request, engine, roster, runs):
    if not request.config.getoption("--atlas"):  # before the quality control: a skipped claim generates nothing
        claim.skip("the sampler atlas is opt-in: run with --atlas (about 3-5 minutes on a 2-core CPU)")
    q = request.getfixturevalue("quality_claim")
    grid = [runs[n] for n in runs.names(only="atlas") if n != "default"]
    atlas = run_atlas(engine, grid, lambda run: runs.generate(run.name), q.quality, q.good)
    # The default itself, whatever step the grid landed DPM-Solver++ on (a cache hit: the roster already has it).
    g = runs.generate("default")
    default = AtlasPoint(runs["default"].sampler, runs["default"].steps, g.unet_calls, g.seconds, g.cpu_seconds,
                         q.scores(g))
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
    claim.decide(decide_default_on_front(q.judge, atlas, default))


@pytest.mark.claim("final-sigma-zero")
def test_final_sigma_zero(claim, engine, roster, runs):
    compared = final_sigma_runs(runs.claim)  # ends at sigma_min, then at zero
    ends = {n: dict(runs[n].overrides)["final_sigmas_type"] for n in compared}
    gens = {n: runs.generate(n) for n in compared}
    noise = {n: noise_per_image(g.images) for n, g in gens.items()}
    trajectory = runs.generate("noise-control")
    control = noise_control(decoded_batch(engine, trajectory)[0], trajectory.images)
    diff = t_interval([a - b for a, b in zip(noise[compared[0]], noise[compared[1]])])
    shown = min(3, len(roster))
    first = runs[compared[0]]
    claim.images(f"{LABELS[first.sampler]}++@{first.steps}: final_sigmas_type '{ends[compared[0]]}' (top) and "
                 f"'{ends[compared[1]]}' (bottom)",
                 [gens[n].image(i) for n in gens for i in range(shown)],
                 [f"{ends[n]}, seed {roster.seeds[i]}" for n in gens for i in range(shown)])
    claim.metric(noise={ends[n]: float(np.mean(v)) for n, v in noise.items()}, difference=diff, control=control)
    claim.key(f"residual noise {ends[compared[0]]} − {ends[compared[1]]} {diff.mean:+.3f} [{diff.low:+.3f}, "
              f"{diff.high:+.3f}] /255")
    claim.decide(decide_final_sigma_zero(runs.claim, noise, control))


def _gain(claim, runs, q, option: str, what: str):
    """The claim's runs with option=True against option=False (else the same config), paired by step count."""
    pairs = option_pairs(runs.claim, option)
    steps = list(pairs)
    gens = {n: runs.generate(n) for pair in pairs.values() for n in pair}
    if q.control is None:
        claim.decide(decide_gain(runs.claim, option, {}, None, what, missing=q.quality.missing))
    scores = {n: q.scores(g) for n, g in gens.items()}
    sw = {s: scores[w] for s, (w, _) in pairs.items()}
    so = {s: scores[wo] for s, (_, wo) in pairs.items()}
    gains = {s: t_interval([a - b for a, b in zip(sw[s], so[s])]) for s in steps}
    claim.table(f"{q.metric} with and without {what} (paired by seed)",
                ["steps", "with", "without", "gain [95%]"],
                [[s, round(float(np.mean(sw[s])), 4), round(float(np.mean(so[s])), 4),
                  f"{gains[s].mean:+.4f} [{gains[s].low:+.4f}, {gains[s].high:+.4f}]"] for s in steps])
    claim.metric(gains=gains, control=q.control)
    claim.key(", ".join(f"{s} steps {g.mean:+.3f}" for s, g in gains.items()) + f" score gain with {what}")
    claim.decide(decide_gain(runs.claim, option, scores, q.control, what))


@pytest.mark.claim("karras-sigmas-few-steps")
def test_karras_sigmas_few_steps(claim, runs, quality_claim):
    _gain(claim, runs, quality_claim, "use_karras_sigmas", "Karras sigmas")


@pytest.mark.claim("lower-order-final")
def test_lower_order_final(claim, runs, quality_claim):
    # diffusers forces lower_order_final=True with final_sigmas_type='zero' (its default): the runs are at sigma_min.
    _gain(claim, runs, quality_claim, "lower_order_final", "lower_order_final")


def guidance_grid(runs) -> dict[float, dict[int, str]]:
    """sweet-spot-guidance's runs by guidance (ascending), then by steps (ascending): the most steps at each guidance is
    its converged reference, and every guidance has the same step counts (else a usage error naming them)."""
    out: dict[float, dict[int, str]] = {}
    for name in runs.names():
        out.setdefault(runs[name].guidance, {})[runs[name].steps] = name
    out = {g: dict(sorted(by.items())) for g, by in sorted(out.items())}
    grids = {tuple(by) for by in out.values()}
    if len(grids) != 1:
        raise ValueError(f"claim {runs.claim.id!r}: every guidance needs the same step counts, the runs have "
                         f"{ {g: list(by) for g, by in out.items()} }")
    return out


@pytest.mark.claim("sweet-spot-guidance")
def test_sweet_spot_guidance(claim, engine, roster, runs):
    by_guidance = guidance_grid(runs)
    *grid, ref_steps = next(iter(by_guidance.values()))
    grid = tuple(grid)
    margin = claim.t("knee_ssim", float)
    # Every guidance is measured on the first k seeds: those of the runs off the roster (8), fewer if --seeds is.
    fixed = {runs[n].seeds for by in by_guidance.values() for n in by.values() if isinstance(runs[n].seeds, int)}
    k = min([*fixed, len(roster)])
    ref_label = runs[next(iter(by_guidance.values()))[ref_steps]].label.split(" (")[0]
    knees, curves, shown = [], {}, []
    # What this claim adds to a run: its time less the roster's generations it happened to make first (a serial
    # run reaches it before sweet-spot, which would make them otherwise).
    start, cpu_start, shared = time.perf_counter(), time.process_time(), [0.0, 0.0]
    for g, names in by_guidance.items():
        # The roster's own guidance: its runs are the roster's (made once for every roster seed and shared with
        # sweet-spot and no-gain-past-25); the other guidances run on the same first k seeds.
        own = all(runs[n].seeds == "roster" for n in names.values())
        gens = {}

        def images(steps: int) -> np.ndarray:
            made = engine.stats["misses"]
            gen = runs.generate(names[steps])
            if own and engine.stats["misses"] > made:
                shared[0] += gen.seconds
                shared[1] += gen.cpu_seconds
            gens[steps] = gen
            return gen.images[:k]

        reference = images(ref_steps)
        ssim = {ref_steps: [1.0] * k}  # the reference against itself: the bracket always closes there
        for s in grid:
            # Every declared step count is made (the plan counts each), though those past the knee's upper end
            # cannot move it.
            ssim[s] = per_seed_ssim(images(s), reference)
        knee = knee_of(claim, g, ssim)
        knees.append(knee)
        curves[f"guidance {g:g}"] = [float(np.mean(ssim[s])) for s in grid]
        shown += [(g, knee.high, gens[knee.high].image(0)), (g, ref_steps, gens[ref_steps].image(0))]
    curves[f"'nearly indistinguishable' ({margin:g})"] = [margin] * len(grid)
    claim.series(f"SSIM to {ref_label} against steps ({k} seeds)", list(grid), curves,
                 xlabel="steps",
                 ylabel="mean SSIM to converged", logx=True)
    claim.table(f"The knee per guidance: SSIM to converged, mean [95% interval] over {k} seeds",
                ["guidance", "knee", "bracket", *map(str, grid)],
                [[f"{kn.guidance:g}", kn.point, f"{kn.low}–{kn.high}",
                  *[f"{kn.ssim[s].mean:.3f} [{kn.ssim[s].low:.3f}, {kn.ssim[s].high:.3f}]" if s in kn.ssim else ""
                    for s in grid]] for kn in knees])
    claim.images(f"Seed {roster.seeds[0]}: at each guidance, the knee's upper end and the converged image",
                 [im for _, _, im in shown], [f"guidance {g:g}, {s} steps" for g, s, _ in shown])
    claim.metric(knees=[kn.as_dict() for kn in knees], seeds=k, grid=list(grid), reference=ref_label,
                 added_seconds={"wall": round(time.perf_counter() - start - shared[0], 2),
                                "cpu": round(time.process_time() - cpu_start - shared[1], 2)},
                 roster_generation_seconds={"wall": round(shared[0], 2), "cpu": round(shared[1], 2)})
    claim.key("knee " + ", ".join(f"{kn.point} [{kn.low}–{kn.high}] at guidance {kn.guidance:g}" for kn in knees))
    claim.decide(decide_sweet_spot_guidance(claim, knees, (*grid, ref_steps)))


@pytest.mark.claim("steps-are-calls")
def test_steps_are_calls(claim, engine, runs):
    declared = [runs[n] for n in runs.names()]
    steps = tuple(r.steps for r in declared)
    guidances = {r.guidance for r in declared}
    if len(guidances) != 1:
        raise ValueError(f"claim {claim.id!r}: its runs must share one guidance, they have {sorted(guidances)}")
    guidance = guidances.pop()
    prompt, seeds = runs.inputs(runs.names()[0])
    per_step = evaluations_per_step(guidance)
    stock = short_name(type(engine.pipe.scheduler)) or type(engine.pipe.scheduler).__name__
    names = compatible(engine)
    # One run per compatible scheduler and declared step count, scheduler by scheduler (catalogue.expand).
    expanded = [r for name in names for run in declared for r in expand(run, names) if r.sampler == name]
    counted = count_calls(engine, expanded, seeds, prompt)
    calls, evaluations, failed = counted.calls, counted.evaluations, counted.failed
    assert stock in evaluations or stock in failed, f"the stock scheduler {stock} is not among the compatibles"

    def label(name: str) -> str:
        return LABELS.get(name, name) + (" (stock)" if name == stock else "")

    claim.table(f"U-Net calls and evaluations per image against steps x {per_step} (guidance {guidance:g}, one seed)",
                ["scheduler", *[f"{s} steps: calls / evaluations" for s in steps], "steps = calls?"],
                [[label(n), *[f"{calls[n][s]} / {evaluations[n][s]}" for s in steps],
                  "yes" if all(evaluations[n][s] == s * per_step for s in steps) else "no"] for n in evaluations])
    if failed:
        claim.table("Schedulers that could not run, and why", ["scheduler", "reason"],
                    [[label(n), why] for n, why in failed.items()])
    claim.metric(calls=calls, evaluations=evaluations, failed=failed, stock=stock, per_step=per_step)
    differ = [n for n in evaluations if any(evaluations[n][s] != s * per_step for s in steps)]
    claim.key(f"{len(differ)} of {len(evaluations)} schedulers differ: " + ", ".join(
        f"{label(n)} {calls[n][steps[-1]]} calls at {steps[-1]}" for n in differ))
    claim.decide(steps_are_calls(evaluations, failed, per_step=per_step))


@pytest.mark.claim("ddim-step-lands-on-schedule")
def test_ddim_step_lands_on_schedule(claim, engine, settings, runs):
    rtol = claim.t("rtol", float)
    # The effect runs, per spacing: diffusers' step ('stock-') and the step to the next scheduled timestep
    # ('corrected-'); the probe steps with their two samplers.
    effect_runs = {runs[n].overrides: (n, f"corrected-{n.removeprefix('stock-')}") for n in runs.names()
                   if n.startswith("stock-")}
    stock_name, corrected_name = next(iter(effect_runs.values()))
    stock_sampler, corrected_sampler = runs[stock_name].sampler, runs[corrected_name].sampler
    probes = [probe_ddim_step(engine.stock_config, sp, n, rtol, stock_sampler)
              for sp in claim.t("spacings", tuple) for n in claim.t("steps", tuple)]
    fixed = [probe_ddim_step(engine.stock_config, p.spacing, p.steps, rtol, corrected_sampler) for p in probes]
    by_spacing = {dict(key)["timestep_spacing"]: pair for key, pair in effect_runs.items()}
    claim.table("DDIMScheduler.step: the timestep whose alpha it used against the schedule's next (-1: the end)",
                ["spacing", "steps", "steps that miss", "first miss: t → used (scheduled)", "largest alpha error",
                 "corrected step misses"],
                [[p.spacing, p.steps, len(p.misses),
                  "" if p.lands else f"{p.timesteps[p.misses[0]]} → {p.used[p.misses[0]]} ({p.scheduled[p.misses[0]]})",
                  f"{max(p.rel_error):.2e}", len(f.misses)] for p, f in zip(probes, fixed)])
    effects, note = {}, ""
    if not settings.trained:
        note = f"the effect on the image is not measured on {settings.model_kind}: its random weights draw nothing"
    elif any(not f.lands for f in fixed):
        note = "the corrected step itself misses the schedule, so it is no reference for the effect"
    else:
        for p in probes:
            pair = by_spacing.get(p.spacing)
            if pair is None or p.steps != runs[pair[0]].steps or p.lands:
                continue  # a spacing's effect is measured where it misses at its declared runs' step count
            at = p.steps
            stock, corrected = runs.generate(pair[0]), runs.generate(pair[1])
            few = stock.request
            effects[p.spacing] = StepEffect(p.spacing, at, per_seed_ssim(stock.images, corrected.images),
                                            max(difference(a, b).max_abs for a, b in zip(stock.images,
                                                                                         corrected.images)))
            shown = min(3, len(few.seeds))
            claim.images(f"DDIM@{at}, timestep_spacing='{p.spacing}': diffusers' step (top) and the step to the "
                         "next scheduled timestep (bottom)",
                         [g.image(i) for g in (stock, corrected) for i in range(shown)],
                         [f"{w}, seed {few.seeds[i]}" for w in ("stock", "corrected") for i in range(shown)])
    claim.metric(probes=[p.as_dict() for p in probes], corrected=[f.as_dict() for f in fixed],
                 effects={sp: e.as_dict() for sp, e in effects.items()})
    claim.key("; ".join(f"{sp}: " + ", ".join(f"{len(p.misses)}/{p.steps}" for p in probes if p.spacing == sp)
                        + " steps miss" for sp in claim.t("spacings", tuple))
              + "".join(f"; {sp}@{e.steps} SSIM to corrected {np.mean(e.ssim):.3f}, max diff {e.max_abs}"
                        for sp, e in effects.items()))
    claim.decide(ddim_step_lands(probes, effects, min_ssim=claim.t("indistinct_min_ssim", float), effect_note=note))
