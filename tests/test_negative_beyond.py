"""Negative controls of the claims beyond the lesson: default-on-front, final-sigma-zero, karras-sigmas-few-steps,
lower-order-final, sweet-spot-guidance, steps-are-calls, ddim-step-lands-on-schedule, batch-invariant,
trailing-at-few-steps and zero-snr-needs-v turn their verdicts when the property is broken.

The statistical claims' controls go through the claim's own wiring (the rules module's decide_* function the test
calls, with the claim's catalogue entry: its runs and margins) and feed differences of both signs, at about 0.8x and
1.5x the margin where the claim has one, so that halving or doubling a margin, or flipping the sign of a difference,
in the catalogue turns one of them."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from negative_support import scores, shifted

from sampler_claims import registry
from sampler_claims.atlas import Atlas, AtlasPoint, calls_to_reach, pareto_front
from sampler_claims.claim_runs import ClaimRuns
from sampler_claims.prompts import Prompts
from sampler_claims.quality_claim import Judge
from sampler_claims.rules.beyond import (
    Breakage,
    StepEffect,
    batch_differences,
    batch_images,
    batch_invariant,
    count_broken,
    count_calls,
    ddim_step_lands,
    decide_default_on_front,
    decide_final_sigma_zero,
    decide_gain,
    decide_sweet_spot_guidance,
    default_on_front,
    final_sigma_runs,
    final_sigma_zero,
    gain_at_steps,
    knee_at,
    knee_of,
    option_pairs,
    probe_ddim_step,
    spacing_pairs,
    steps_are_calls,
    stock_time_embedding,
    sweet_spot_guidance,
    trailing_at_few_steps,
    unguarded,
    zero_snr_needs_v,
)
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation, t_interval

MARGIN = registry.get("default-on-front").t("comparable_margin")
HALF = registry.get("default-on-front").t("half_the_calls")
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")
BLIND = separation("score", scores(0.8), scores(0.8), "good", "bad")


def _atlas(cheap_gap: float) -> tuple[Atlas, AtlasPoint]:
    base = scores(0.85)
    default = AtlasPoint("dpm-solver", 20, 20, 1.0, 1.0, base)
    pts = [AtlasPoint("ddim", 10, 10, 0.5, 0.5, shifted(base, cheap_gap, seed=2)),
           AtlasPoint("euler", 5, 5, 0.25, 0.25, shifted(base, -0.4, seed=3)),
           AtlasPoint("ddim", 50, 50, 2.5, 2.5, shifted(base, 0.0, seed=4)), default]
    return Atlas(pts), default


@pytest.mark.negative_of("default-on-front")
def test_default_on_front_confirms_when_every_cheap_sampler_is_clearly_worse():
    atlas, default = _atlas(-0.3)
    assert default_on_front(atlas, default, CONTROL, margin=MARGIN, half_the_calls=HALF).verdict == CONFIRMED


@pytest.mark.negative_of("default-on-front")
def test_a_sampler_as_good_at_half_the_calls_refutes_it_and_is_named():
    atlas, default = _atlas(0.0)
    v = default_on_front(atlas, default, CONTROL, margin=MARGIN, half_the_calls=HALF)
    assert v.verdict == REFUTED and "DDIM@10" in v.reason


@pytest.mark.negative_of("default-on-front")
def test_default_on_front_needs_a_validated_metric():
    atlas, default = _atlas(0.0)
    assert default_on_front(atlas, default, BLIND, margin=MARGIN, half_the_calls=HALF).verdict == INCONCLUSIVE
    assert default_on_front(atlas, default, None, margin=MARGIN, half_the_calls=HALF).verdict == INCONCLUSIVE


FRONT = registry.get("default-on-front")


@pytest.mark.parametrize(("factor", "verdict"), [(-1.5, CONFIRMED), (-0.8, REFUTED), (0.8, REFUTED),
                                                 (1.5, REFUTED)])
@pytest.mark.negative_of("default-on-front")
def test_default_on_front_turns_at_the_comparable_margin(factor, verdict):
    """Through the claim's wiring (its catalogue margin and share of calls, on the checker's scale): a sampler at half
    the calls 1.5x the margin worse leaves the default on the front; 0.8x the margin worse, or any better, reaches its
    quality and refutes it. Halving or doubling the margin, or flipping its sign, turns one of these."""
    margin = registry.COMPARABLE.value  # as its argument computes it, not as the entry states it: an edit shows
    atlas, default = _atlas(0.0)
    atlas.points[0] = AtlasPoint("ddim", 10, 10, 0.5, 0.5, shifted(default.scores, factor * margin, sd=0.005,
                                                                    seed=2))
    judge = Judge("checker score", lambda s: s, CONTROL, lambda m: m, FRONT.t)
    assert decide_default_on_front(judge, atlas, default).verdict == verdict


@pytest.mark.negative_of("default-on-front")
def test_pareto_front_and_calls_to_reach():
    atlas, _ = _atlas(0.1)
    front = pareto_front(atlas.points)
    assert [p.label for p in front] == ["Euler@5", "DDIM@10"]  # cheapest, then best; the rest are dominated
    reach = calls_to_reach(atlas.points, 0.9)
    assert reach["ddim"] == 10 and reach["euler"] is None


def _noisy(sd: float, n: int = 16, seed: int = 0) -> list[float]:
    return list(np.random.default_rng(seed).normal(sd, 0.1, n))


@pytest.mark.negative_of("final-sigma-zero")
def test_final_sigma_zero_turns_with_the_residual_noise():
    noise_ok = separation("residual noise", _noisy(6.0), _noisy(1.0, seed=1), "noisy", "clean")
    assert final_sigma_zero(_noisy(2.0), _noisy(1.0, seed=2), noise_ok).verdict == CONFIRMED
    assert final_sigma_zero(_noisy(1.0), _noisy(1.0), noise_ok).verdict == REFUTED  # the same: nothing removed
    noise_blind = separation("residual noise", _noisy(1.0), _noisy(1.0), "noisy", "clean")
    assert final_sigma_zero(_noisy(2.0), _noisy(1.0, seed=2), noise_blind).verdict == INCONCLUSIVE


@pytest.mark.parametrize(("gap", "verdict"), [(1.0, CONFIRMED), (-1.0, REFUTED), (0.0, REFUTED)])
@pytest.mark.negative_of("final-sigma-zero")
def test_final_sigma_zero_through_its_runs(gap, verdict):
    """Through the claim's wiring: residual noise by the catalogue's run names, the sigma_min run noisier by `gap`
    than the zero run (both signs; no difference refutes). Swapping the runs' order in the catalogue flips it."""
    claim = registry.get("final-sigma-zero")
    sigma_min, zero = final_sigma_runs(claim)
    assert dict(claim.runs[sigma_min].overrides)["final_sigmas_type"] == "sigma_min"
    noise_ok = separation("residual noise", _noisy(6.0), _noisy(1.0, seed=1), "noisy", "clean")
    base = _noisy(1.0, seed=2)
    noise = {sigma_min: shifted(base, gap, sd=0.05 if gap else 0.0, seed=3), zero: base}
    assert decide_final_sigma_zero(claim, noise, noise_ok).verdict == verdict


@pytest.mark.negative_of("karras-sigmas-few-steps", "lower-order-final")
def test_an_option_that_helps_at_every_step_count_is_confirmed_and_one_that_hurts_refuted():
    base = {s: scores(0.6, seed=s) for s in (5, 10)}
    helps = {s: shifted(v, 0.1, seed=s + 1) for s, v in base.items()}
    hurts = {s: shifted(v, -0.1, seed=s + 1) for s, v in base.items()}
    assert gain_at_steps(helps, base, CONTROL, "x").verdict == CONFIRMED
    assert gain_at_steps(hurts, base, CONTROL, "x").verdict == REFUTED
    assert gain_at_steps(base, base, CONTROL, "x").verdict == REFUTED  # identical configs: no gain at all
    assert gain_at_steps(helps, base, BLIND, "x").verdict == INCONCLUSIVE
    assert gain_at_steps({}, {}, None, "x").verdict == INCONCLUSIVE


@pytest.mark.parametrize(("claim_id", "option"), [("karras-sigmas-few-steps", "use_karras_sigmas"),
                                                  ("lower-order-final", "lower_order_final")])
@pytest.mark.negative_of("karras-sigmas-few-steps", "lower-order-final")
def test_a_gain_claim_through_its_runs(claim_id, option):
    """Through the claim's wiring: scores by the catalogue's run names, paired by its step counts. A gain at every
    step count confirms; a loss at every one, or a gain at all but one (the one-sided case), refutes."""
    claim = registry.get(claim_id)
    pairs = option_pairs(claim, option)
    assert len(pairs) >= 2 and all(dict(claim.runs[w].overrides)[option] is True for w, _ in pairs.values())

    def verdict(gain_at) -> str:
        out = {}
        for s, (with_, without) in pairs.items():
            out[without] = scores(0.6, seed=s)
            out[with_] = shifted(out[without], gain_at(s), seed=s + 1)
        return decide_gain(claim, option, out, CONTROL, option).verdict

    last = max(pairs)
    assert verdict(lambda s: 0.1) == CONFIRMED
    assert verdict(lambda s: -0.1) == REFUTED
    assert verdict(lambda s: 0.1 if s != last else -0.1) == REFUTED
    assert decide_gain(claim, option, {}, None, option).verdict == INCONCLUSIVE


# ------------------------------------------------------------------------------------------ sweet-spot-guidance
KNEE = registry.get("sweet-spot-guidance")
#: The claim's step counts (every guidance has the same) and its reference's, the most: from its runs.
_STEPS = sorted({r.steps for r in KNEE.runs.values()})
GRID, REF = tuple(_STEPS[:-1]), _STEPS[-1]
MARGIN_SSIM = KNEE.t("knee_ssim")


def _curve(guidance: float, reaches_at: int, sd: float = 0.005, n: int = 8, seed: int = 0) -> dict[int, list[float]]:
    """Per-seed SSIM to converged that sits at 0.80 before `reaches_at` steps and at 0.99 from there on."""
    rng = np.random.default_rng(seed)
    out = {s: list(np.clip(rng.normal(0.99 if s >= reaches_at else 0.80, sd, n), 0, 1)) for s in GRID}
    out[REF] = [1.0] * n
    return out


def _knees(reach: dict[float, int], sd: float = 0.005):
    return [knee_at(g, _curve(g, s, sd, seed=i), MARGIN_SSIM) for i, (g, s) in enumerate(reach.items())]


@pytest.mark.negative_of("sweet-spot-guidance")
def test_a_knee_that_does_not_move_with_guidance_is_confirmed():
    v = sweet_spot_guidance(_knees({1.0: 20, 3.0: 20, 7.5: 25, 12.0: 25}), (*GRID, REF), ratio=KNEE.t("knee_ratio"))
    assert v.verdict == CONFIRMED


@pytest.mark.negative_of("sweet-spot-guidance")
def test_a_knee_that_doubles_with_guidance_is_refuted():
    knees = _knees({1.0: 10, 3.0: 10, 7.5: 25, 12.0: 50})
    assert [(k.low, k.high, k.point) for k in knees][::3] == [(10, 10, 10), (50, 50, 50)]
    v = sweet_spot_guidance(knees, (*GRID, REF), ratio=KNEE.t("knee_ratio"))
    assert v.verdict == REFUTED and "5.0x" in v.reason


@pytest.mark.negative_of("sweet-spot-guidance")
def test_a_knee_never_reached_before_the_reference_closes_at_the_reference():
    knees = _knees({1.0: 5, 12.0: REF})
    assert (knees[1].low, knees[1].high) == (REF, REF)
    assert sweet_spot_guidance(knees, (*GRID, REF), ratio=KNEE.t("knee_ratio")).verdict == REFUTED


@pytest.mark.negative_of("sweet-spot-guidance")
def test_knees_2_5x_apart_are_refuted_and_two_grid_steps_under_the_ratio_undecided():
    v = sweet_spot_guidance(_knees({1.0: 20, 12.0: 50}), (*GRID, REF), ratio=KNEE.t("knee_ratio"))  # 2.5x: refuted
    assert v.verdict == REFUTED
    v = sweet_spot_guidance(_knees({1.0: 10, 12.0: 25}), (*GRID, REF), ratio=10.0)  # two grid steps, under 10x
    assert v.verdict == INCONCLUSIVE


@pytest.mark.parametrize(("weak", "strong", "verdict"), [(10, 25, REFUTED), (20, 25, CONFIRMED), (25, 10, INCONCLUSIVE)])
@pytest.mark.negative_of("sweet-spot-guidance")
def test_sweet_spot_guidance_turns_at_the_knee_ratio(weak, strong, verdict):
    """Through the claim's wiring (its knee_ssim and knee_ratio): the knee at the strongest guidance 1.25x the ratio
    above the weakest's (10 -> 25 steps, 2.5x against 2) refutes; 0.625x of it (20 -> 25, the nearest the grid has to
    0.8x) is within one grid step and confirms; a knee that falls with guidance (the other sign) refutes nothing.
    Halving the ratio refutes the second, doubling it leaves the first undecided."""
    knees = [knee_of(KNEE, g, _curve(g, s, seed=i)) for i, (g, s) in enumerate(((1.0, weak), (12.0, strong)))]
    assert decide_sweet_spot_guidance(KNEE, knees, (*GRID, REF)).verdict == verdict


@pytest.mark.negative_of("sweet-spot-guidance")
def test_a_wide_spread_widens_the_bracket_and_keeps_the_verdict_open():
    noisy = knee_at(12.0, _curve(12.0, 50, sd=0.15, n=3), MARGIN_SSIM)
    assert noisy.low < noisy.high  # the interval straddles the margin over several step counts
    quiet = knee_at(1.0, _curve(1.0, 5), MARGIN_SSIM)
    v = sweet_spot_guidance([quiet, noisy], (*GRID, REF), ratio=KNEE.t("knee_ratio"))
    assert v.verdict in (REFUTED, INCONCLUSIVE) and v.verdict != CONFIRMED
    one_seed = knee_at(1.0, _curve(1.0, 5, n=1), MARGIN_SSIM)  # no interval from one seed: the bracket is the grid
    assert (one_seed.low, one_seed.high) == (GRID[0], REF)
    assert sweet_spot_guidance([one_seed, one_seed], (*GRID, REF), ratio=KNEE.t("knee_ratio")).verdict == INCONCLUSIVE


# ------------------------------------------------------------------------------------------------ steps-are-calls
def _runs(names: list[str], steps: tuple[int, ...]):  # noqa: ANN202
    """steps-are-calls' declared run (its guidance, output and cache flag) for each scheduler at each step count, as
    catalogue.expand makes them, at a few steps."""
    run = next(iter(registry.get("steps-are-calls").runs.values()))
    return [replace(run, name=f"{n}-{s}", sampler=n, steps=s) for n in names for s in steps]


@pytest.mark.negative_of("steps-are-calls")
def test_steps_are_calls_on_the_real_pipeline_names_the_schedulers_that_differ(engine):
    steps = (3, 5)
    counted = count_calls(engine, _runs(["ddim", "dpm-solver", "pndm", "heun", "no-such-scheduler"], steps), (0,),
                          "a red circle")
    assert counted.calls["ddim"] == {3: 3, 5: 5} and counted.evaluations["ddim"] == {3: 6, 5: 10}
    assert counted.calls["pndm"] == {3: 4, 5: 6} and counted.calls["heun"] == {3: 5, 5: 9}
    assert "no-such-scheduler" in counted.failed
    v = steps_are_calls(counted.evaluations, counted.failed, per_step=2)
    assert v.verdict == REFUTED and "PNDM" in v.reason and "Heun" in v.reason and "DDIM" not in v.reason
    ok = {n: counted.evaluations[n] for n in ("ddim", "dpm-solver")}
    assert steps_are_calls(ok, {}, per_step=2).verdict == CONFIRMED
    assert steps_are_calls(ok, {"dpm-sde": "ImportError"}, per_step=2).verdict == INCONCLUSIVE


@pytest.mark.negative_of("steps-are-calls")
def test_a_scheduler_that_adds_a_timestep_is_caught(engine, monkeypatch):
    from diffusers import DDIMScheduler

    original = DDIMScheduler.set_timesteps

    def one_more(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        self.timesteps = torch.cat([self.timesteps, self.timesteps[-1:]])  # the last timestep evaluated twice

    monkeypatch.setattr(DDIMScheduler, "set_timesteps", one_more)
    counted = count_calls(engine, _runs(["ddim"], (3,)), (0,), "a red circle")
    assert counted.calls["ddim"] == {3: 4}
    assert steps_are_calls(counted.evaluations, counted.failed, per_step=2).verdict == REFUTED


# ------------------------------------------------------------------------------------ ddim-step-lands-on-schedule
DDIM_CLAIM = registry.get("ddim-step-lands-on-schedule")


def _probes(engine, run: str):  # noqa: ANN001, ANN202
    """The probe at every spacing and step count, with the sampler of the claim's run `run` ('stock-trailing':
    diffusers' DDIM; 'corrected-trailing': the step to the next scheduled timestep)."""
    scheduler = DDIM_CLAIM.run(run).sampler
    return [probe_ddim_step(engine.stock_config, sp, n, DDIM_CLAIM.t("rtol"), scheduler)
            for sp in DDIM_CLAIM.t("spacings") for n in DDIM_CLAIM.t("steps")]


@pytest.mark.negative_of("ddim-step-lands-on-schedule")
def test_the_step_to_the_next_scheduled_timestep_lands_everywhere_and_is_confirmed(engine):
    v = ddim_step_lands(_probes(engine, "corrected-trailing"), {}, min_ssim=DDIM_CLAIM.t("indistinct_min_ssim"))
    assert v.verdict == CONFIRMED


@pytest.mark.negative_of("ddim-step-lands-on-schedule")
def test_diffusers_step_misses_with_linspace_and_with_trailing_at_30(engine):
    probes = _probes(engine, "stock-trailing")
    misses = {(p.spacing, p.steps): len(p.misses) for p in probes}
    assert all(misses[("leading", n)] == 0 for n in DDIM_CLAIM.t("steps"))
    assert misses[("trailing", 10)] == misses[("trailing", 50)] == 0 and misses[("trailing", 30)] > 0
    lin10 = next(p for p in probes if (p.spacing, p.steps) == ("linspace", 10))
    assert (lin10.timesteps[0], lin10.used[0], lin10.scheduled[0]) == (999, 899, 888)  # t - 1000 // 10, not 888
    effects = {"linspace": StepEffect("linspace", 30, [0.99, 0.98, 0.99], 20),
               "trailing": StepEffect("trailing", 30, [0.5, 0.6, 0.55], 200)}
    v = ddim_step_lands(probes, effects, min_ssim=DDIM_CLAIM.t("indistinct_min_ssim"))
    assert v.verdict == REFUTED and "linspace" in v.reason and "leading: lands" in v.reason
    assert "nearly indistinguishable" in v.reason and "visibly different" in v.reason


@pytest.mark.negative_of("ddim-step-lands-on-schedule")
def test_the_corrected_step_is_the_stock_step_where_the_stock_step_lands(engine):
    from sampler_claims.engine import Request
    from sampler_claims.schedulers import SchedulerSpec

    same = [engine.generate(Request(SchedulerSpec.of(n, timestep_spacing="leading"), 5, (0,), "a red circle"))
            for n in ("ddim", "ddim-next")]
    assert torch.equal(same[0].latents, same[1].latents)
    differ = [engine.generate(Request(SchedulerSpec.of(n, timestep_spacing="linspace"), 5, (0,), "a red circle"))
              for n in ("ddim", "ddim-next")]
    assert not torch.equal(differ[0].latents, differ[1].latents)


@pytest.mark.negative_of("default-on-front")
def test_the_atlas_makes_the_declared_runs_and_lists_what_it_could_not(engine):
    """The atlas is default-on-front's declared runs, scheduler by scheduler: each made through the given function
    (the claim's runs fixture), its calls counted; a scheduler that cannot be made, and a compatible one without
    runs, are listed with why, never dropped."""
    from types import SimpleNamespace

    from sampler_claims.atlas import compatible, run_atlas
    from sampler_claims.engine import Request

    declared = [r for r in registry.get("default-on-front").runs.values() if r.sampler == "ddim"][:2]
    runs = [replace(r, steps=s) for r, s in zip(declared, (2, 3))] + [replace(declared[0], sampler="no-such")]
    made = []

    def generate(run):  # noqa: ANN001, ANN202
        made.append(run.name)
        return engine.generate(Request(run.spec(), run.steps, (0,), "a red circle"))

    reference = generate(runs[0])
    made.clear()
    quality = SimpleNamespace(scores=lambda gen: None)
    atlas = run_atlas(engine, runs, generate, quality, reference)
    assert [(p.scheduler, p.steps, p.calls) for p in atlas.points] == [("ddim", 2, 2), ("ddim", 3, 3)]
    assert made == [runs[0].name, runs[1].name]
    assert "no-such" in atlas.failed
    assert all(n in atlas.failed for n in compatible(engine) if n != "ddim")

# ------------------------------------------------------------------------------------------------ batch-invariant


BATCH = registry.get("batch-invariant")


def _batch_runs(engine, claim=BATCH) -> ClaimRuns:  # noqa: ANN001
    return ClaimRuns(claim, engine, Prompts(tiny_world=False), 16)


def _by_batch(runs: ClaimRuns, sampler: str, shared: bool) -> dict[int, np.ndarray]:
    names = [n for n in runs.names(sampler=sampler) if not n.endswith("-engine")]
    k = min(int(runs[n].seeds) * int(runs[n].repeat) for n in names)
    with stock_time_embedding(runs.engine.pipe.unet):
        return {int(runs[n].seeds): batch_images(runs, n, shared_generator=shared)[:k] for n in names}


@pytest.mark.negative_of("batch-invariant")
def test_a_generator_shared_by_the_batch_changes_every_image_and_refutes_it(engine):
    """`[g] * n` is one generator: each image's z_T is the next draw of one stream, so an image depends on its place
    in the batch. The claim's own runs and wiring, with the shared generator, must refute it by far more than the
    kernels' rounding does with one generator per seed."""
    runs = _batch_runs(engine)
    for sampler in dict.fromkeys(r.sampler for r in BATCH.runs.values()):
        own = batch_differences(sampler, _by_batch(runs, sampler, shared=False))
        shared = batch_differences(sampler, _by_batch(runs, sampler, shared=True))
        v = batch_invariant(shared, same_image=BATCH.t("same_image"), setting="dummy")
        assert v.verdict == REFUTED and max(d.max_abs for d in shared) > 32
        assert max(d.max_abs for d in own) <= 2  # one generator per seed: the kernels' rounding at most


@pytest.mark.negative_of("batch-invariant")
def test_the_same_images_at_every_batch_confirm_it_and_one_pixel_level_refutes_it():
    images = np.random.default_rng(0).integers(0, 256, (8, 4, 4, 3), dtype=np.uint8)
    same = batch_differences("DDIM@5", {1: images, 4: images.copy(), 16: images.copy()})
    assert batch_invariant(same, same_image=BATCH.t("same_image"), setting="cpu").verdict == CONFIRMED
    moved = images.copy()
    moved[3, 0, 0, 0] = moved[3, 0, 0, 0] ^ 1  # one pixel value, one level
    one = batch_differences("DDIM@5", {1: images, 4: images, 16: moved})
    v = batch_invariant(one, same_image=BATCH.t("same_image"), setting="cpu")
    assert v.verdict == REFUTED and "1/255" in v.reason and "batch 16: 1/8 images" in v.reason


@pytest.mark.negative_of("batch-invariant")
def test_the_stock_time_embedding_is_restored(engine):
    unet = engine.pipe.unet
    patched = unet.__dict__["get_time_embed"]
    with stock_time_embedding(unet):
        assert "get_time_embed" not in unet.__dict__
    assert unet.__dict__["get_time_embed"] is patched


# ----------------------------------------------------------------------------------------------- zero-snr-needs-v
ZERO_SNR = registry.get("zero-snr-needs-v")
RESCALE = "rescale_betas_zero_snr"


def _rescaled_runs() -> list:
    return [r for r in ZERO_SNR.runs.values() if dict(r.overrides).get(RESCALE)]


def _diff(mean: float, n: int = 8) -> list[float]:
    """n paired score differences around `mean`, tightly spread: the side of the margin they fall on is known."""
    return list(np.random.default_rng(5).normal(mean, 0.005, n))


def _without_rescale(run):  # noqa: ANN001, ANN202
    """The claim's run with the rescale taken out (the trailing spacing kept)."""
    return replace(run, overrides=tuple((k, v) for k, v in run.overrides if k != RESCALE))


@pytest.mark.negative_of("zero-snr-needs-v")
def test_without_the_rescale_no_image_breaks_and_the_claim_turns(engine):
    """The claim's own runs on random weights (the division by zero needs no model): with the rescale DDIM's images
    are NaN; with the same config less the rescale none is, and the rule, fed those counts and a score difference
    inside the margin, refutes the claim."""
    margin = ZERO_SNR.t("comparable_margin")
    control = CONTROL
    broken, intact = [], []
    for run in _rescaled_runs():
        with unguarded(engine):
            short = replace(run, steps=4)  # the first step already divides: a few steps keep it fast
            broken.append(count_broken(engine.generate(short.request((0, 1), "a red circle")), run.label))
            plain = _without_rescale(short)
            intact.append(count_broken(engine.generate(plain.request((0, 1), "a red circle")), run.label))
    assert any(b.nan == b.images for b in broken)  # DDIM: the zero alpha-bar divides
    assert all(b.broken == 0 for b in intact)
    near = {b.label: t_interval(_diff(-0.8 * margin)) for b in intact}
    assert zero_snr_needs_v(intact, near, control, margin=margin).verdict == REFUTED
    lost = {b.label: t_interval(_diff(-1.5 * margin)) for b in intact}
    assert zero_snr_needs_v(intact, lost, control, margin=margin).verdict == CONFIRMED


@pytest.mark.negative_of("zero-snr-needs-v")
def test_nan_images_confirm_it_without_a_metric_and_an_intact_sampler_refutes_it():
    margin = ZERO_SNR.t("comparable_margin")
    nan = Breakage("DDIM@50 (rescaled)", 8, 8, 8)
    intact = Breakage("DPM-Solver@20 (rescaled)", 8, 0, 0)
    assert zero_snr_needs_v([nan], {}, None, margin=margin).verdict == CONFIRMED
    lost = {intact.label: t_interval(_diff(-1.5 * margin))}
    assert zero_snr_needs_v([nan, intact], lost, CONTROL, margin=margin).verdict == CONFIRMED
    assert zero_snr_needs_v([nan, intact], lost, BLIND, margin=margin).verdict == INCONCLUSIVE
    kept = {intact.label: t_interval(_diff(+0.5 * margin))}
    assert zero_snr_needs_v([nan, intact], kept, CONTROL, margin=margin).verdict == REFUTED


# ------------------------------------------------------------------------------------------ trailing-at-few-steps

TRAILING = registry.get("trailing-at-few-steps")


def _swapped(runs: dict) -> dict:
    """The claim's runs with 'leading' and 'trailing' exchanged in every run's overrides (the names kept)."""
    flip = {"leading": "trailing", "trailing": "leading"}
    return {n: replace(r, overrides=tuple((k, flip.get(v, v) if k == "timestep_spacing" else v)
                                          for k, v in r.overrides)) for n, r in runs.items()}


def _measured(gain: float) -> dict[str, list[float]]:
    """Per run name, per-seed SSIM to the converged image: the runs the catalogue declares 'trailing' closer by
    `gain` than their 'leading' partners."""
    rng = np.random.default_rng(3)
    out = {}
    for name, r in TRAILING.runs.items():
        base = 0.7 + 0.05 * rng.standard_normal(32)
        trailing = dict(r.overrides).get("timestep_spacing") == "trailing"
        out[name] = list(base + (gain if trailing else 0.0) + 0.005 * rng.standard_normal(32))
    return out


def _decide(runs: dict, measured: dict[str, list[float]], control=CONTROL):  # noqa: ANN001, ANN202
    pairs = spacing_pairs(runs)
    return trailing_at_few_steps({k: measured[a] for k, (a, _) in pairs.items()},
                                 {k: measured[b] for k, (_, b) in pairs.items()}, control)


@pytest.mark.negative_of("trailing-at-few-steps")
def test_swapped_spacings_turn_trailing_at_few_steps():
    """The claim's own runs, paired by their declared spacings: with trailing closer it is confirmed; with the
    spacings swapped in the declaration (the images staying where they were) the same measurements refute it."""
    measured = _measured(0.1)
    assert set(spacing_pairs(TRAILING.runs)) == {"DDIM@5", "DDIM@10", "DPM-Solver@5", "DPM-Solver@10"}
    assert _decide(TRAILING.runs, measured).verdict == CONFIRMED
    assert _decide(_swapped(TRAILING.runs), measured).verdict == REFUTED
    assert _decide(TRAILING.runs, measured, BLIND).verdict == INCONCLUSIVE


@pytest.mark.negative_of("trailing-at-few-steps")
def test_no_gain_refutes_and_a_gain_in_some_configurations_only_does_not_confirm():
    same = _measured(0.1)
    for lead, trail in spacing_pairs(TRAILING.runs).values():
        same[trail] = list(same[lead])
    assert _decide(TRAILING.runs, same).verdict == REFUTED  # identical images: not closer
    measured = _measured(0.1)
    lead, trail = spacing_pairs(TRAILING.runs)["DDIM@10"]
    measured[trail] = list(np.array(measured[lead]) - 0.05)  # one configuration where trailing is further
    v = _decide(TRAILING.runs, measured)
    assert v.verdict == REFUTED and "DDIM@10" in v.reason


def test_the_rescale_makes_the_last_alpha_bar_zero_so_an_epsilon_step_divides_by_zero_on_sd15s_config():
    """zero-snr-needs-v's model-free part, on SD 1.5's own scheduler config (fixtures/sd15-random): the rescaled
    schedule's last alpha-bar is 0, 'trailing' starts there, and DDIM's epsilon step x0 = (x - sqrt(1 - a) eps) /
    sqrt(a) is not finite whatever the model predicts; DPM-Solver++ clamps it to 2**-24 (x0 then multiplies the
    model's error by 4096). Without the rescale the first step is finite."""
    from sampler_claims import paths
    from sampler_claims.plan import stock_scheduler_config
    from sampler_claims.schedulers import make_scheduler

    stock = stock_scheduler_config(str(paths.SD15_RANDOM))
    assert stock.get("prediction_type", "epsilon") == "epsilon"
    rng = torch.Generator().manual_seed(0)
    for run in _rescaled_runs():
        for rescaled, r in ((True, run), (False, _without_rescale(run))):
            sched, _ = make_scheduler(r.spec(), stock)
            sched.set_timesteps(r.steps)
            t = int(sched.timesteps[0])
            last = float(sched.alphas_cumprod[t])
            if not rescaled:
                assert last > 0
            elif run.sampler == "ddim":
                assert t == 999 and last == 0.0
                sample, eps = torch.randn(1, 4, 8, 8, generator=rng), torch.randn(1, 4, 8, 8, generator=rng)
                assert not torch.isfinite(sched.step(eps, t, sample).pred_original_sample).all()
            else:
                assert t == 999 and last == 2 ** -24
