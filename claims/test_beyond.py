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
    batch_differences,
    batch_images,
    batch_invariant,
    calls_to_reach_converged,
    count_broken,
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
    spacing_pairs,
    steps_are_calls,
    stock_time_embedding,
    trailing_at_few_steps,
    unguarded,
    zero_snr_needs_v,
)
from sampler_claims.rules.exercise1 import margin_position
from sampler_claims.rules.exercise3 import per_seed_ssim
from sampler_claims.rules.exercise4 import noise_control
from sampler_claims.schedulers import LABELS, short_name
from sampler_claims.verdict import paired, t_interval

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
    control = noise_control(engine.decode_captured(trajectory)[0], trajectory.images)
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
