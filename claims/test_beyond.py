"""Beyond the lesson: the sampler atlas and default-on-front (opt-in: --atlas), three diffusers pitfalls
(final sigma, Karras sigmas, lower-order final steps), the sweet spot against the guidance scale, steps against
U-Net calls, and where DDIM's step lands. Rules in sampler_claims/rules/beyond.py."""
from __future__ import annotations

import time

import numpy as np
import pytest

from sampler_claims.atlas import AtlasPoint, compatible, pareto_front, run_atlas
from sampler_claims.engine import DEFAULT_GUIDANCE
from sampler_claims.metrics import difference
from sampler_claims.quality import Roster, noise_per_image
from sampler_claims.registry import Run
from sampler_claims.rules.beyond import (
    DEFAULT,
    StepEffect,
    calls_to_reach_converged,
    count_calls,
    ddim_step_lands,
    default_on_front,
    evaluations_per_step,
    final_sigma_zero,
    gain_at_steps,
    knee_at,
    probe_ddim_step,
    steps_are_calls,
    sweet_spot_guidance,
)
from sampler_claims.rules.exercise3 import per_seed_ssim
from sampler_claims.rules.exercise4 import decoded_batch, noise_control
from sampler_claims.schedulers import DDIM, LABELS, SchedulerSpec, short_name
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


@pytest.mark.claim("sweet-spot-guidance")
def test_sweet_spot_guidance(claim, engine, roster):
    ref, grid, margin = claim.t("reference", Run), claim.t("step_counts", tuple), claim.t("knee_ssim", float)
    k = min(claim.t("seeds", int), len(roster))
    spec = SchedulerSpec.of(ref.sampler)
    few = Roster(roster.prompts[:k], roster.seeds[:k])
    knees, curves, shown = [], {}, []
    # What this claim adds to a run: its time less the roster's generations it happened to make first (a serial
    # run reaches it before sweet-spot, which would make them otherwise).
    start, cpu_start, shared = time.perf_counter(), time.process_time(), [0.0, 0.0]
    for g in claim.t("guidances", tuple):
        # At the roster's own guidance the generations are the roster's (made once for every roster seed and
        # shared with sweet-spot and no-gain-past-25); the other guidances run on the same first k seeds.
        own = g == DEFAULT_GUIDANCE
        gens = {}

        def images(steps: int) -> np.ndarray:
            made = engine.stats["misses"]
            gen = engine.generate((roster if own else few).request(spec, steps, guidance=g))
            if own and engine.stats["misses"] > made:
                shared[0] += gen.seconds
                shared[1] += gen.cpu_seconds
            gens[steps] = gen
            return gen.images[:k]

        reference = images(ref.steps)
        ssim = {ref.steps: [1.0] * k}  # the reference against itself: the bracket always closes there
        for s in grid:
            ssim[s] = per_seed_ssim(images(s), reference)
            if not own and t_interval(ssim[s]).low >= margin:
                break  # the knee's upper end: later step counts cannot move it, so they are not generated
        knee = knee_at(g, ssim, margin)
        knees.append(knee)
        curves[f"guidance {g:g}"] = [float(np.mean(ssim[s])) for s in grid if s in ssim]
        shown += [(g, knee.high, gens[knee.high].image(0)), (g, ref.steps, gens[ref.steps].image(0))]
    curves[f"'nearly indistinguishable' ({margin:g})"] = [margin] * len(grid)
    claim.series(f"SSIM to {ref.label} against steps ({k} seeds; a line ends at its knee)", list(grid), curves,
                 xlabel="steps",
                 ylabel="mean SSIM to converged", logx=True)
    claim.table(f"The knee per guidance: SSIM to converged, mean [95% interval] over {k} seeds",
                ["guidance", "knee", "bracket", *map(str, grid)],
                [[f"{kn.guidance:g}", kn.point, f"{kn.low}–{kn.high}",
                  *[f"{kn.ssim[s].mean:.3f} [{kn.ssim[s].low:.3f}, {kn.ssim[s].high:.3f}]" if s in kn.ssim else ""
                    for s in grid]] for kn in knees])
    claim.images(f"Seed {roster.seeds[0]}: at each guidance, the knee's upper end and the converged image",
                 [im for _, _, im in shown], [f"guidance {g:g}, {s} steps" for g, s, _ in shown])
    claim.metric(knees=[kn.as_dict() for kn in knees], seeds=k, grid=list(grid), reference=ref.label,
                 added_seconds={"wall": round(time.perf_counter() - start - shared[0], 2),
                                "cpu": round(time.process_time() - cpu_start - shared[1], 2)},
                 roster_generation_seconds={"wall": round(shared[0], 2), "cpu": round(shared[1], 2)})
    claim.key("knee " + ", ".join(f"{kn.point} [{kn.low}–{kn.high}] at guidance {kn.guidance:g}" for kn in knees))
    claim.decide(sweet_spot_guidance(knees, (*grid, ref.steps), ratio=claim.t("knee_ratio", float)))


@pytest.mark.claim("steps-are-calls")
def test_steps_are_calls(claim, engine, prompts):
    steps, guidance = claim.t("steps", tuple), claim.t("guidance", float)
    prompt, seed = prompts.single("exercise1")
    per_step = evaluations_per_step(guidance)
    stock = short_name(type(engine.pipe.scheduler)) or type(engine.pipe.scheduler).__name__
    counted = count_calls(engine, compatible(engine), steps, prompt, seed, guidance)
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
def test_ddim_step_lands_on_schedule(claim, engine, roster, settings):
    rtol, at = claim.t("rtol", float), claim.t("effect_steps", int)
    probes = [probe_ddim_step(engine.stock_config, sp, n, rtol)
              for sp in claim.t("spacings", tuple) for n in claim.t("steps", tuple)]
    fixed = [probe_ddim_step(engine.stock_config, p.spacing, p.steps, rtol, "ddim-next") for p in probes]
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
        k = min(claim.t("effect_seeds", int), len(roster))
        few = Roster(roster.prompts[:k], roster.seeds[:k])
        for p in probes:
            if p.steps != at or p.lands:
                continue
            stock = engine.generate(few.request(SchedulerSpec.of("ddim", timestep_spacing=p.spacing), at))
            corrected = engine.generate(few.request(SchedulerSpec.of("ddim-next", timestep_spacing=p.spacing), at))
            effects[p.spacing] = StepEffect(p.spacing, at, per_seed_ssim(stock.images, corrected.images),
                                            max(difference(a, b).max_abs for a, b in zip(stock.images,
                                                                                         corrected.images)))
            shown = min(3, k)
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


# The three claims below came after the ones above; their imports sit here so that the sections stay independent.
from sampler_claims.rules.beyond import (  # noqa: E402
    batch_differences,
    batch_images,
    batch_invariant,
    stock_time_embedding,
)

#: The suffix of batch-invariant's runs that go through the suite's U-Net (shown beside, deciding nothing).
ENGINE_PATH = "-engine"


@pytest.mark.claim("batch-invariant")
def test_batch_invariant(claim, runs, engine, settings):
    # Decided on diffusers' own U-Net (what a user runs); the suite's U-Net, which embeds the timestep once per call
    # so that its chunks agree, makes the same runs beside it.
    paths = {"diffusers": [n for n in runs.names() if not n.endswith(ENGINE_PATH)],
             "suite": [n for n in runs.names() if n.endswith(ENGINE_PATH)]}
    k = min(int(runs[n].seeds) * int(runs[n].repeat) for n in runs.names())
    found: dict[str, list] = {}
    shown: list[tuple[str, np.ndarray]] = []
    for path, names in paths.items():
        for sampler in dict.fromkeys(runs[n].sampler for n in names):
            mine = [n for n in names if runs[n].sampler == sampler]
            if path == "diffusers":
                with stock_time_embedding(engine.pipe.unet):
                    by_batch = {int(runs[n].seeds): batch_images(runs, n)[:k] for n in mine}
            else:
                by_batch = {int(runs[n].seeds): batch_images(runs, n)[:k] for n in mine}
            label = runs[mine[0]].label
            found.setdefault(path, []).extend(batch_differences(label, by_batch))
            if path == "diffusers":  # the seed whose images differ most, alone and in each batch
                alone = by_batch[min(by_batch)].astype(np.int16)
                gap = [max(int(np.abs(v[i].astype(np.int16) - alone[i]).max()) for v in by_batch.values())
                       for i in range(k)]
                i = int(np.argmax(gap))
                shown += [(f"{label}, seed {runs.inputs(mine[0])[1][0] + i}, batch {b}", by_batch[b][i])
                          for b in sorted(by_batch)]
    setting = (f"{settings.device}, {str(engine.pipe.unet.dtype).removeprefix('torch.')}, one torch thread per "
               "pipeline call")
    claim.table(f"Largest pixel difference against each seed alone (first {k} roster seeds, one generator per seed)",
                ["U-Net", "sampler", "batch", "images that differ", "pixel values that differ", "largest difference"],
                [["diffusers' own" if path == "diffusers" else "the suite's (time embedding once per call)",
                  d.label, d.batch, f"{d.differing_images}/{d.images}", d.differing_pixels, d.max_abs]
                 for path, ds in found.items() for d in ds])
    claim.images("Each sampler's seed that differs most, alone and in each batch (diffusers' U-Net)",
                 [im for _, im in shown], [c for c, _ in shown])
    claim.metric(device=settings.device, dtype=settings.dtype_name, seeds=k,
                 differences={p: [d.as_dict() for d in ds] for p, ds in found.items()})
    claim.key("largest pixel difference: diffusers' U-Net " + str(max(d.max_abs for d in found["diffusers"]))
              + "/255, the suite's " + str(max(d.max_abs for d in found["suite"])) + f"/255 ({setting})")
    claim.decide(batch_invariant(found["diffusers"], same_image=claim.t("same_image", int),
                                 setting=f"{setting}, diffusers' own U-Net"))


from sampler_claims.rules.beyond import count_broken, unguarded, zero_snr_needs_v  # noqa: E402
from sampler_claims.verdict import paired  # noqa: E402


def zero_snr_runs(runs) -> dict[str, str]:  # noqa: ANN001 - ClaimRuns
    """zero-snr-needs-v's rescaled runs, each with its stock partner: the run of the same sampler and steps with no
    scheduler overrides."""
    out = {}
    for name in runs.names():
        if dict(runs[name].overrides).get("rescale_betas_zero_snr"):
            r = runs[name]
            out[name] = next(n for n in runs.names(sampler=r.sampler, steps=r.steps) if not runs[n].overrides)
    return out


@pytest.mark.claim("zero-snr-needs-v")
def test_zero_snr_needs_v(claim, runs, engine, quality_claim):
    q = quality_claim
    pairs = zero_snr_runs(runs)
    made, broken = {}, []
    for name, stock in pairs.items():
        with unguarded(engine):  # the images that break are counted, not raised
            rescaled = runs.generate(name)
        made[name] = (rescaled, runs.generate(stock))
        broken.append(count_broken(rescaled, runs[name].label))

    def rule(judge):  # noqa: ANN001, ANN202 - a quality_claim.Judge
        losses = {}
        for name, (rescaled, stock) in made.items():
            a, b = judge.scores(rescaled), judge.scores(stock)
            if a is not None and b is not None:
                losses[runs[name].label] = paired(a, b[:len(a)], f"{runs[name].label} - {runs[pairs[name]].label}")
        return zero_snr_needs_v(broken, losses, judge.control, margin=judge.margin("comparable_margin"),
                                missing=judge.missing)

    q.decide_if_no_metric(rule)
    rows = []
    for (name, (rescaled, stock)), b in zip(made.items(), broken):
        a, s = q.scores(rescaled), q.scores(stock)[:len(rescaled.request.seeds)]
        d = paired(a, s)
        rows.append([runs[name].label, runs[pairs[name]].label, f"{b.nan}/{b.images}", f"{b.constant}/{b.images}",
                     round(float(np.mean(a)), 4), round(float(np.mean(s)), 4),
                     f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"])
    claim.table(f"The zero-SNR rescale on an epsilon-prediction model: broken images and {q.metric} against the stock "
                "config (paired by seed)",
                ["with the rescale", "stock", "NaN", "constant", "score with", "score stock", "difference [95%]"], rows)
    k = min(3, *(len(g.request.seeds) for g, _ in made.values()))
    claim.images("First seeds with the rescale (top of each pair) and with the stock config",
                 [g.image(i) for pair in made.values() for g in pair for i in range(k)],
                 [f"{runs[n].label if j == 0 else runs[pairs[n]].label}, seed {g.request.seeds[i]}"
                  for n, pair in made.items() for j, g in enumerate(pair) for i in range(k)])
    claim.metric(broken=[b.as_dict() for b in broken])
    claim.key("; ".join(f"{r[0]}: NaN {r[2]}, constant {r[3]}, score {r[6]}" for r in rows))
    q.decide(rule, {"comparable": "comparable_margin"})


from sampler_claims.rules.beyond import spacing_pairs, trailing_at_few_steps  # noqa: E402
from sampler_claims.rules.exercise1 import margin_position  # noqa: E402


@pytest.mark.claim("trailing-at-few-steps")
def test_trailing_at_few_steps(claim, runs, quality_claim):
    q = quality_claim
    pairs = spacing_pairs({n: runs[n] for n in runs.names()})

    def rule(judge, ssim=None):  # noqa: ANN001, ANN202 - a quality_claim.Judge
        return trailing_at_few_steps({k: v[0] for k, v in (ssim or {}).items()},
                                     {k: v[1] for k, v in (ssim or {}).items()}, judge.control, judge.missing)

    q.decide_if_no_metric(rule)
    made = {k: (runs.generate(a), runs.generate(b)) for k, (a, b) in pairs.items()}
    converged = runs.generate("converged")  # its first roster seeds are the quality control's good run
    reference = converged.images
    ssim = {k: (per_seed_ssim(a.images, reference[:len(a.images)]), per_seed_ssim(b.images, reference[:len(b.images)]))
            for k, (a, b) in made.items()}
    margin = q.margin("comparable_margin")
    rows = []
    for k, (a, b) in made.items():
        gain = t_interval([t - s for s, t in zip(*ssim[k])])
        sa, sb = q.scores(a), q.scores(b)
        score = t_interval([y - x for x, y in zip(sa, sb)])
        rows.append([k, len(a.images), round(float(np.mean(ssim[k][0])), 4), round(float(np.mean(ssim[k][1])), 4),
                     f"{gain.mean:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]",
                     f"{score.mean:+.4f} [{score.low:+.4f}, {score.high:+.4f}]", margin_position(score, margin)])
    claim.table(f"SSIM to {runs['converged'].label} and {q.metric}, 'trailing' against 'leading' (paired by seed)",
                ["configuration", "seeds", "SSIM leading", "SSIM trailing", "SSIM gain [95%]", f"{q.metric} trailing - leading",
                 f"against ±{margin:g}"], rows)
    shown = min(3, len(reference))
    claim.images("First seeds: 'leading' (top of each pair), 'trailing', and the converged image",
                 [g.image(i) for pair in made.values() for g in pair for i in range(shown)]
                 + [converged.image(i) for i in range(shown)],
                 [f"{runs[n].label}, seed {g.request.seeds[i]}" for k, pair in made.items()
                  for n, g in zip(pairs[k], pair) for i in range(shown)]
                 + [f"{runs['converged'].label}, seed {converged.request.seeds[i]}" for i in range(shown)])
    claim.metric(ssim_gain={r[0]: r[4] for r in rows}, score_difference={r[0]: r[5] for r in rows})
    claim.key("SSIM gain trailing - leading: " + ", ".join(f"{r[0]} {r[4]}" for r in rows))
    q.decide(lambda judge: rule(judge, ssim), {"comparable": "comparable_margin"})
