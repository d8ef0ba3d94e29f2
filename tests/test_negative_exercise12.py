"""Negative controls of Exercises 1 and 2: every rule in sampler_claims.exercise12 must fail when the
property it checks is broken, and pass on the known-good case, on the same inputs.

Samplers are broken by monkeypatching diffusers on the fast random-weight pipeline (a few steps are
enough: the rules do not depend on the step count); quality and timing rules get synthetic
measurements built from the tiny world's own renderer and from made-up times.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline
from diffusers.schedulers import scheduling_ddpm
from scipy import ndimage

from sampler_claims import registry
from sampler_claims.engine import Engine, Request
from sampler_claims.exercise12 import (
    CfgCounts,
    NoiseDraws,
    StockRun,
    Timing,
    adherence_separation,
    cfg_compute_doubles,
    cfg_counts,
    cfg_two_passes,
    comparable_quality,
    ddim_deterministic,
    ddim_depends_only_on_zT,
    ddim_eta,
    ddpm_noise_draws,
    ddpm_reproducible_when_reseeded,
    ddpm_stochastic,
    different_paths,
    lesson_code_runs,
    measure_paths,
    measure_runs,
    measure_stock_ddpm,
    newcombe_difference,
    noise_draws,
    speedup,
    speedup_analysis,
)
from sampler_claims.metrics import proportion_ci
from sampler_claims.quality import Quality
from sampler_claims.schedulers import SchedulerSpec
from sampler_claims.tinyshapes import dataset

STEPS = 4  # the rules do not depend on the step count; 4 keeps each run a few milliseconds
PROMPT = "a red circle on a blue background"
SEED = 7
T = {cid: registry.get(cid) for cid in registry.CLAIMS}
MIN_DIFF = T["ddpm-stochastic"].t("min_mean_abs_diff")
DDIM = SchedulerSpec.of("ddim")
DDPM = SchedulerSpec.of("ddpm")


@pytest.fixture
def engine(dummy_pipe) -> Engine:
    """Guard off: a broken sampler may make flat images, and the rule, not the guard, must catch it."""
    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", check=False)


def req(spec: SchedulerSpec, *, eta: float = 0.0, fixed_zT: bool = False) -> Request:
    return Request(spec, STEPS, (SEED,), PROMPT, eta=eta, latents_seed=SEED if fixed_zT else None)


def patch_step(monkeypatch: pytest.MonkeyPatch, cls: type, change: Any) -> None:
    """Replace cls.step by a wrapper; `change(original, self, args, kwargs)` returns the step's output."""
    original = cls.step

    @functools.wraps(original)  # keeps the signature, so the pipeline still passes eta and generator
    def step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return change(original, self, args, kwargs)

    monkeypatch.setattr(cls, "step", step)


# ------------------------------------------------------------------------------ lesson-code-runs
def test_lesson_code_runs_rule_follows_the_run(engine):
    broken = measure_stock_ddpm(engine, PROMPT, SEED, steps=1000)  # fails at its first step: cheap
    fine = measure_stock_ddpm(engine, PROMPT, SEED, steps=STEPS)
    assert broken.error_type == "IndexError" and broken.first_timestep == 1000 and broken.unet_calls == 1
    assert lesson_code_runs(broken)[0] is False
    assert fine.ran and lesson_code_runs(fine)[0] is True


def test_lesson_code_runs_rule_on_a_fixed_config():
    ok = StockRun(1000, {"timestep_spacing": "trailing", "steps_offset": 1}, 999, 1000, None, None, 1000)
    assert lesson_code_runs(ok)[0] is True


# ------------------------------------------------------------------------------ comparable-quality
def world(seed: int, attrs: list[dict[str, str]]) -> np.ndarray:
    """Known-good images: the tiny world's renderer drawing exactly what each prompt asks."""
    rng = np.random.default_rng(seed)
    return np.stack([dataset.render(rng, a) for a in attrs])


@pytest.fixture(scope="module")
def scenes() -> tuple[list[str], dict[str, np.ndarray]]:
    batch = dataset.sample(0, 8)
    return batch.captions, {name: world(k + 1, batch.attributes) for k, name in enumerate(("ddpm", "ddim", "dpm-solver"))}


def quality_rule(images: dict[str, np.ndarray], prompts: list[str], checker: bool,
                 control: np.ndarray | None = None) -> tuple[bool, str]:
    """The rule as the claim runs it; the adherence control defaults to a blank known-bad sampler."""
    q = Quality(has_checker=checker)
    c = T["comparable-quality"]
    stats = {n: q.measure(im, prompts) for n, im in images.items()}
    bad = q.measure(np.full_like(images["ddim"], 128) if control is None else control, prompts)
    sep = adherence_separation(stats["dpm-solver"], bad, "good", "bad")
    return comparable_quality(stats, separation=sep, max_adherence_gap=c.t("max_adherence_gap"),
                              min_adherence=c.t("min_adherence"), max_noise_ratio=c.t("max_noise_ratio"),
                              noise_floor=c.t("noise_floor"), min_sharpness_ratio=c.t("min_sharpness_ratio"))


def blur(images: np.ndarray) -> np.ndarray:
    return np.stack([ndimage.gaussian_filter(im.astype(float), sigma=(1.5, 1.5, 0)) for im in images]).round().astype(np.uint8)


def noisy(images: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(images + rng.normal(0, 25, images.shape), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("checker", [True, False], ids=["checker", "no-checker"])
def test_comparable_quality_passes_on_good_samplers(scenes, checker):
    prompts, images = scenes
    assert quality_rule(images, prompts, checker)[0] is True


@pytest.mark.parametrize("checker", [True, False], ids=["checker", "no-checker"])
@pytest.mark.parametrize("breakage", ["blank", "blurred", "noisy"])
def test_comparable_quality_fails_on_a_broken_sampler(scenes, checker, breakage):
    prompts, images = scenes
    bad = dict(images)
    if breakage == "blank":
        bad["dpm-solver"] = np.full_like(images["dpm-solver"], 128)
    elif breakage == "blurred":
        bad["dpm-solver"] = blur(images["dpm-solver"])
    else:
        bad["dpm-solver"] = noisy(images["dpm-solver"])
    holds, why = quality_rule(bad, prompts, checker)
    assert holds is False, why
    assert ("no checker" in why) is (not checker)


def test_comparable_quality_fails_on_wrong_content(scenes):
    prompts, images = scenes
    bad = dict(images)
    bad["ddim"] = images["ddim"][::-1]  # good pictures of the wrong prompts: only adherence can tell
    holds, why = quality_rule(bad, prompts, checker=True)
    assert holds is False and "adherence gap" in why


def test_adherence_does_not_decide_when_the_control_is_not_separated(scenes):
    """If adherence cannot tell the known-good sampler from the known-bad control, it must not decide."""
    prompts, images = scenes
    bad = dict(images)
    bad["ddim"] = images["ddim"][::-1]
    holds, why = quality_rule(bad, prompts, checker=True, control=images["ddpm"])  # a 'bad' control as good as good
    assert holds is True and "adherence does not decide" in why


def test_newcombe_interval_of_a_difference():
    low, high = newcombe_difference(proportion_ci(8, 8), proportion_ci(0, 8))
    assert 0.4 < low < 1.0 and high == pytest.approx(1.0)
    low, high = newcombe_difference(proportion_ci(3, 8), proportion_ci(2, 8))
    assert low < 0 < high  # 3/8 against 2/8 is no evidence of a difference


# ------------------------------------------------------------------------------ different-paths
def test_different_paths_rule(scenes):
    _prompts, images = scenes
    seeds = list(range(len(images["ddim"])))
    rng = np.random.default_rng(1)
    near = np.clip(images["ddim"] + rng.normal(0, 6, images["ddim"].shape), 0, 255).round().astype(np.uint8)
    good = {"ddim": images["ddim"], "dpm-solver": near, "ddpm": images["ddpm"]}
    thr = T["different-paths"].t("max_identity_ssim")
    assert different_paths(measure_paths(good, seeds), max_identity_ssim=thr)[0] is True
    same = {n: images["ddim"] for n in good}  # one sampler under three names
    holds, why = different_paths(measure_paths(same, seeds), max_identity_ssim=thr)
    assert holds is False and "identical" in why
    swapped = {"ddim": images["ddim"], "dpm-solver": images["ddpm"], "ddpm": near}  # DDPM next to DDIM
    holds, why = different_paths(measure_paths(swapped, seeds), max_identity_ssim=thr)
    assert holds is False and "not the closest" in why


def test_different_paths_on_one_sampler_three_times(engine):
    """The real pipeline, one scheduler under all three names: the rule must see identical images."""
    gen = engine.generate(Request(DDIM, STEPS, (SEED, SEED + 1), PROMPT))
    paths = measure_paths({n: gen.images for n in ("ddpm", "ddim", "dpm-solver")}, [SEED, SEED + 1])
    assert different_paths(paths, max_identity_ssim=T["different-paths"].t("max_identity_ssim"))[0] is False


# ------------------------------------------------------------------------------ speedup
def timings(seconds: dict[str, float]) -> dict[str, Timing]:
    calls = {"ddpm": 1000, "ddim": 50, "dpm-solver": 20}
    return {n: Timing(n, seconds[n], 1, calls[n], 2 * calls[n], calls[n]) for n in calls}


def speedup_rule(seconds: dict[str, float]) -> tuple[bool, str]:
    c = T["speedup"]
    return speedup(speedup_analysis(timings(seconds)), c.t("lesson_factor"),
                   min_share=c.t("min_share_of_call_ratio"), max_share=c.t("max_share_of_call_ratio"))


def test_speedup_holds_for_time_linear_in_calls_with_small_overhead():
    holds, why = speedup_rule({n: 0.05 + 0.01 * c for n, c in {"ddpm": 1000, "ddim": 50, "dpm-solver": 20}.items()})
    assert holds is True and "fixed overhead of 0.050 s" in why


@pytest.mark.parametrize("law", ["equal", "quadratic", "overhead-dominated"])
def test_speedup_fails_when_time_is_not_driven_by_calls(law):
    calls = {"ddpm": 1000, "ddim": 50, "dpm-solver": 20}
    seconds = {
        "equal": {n: 1.0 for n in calls},
        "quadratic": {n: 1e-5 * c**2 for n, c in calls.items()},
        "overhead-dominated": {n: 5.0 + 0.01 * c for n, c in calls.items()},
    }[law]
    holds, why = speedup_rule(seconds)
    assert holds is False, why


def test_speedup_analysis_recovers_the_overhead():
    s = speedup_analysis(timings({n: 0.3 + 0.002 * c for n, c in {"ddpm": 1000, "ddim": 50, "dpm-solver": 20}.items()}))
    assert s.intercept_s == pytest.approx(0.3) and s.per_call_s == pytest.approx(0.002) and s.r2 == pytest.approx(1)
    assert s.time_ratio["ddim"] < s.call_ratio["ddim"]


# ------------------------------------------------------------------------------ cfg-two-passes
def test_cfg_rule_says_holds_for_two_passes_per_step():
    two = CfgCounts(STEPS, 1, [1] * (2 * STEPS), [1] * STEPS)
    holds, why = cfg_two_passes(two)
    assert holds is True and cfg_compute_doubles(two)


def test_cfg_rule_on_the_real_pipeline(engine):
    cfg = engine.generate(Request(DDIM, STEPS, (SEED,), PROMPT, guidance=7.5))
    plain = engine.generate(Request(DDIM, STEPS, (SEED,), PROMPT, guidance=1.0))
    c = cfg_counts(cfg, plain)
    holds, why = cfg_two_passes(c)
    assert holds is False and c.cfg_calls == STEPS and cfg_compute_doubles(c), why


def test_cfg_compute_does_not_double_when_guidance_is_ignored():
    ignored = CfgCounts(STEPS, 1, [1] * STEPS, [1] * STEPS)
    assert not cfg_compute_doubles(ignored)
    assert cfg_two_passes(ignored)[0] is False


# ------------------------------------------------------------------------------ ddim-deterministic
def test_ddim_deterministic_holds_on_the_real_scheduler(engine):
    assert ddim_deterministic(measure_runs(engine, req(DDIM), 3, "reseed"))[0] is True


def test_ddim_deterministic_fails_when_ddim_adds_noise(engine, monkeypatch):
    def noisy_step(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        out = original(self, *args, **kwargs)
        prev = out[0] if isinstance(out, tuple) else out.prev_sample
        noise = 0.3 * torch.randn(prev.shape)  # the global RNG: not re-seeded between runs
        return (prev + noise, *out[1:]) if isinstance(out, tuple) else out.__class__(prev + noise,
                                                                                      out.pred_original_sample)

    patch_step(monkeypatch, DDIMScheduler, noisy_step)
    holds, why = ddim_deterministic(measure_runs(engine, req(DDIM), 3, "reseed"))
    assert holds is False, why


# ------------------------------------------------------------------------------ ddpm-stochastic
def test_ddpm_stochastic_holds_on_the_real_pipeline(engine):
    assert ddpm_stochastic(measure_runs(engine, req(DDPM), 3, "shared"), min_mean_abs_diff=MIN_DIFF)[0] is True


def test_ddpm_stochastic_fails_when_the_pipeline_reseeds_generators(engine, monkeypatch):
    original = StableDiffusionPipeline.__call__

    def reseeding_call(self, *args, generator=None, **kwargs):  # type: ignore[no-untyped-def]
        fresh = [torch.Generator("cpu").manual_seed(SEED) for _ in generator] if generator else None
        return original(self, *args, generator=fresh, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", reseeding_call)
    holds, why = ddpm_stochastic(measure_runs(engine, req(DDPM), 3, "shared"), min_mean_abs_diff=MIN_DIFF)
    assert holds is False, why


# ------------------------------------------------------------------------------ ddim-depends-only-on-zT
def test_depends_only_on_zT_holds_on_the_real_schedulers(engine):
    ddim, ddpm = (measure_runs(engine, req(s, fixed_zT=True), 3, "shared") for s in (DDIM, DDPM))
    assert ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF)[0] is True


def test_depends_only_on_zT_fails_when_ddim_uses_the_generator(engine, monkeypatch):
    def stochastic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 1.0})

    ddpm = measure_runs(engine, req(DDPM, fixed_zT=True), 3, "shared")
    patch_step(monkeypatch, DDIMScheduler, stochastic)
    ddim = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    holds, why = ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF)
    assert holds is False and "DDIM changed" in why


# ------------------------------------------------------------------------------ ddpm-noise-draws
def _noise_rule(engine: Engine) -> tuple[bool, str]:
    ddpm = measure_runs(engine, req(DDPM), 1, "reseed").runs[0]
    ddim = measure_runs(engine, req(DDIM), 1, "reseed").runs[0]
    # The rule's "dozens" scales with the lesson's 50 steps; here STEPS stand for them.
    return ddpm_noise_draws(noise_draws(ddpm, ddim), min_draws=STEPS)


def test_ddpm_noise_draws_holds_on_the_real_scheduler(engine):
    holds, why = _noise_rule(engine)
    assert holds is True, why


def test_ddpm_noise_draws_fails_for_a_scheduler_that_draws_no_noise(engine, monkeypatch):
    def zeros(shape, *args, dtype=None, device=None, **kwargs):  # type: ignore[no-untyped-def]
        return torch.zeros(shape, dtype=dtype, device=device)

    def noiseless(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        counting = scheduling_ddpm.randn_tensor  # whatever is installed (the counter, during a count)
        scheduling_ddpm.randn_tensor = zeros
        try:
            return original(self, *args, **kwargs)
        finally:
            scheduling_ddpm.randn_tensor = counting

    patch_step(monkeypatch, DDPMScheduler, noiseless)
    holds, why = _noise_rule(engine)
    assert holds is False and "only 0 of" in why


def test_ddpm_noise_draws_fails_on_too_few_draws():
    d = NoiseDraws(steps=10, ddpm_draws=11, ddpm_zT=1, ddpm_step_draws=[1] * 10, ddim_draws=1, ddim_zT=1,
                   ddim_step_draws=[0] * 10)
    holds, why = ddpm_noise_draws(d, min_draws=T["ddpm-noise-draws"].t("min_draws"))
    assert holds is False and "not dozens" in why


# ------------------------------------------------------------------------------ ddpm-reproducible-when-reseeded
def test_reseeded_ddpm_is_reproducible(engine):
    holds, _ = ddpm_reproducible_when_reseeded(measure_runs(engine, req(DDPM), 3, "reseed"))
    assert holds is False  # the lesson's "non-reproducible" is refuted by the real scheduler


def test_reproducible_rule_says_holds_for_ddpm_on_the_global_rng(engine, monkeypatch):
    def global_rng(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "generator": None})

    patch_step(monkeypatch, DDPMScheduler, global_rng)
    holds, why = ddpm_reproducible_when_reseeded(measure_runs(engine, req(DDPM), 3, "reseed"))
    assert holds is True, why


# ------------------------------------------------------------------------------ ddim-eta
def test_ddim_eta_holds_on_the_real_scheduler(engine):
    eta0 = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    eta1 = measure_runs(engine, req(DDIM, eta=1.0, fixed_zT=True), 3, "shared")
    assert ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF)[0] is True


def test_ddim_eta_fails_when_eta_is_ignored(engine, monkeypatch):
    def deterministic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 0.0})

    patch_step(monkeypatch, DDIMScheduler, deterministic)
    eta0 = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    eta1 = measure_runs(engine, req(DDIM, eta=1.0, fixed_zT=True), 3, "shared")
    holds, why = ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF)
    assert holds is False, why


# ------------------------------------------------------------------------------------ same-weights
def test_same_weights_fails_when_sampling_changes_the_unet(dummy_pipe_for_weights) -> None:
    """A 'scheduler swap' that nudges one U-Net weight must break the same-weights rule."""
    from sampler_claims.exercise12 import same_weights, state_hash

    unet = dummy_pipe_for_weights.unet
    hashes = {"before": state_hash(unet)}
    hashes["after an honest swap"] = state_hash(unet)
    assert same_weights(hashes)[0]
    with torch.no_grad():
        next(unet.parameters()).view(-1)[0] += 1e-3
    hashes["after a swap that retrains"] = state_hash(unet)
    holds, why = same_weights(hashes)
    assert not holds and "after a swap that retrains" in why


@pytest.fixture
def dummy_pipe_for_weights():
    from sampler_claims.models import dummy_pipeline

    return dummy_pipeline()
