"""Negative controls for the claims of Exercises 3 and 4 and the takeaways.

Each rule in sampler_claims.exercise34 is shown to FAIL when the property it checks is broken (quadratic
time, a sampler that keeps improving, an in-place scheduler, an off-by-one callback, a shuffled
trajectory, DDPM with the adjacent-step beta, ...) and to pass on a known-good input, on the fast
random-weight pipeline or on synthetic inputs.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, PNDMScheduler

from sampler_claims import paths, registry
from sampler_claims.engine import Engine, Request
from sampler_claims.exercise34 import (
    DDIM,
    DDPM,
    DPM,
    adjacent_step,
    aliasing,
    callback_after_step_verdict,
    calls_per_step,
    coarse_first,
    knee,
    linear_fit_verdict,
    measure_formula_gap,
    median_settling,
    much_worse,
    multi_point,
    recommended_default,
    rises,
    settling_steps,
    ssim_knee,
    ssim_series,
    sweet_spot_statements,
    trace,
)
from sampler_claims.metrics import residual_noise
from sampler_claims.schedulers import SchedulerSpec

PROMPT = "a red circle on a blue background"
STEPS = registry.get("sweet-spot").t("step_counts")


def t_of(claim_id: str):
    return registry.get(claim_id).t


@pytest.fixture
def engine(dummy_pipe) -> Engine:
    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", check=False)


@pytest.fixture(scope="module")
def stock_config():
    return PNDMScheduler.load_config(paths.SD15_RANDOM / "scheduler")


# ----------------------------------------------------------------------------------------- linear-time
def _fit(seconds):
    t = t_of("linear-time")
    return linear_fit_verdict(STEPS, seconds, min_r2=t("min_r2"), max_overhead_share=t("max_overhead_share"))


def test_linear_time_passes_on_linear_time():
    assert _fit([0.01 + 0.01 * s for s in STEPS]).holds


def test_quadratic_time_fails_linear_time():
    fit = _fit([1e-4 * s * s for s in STEPS])
    assert not fit.holds and fit.r2 < registry.get("linear-time").t("min_r2"), fit.why


def test_large_fixed_overhead_fails_linear_time():
    fit = _fit([2.0 + 0.001 * s for s in STEPS])  # perfectly linear, but the overhead dwarfs 20 steps
    assert fit.r2 > 0.999 and not fit.holds, fit.why


# ----------------------------------------------------------------------------------------- sweet-spot
SATURATING = [0.50, 0.80, 0.95, 0.965, 0.975, 1.0]  # the last point is the reference itself


def test_knee_of_a_saturating_sampler_is_20():
    assert ssim_knee(STEPS, SATURATING, t_of("sweet-spot")("knee_epsilon")) == 20


def test_a_sampler_that_keeps_improving_moves_the_knee():
    eps = t_of("sweet-spot")("knee_epsilon")
    improving = [0.4 + 0.1 * np.log2(s / 5) for s in STEPS]  # 0.1 per doubling all the way
    late = [0.50, 0.60, 0.70, 0.90, 0.91, 1.0]  # keeps gaining up to 50 steps
    assert ssim_knee(STEPS, improving, eps) is None
    assert ssim_knee(STEPS, late, eps) == 50 > ssim_knee(STEPS, SATURATING, eps)


def test_one_flat_stretch_between_steep_ones_is_not_a_knee():
    assert ssim_knee(STEPS, [0.5, 0.8, 0.8, 0.95, 0.99, 1.0], 0.02) is None


def test_the_reference_point_does_not_decide_the_knee():
    """100 -> 200 gains 0.025 only because 200 IS the reference; knee() with it would find no knee."""
    assert knee(STEPS, SATURATING, 0.02) is None and ssim_knee(STEPS, SATURATING, 0.02) == 20


def _statements(ssim_ref, adherence, to_20):
    return {s.name: s.holds for s in sweet_spot_statements(STEPS, ssim_ref, adherence, to_20, t_of("sweet-spot"))}


def test_sweet_spot_statements_hold_on_the_lesson_shaped_curve():
    got = _statements(SATURATING, [0.0, 0.6, 0.9, 1.0, 1.0, 1.0], {50: 0.95, 100: 0.94, 200: 0.93})
    assert all(got.values()), got


def test_each_sweet_spot_statement_can_fail():
    got = _statements([0.90, 0.95, 0.80, 0.9, 0.95, 1.0], [0.8, 0.3, 0.6, 1.0, 1.0, 1.0],
                      {50: 0.95, 100: 0.94, 200: 0.70})
    assert not any(got.values()), got  # 5 not garbled, 10 not recognizable, 20 not good, 200 far from 20


def test_adherence_is_judged_against_the_converged_adherence():
    """A weak model (3 of 8 converged) can still show the step-count pattern; one that reads nothing cannot."""
    weak = _statements(SATURATING, [0.125, 0.25, 0.375, 0.375, 0.375, 0.375], {50: 0.95, 100: 0.94, 200: 0.93})
    assert weak["10 steps recognizable"] and weak["20 steps good"], weak
    late = _statements(SATURATING, [0.0, 0.125, 0.25, 0.375, 0.375, 0.375], {50: 0.95, 100: 0.94, 200: 0.93})
    assert not late["10 steps recognizable"] and not late["20 steps good"], late
    blind = _statements(SATURATING, [0.0] * 6, {50: 0.95, 100: 0.94, 200: 0.93})
    assert blind["10 steps recognizable"] is None and blind["20 steps good"] is None


def test_sweet_spot_statements_need_the_checker():
    got = _statements(SATURATING, None, {50: 0.95, 100: 0.94, 200: 0.93})
    assert got["10 steps recognizable"] is None and got["20 steps good"] is None


# ----------------------------------------------------------------------------------------- callback-after-step
def test_callback_rule_fails_when_the_count_is_off_by_one():
    x = torch.randn(1, 4, 2, 2)
    assert callback_after_step_verdict(10, 10, x, x.clone())[0]
    assert not callback_after_step_verdict(9, 10, x, x.clone())[0]
    assert not callback_after_step_verdict(11, 10, x, x.clone())[0]


def test_callback_rule_fails_when_the_last_capture_is_not_z0():
    x = torch.randn(1, 4, 2, 2)
    assert not callback_after_step_verdict(10, 10, x, x + 1e-3)[0]


@pytest.mark.parametrize("spec", [DDIM, DDPM], ids=["ddim", "ddpm"])
def test_capture_does_not_change_the_result(engine, spec):
    """Regression: the capture wrapper once hid step's signature, so DDPM drew from the global RNG."""
    tr = trace(engine, "x", spec, 4, 42, PROMPT)
    latent = engine.generate(Request(spec, 4, (42,), PROMPT, output="latent")).latents
    holds, why = callback_after_step_verdict(len(tr.references), 4, tr.generation.intermediates[-1], latent)
    assert holds, why


# ----------------------------------------------------------------------------------------- clone-needed
def test_clone_rule_on_the_real_pipeline(engine):
    tr = trace(engine, "DDIM", DDIM, 4, 42, PROMPT)
    a = aliasing(tr.references, tr.generation.intermediates)
    assert a.independent and not a.all_same_tensor, a


def test_an_in_place_scheduler_makes_the_lesson_form_hold(engine, monkeypatch):
    original = DDIMScheduler.step

    @functools.wraps(original)
    def step_in_place(self, model_output, timestep, sample, *args, **kwargs):
        out = original(self, model_output, timestep, sample, *args, **kwargs)
        sample.copy_(out[0])  # write x_{t-1} into x_t's storage and hand the same tensor back
        return (sample, *out[1:])

    monkeypatch.setattr(DDIMScheduler, "step", step_in_place)
    tr = trace(engine, "DDIM in place", DDIM, 4, 42, PROMPT)
    a = aliasing(tr.references, tr.generation.intermediates)
    assert a.all_same_tensor and not a.independent, a
    assert a.changed_after_capture == a.entries - 1  # only the last entry still shows its own step


# ----------------------------------------------------------------------------------------- coarse-to-fine
def test_a_shuffled_trajectory_fails_the_rise(engine):
    tr = trace(engine, "DDIM", DDIM, 6, 42, PROMPT)
    dip = t_of("coarse-to-fine")("max_ssim_dip")
    s = ssim_series(tr.decoded("steps"), tr.final)
    assert rises(s, dip)[0], s
    shuffled = ssim_series(tr.decoded("steps")[::-1], tr.final)
    assert not rises(shuffled, dip)[0], shuffled


def test_a_dip_above_the_allowance_fails_the_rise():
    dip = t_of("coarse-to-fine")("max_ssim_dip")
    assert rises([0.1, 0.5, 0.5 - dip / 2, 0.9], dip)[0]
    assert not rises([0.1, 0.5, 0.5 - 2 * dip, 0.9], dip)[0]
    assert not rises([0.5, 0.5, 0.5], dip)[0]  # flat: never got closer


def _pattern(freq: int, size: int = 32) -> np.ndarray:
    """Vertical stripes of `freq` cycles per image: all their energy sits at radius freq/(size/2)."""
    x = np.mgrid[0:size, 0:size][1]
    return np.repeat(np.sin(2 * np.pi * freq * x / size)[..., None], 3, axis=-1)


def _series(error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """final + error decaying as 0.7^i over 10 steps: the band holding `error` settles at step 6."""
    final = 128 + 40 * _pattern(2) + 40 * _pattern(13)  # radius 0.125 (low band) and 0.81 (high band)
    return final, np.array([final + 60 * 0.7**i * error for i in range(10)])


def test_band_settling_sees_coarse_first():
    rel = t_of("coarse-to-fine")("settle_rel_error")
    final, late_high = _series(_pattern(13))
    settled = settling_steps(late_high, final, rel)
    assert settled[0] == 1 and settled[-1] == 6 and coarse_first(settled)[0], settled


def test_fine_first_fails_coarse_to_fine():
    rel = t_of("coarse-to-fine")("settle_rel_error")
    final, late_low = _series(_pattern(2))
    settled = settling_steps(late_low, final, rel)
    assert settled[0] == 6 and settled[-1] == 1 and not coarse_first(settled)[0], settled


# ----------------------------------------------------------------------------------------- ddpm-10-worse
def _smooth_images(n: int = 4) -> np.ndarray:
    y, x = np.mgrid[0:32, 0:32]
    return np.stack([np.stack([x * 6 + k, y * 6, (x + y) * 3], -1) for k in range(n)]).clip(0, 255).astype(np.uint8)


def test_residual_noise_separates_clean_from_noisy():
    t = t_of("ddpm-10-worse")
    clean = _smooth_images()
    noisy = (clean + np.random.default_rng(0).normal(0, 25, clean.shape)).clip(0, 255).astype(np.uint8)
    n_clean = np.mean([residual_noise(i) for i in clean])
    n_noisy = np.mean([residual_noise(i) for i in noisy])
    kw = dict(min_adherence_drop=t("min_adherence_drop"), min_noise_ratio=t("min_noise_ratio"))
    assert much_worse(None, None, n_clean, n_noisy, **kw)[0]
    assert not much_worse(None, None, n_clean, n_clean, **kw)[0]


def test_much_worse_on_adherence():
    t = t_of("ddpm-10-worse")
    kw = dict(min_adherence_drop=t("min_adherence_drop"), min_noise_ratio=t("min_noise_ratio"))
    assert much_worse(0.9, 0.5, 5.0, 5.0, **kw)[0]
    assert not much_worse(0.9, 0.85, 5.0, 5.0, **kw)[0]


# ----------------------------------------------------------------------------------------- ddpm-formula-adjacent
def test_ddpm_equals_ddim_eta1_over_the_gap(stock_config):
    gap = measure_formula_gap(stock_config, 10)
    assert gap.equal(registry.get("ddpm-formula-adjacent").t("rtol")), gap


def test_the_adjacent_step_beta_makes_the_formula_rule_report_a_difference(stock_config):
    gap = measure_formula_gap(stock_config, 10, ddpm=lambda c: adjacent_step(DDPMScheduler.from_config(c)))
    rtol = registry.get("ddpm-formula-adjacent").t("rtol")
    assert not gap.equal(rtol) and gap.max_mean_rel > 0.1 and gap.max_std_rel > 0.1, gap


def test_a_step_that_ignores_the_generator_breaks_the_noise_model(stock_config):
    """If the scheduler did not draw z from the generator it is given, recovering mean and std must fail."""

    def ignoring(cfg):
        s = DDPMScheduler.from_config(cfg)
        step = s.step
        s.step = lambda *a, generator=None, **k: step(*a, generator=None, **k)  # global RNG instead
        return s

    gap = measure_formula_gap(stock_config, 10, ddpm=ignoring)
    assert max(gap.residuals) > 0.1 and not gap.equal(registry.get("ddpm-formula-adjacent").t("rtol"))


# ----------------------------------------------------------------------------------------- dpm-multi-point
def test_calls_per_step_tells_heun_from_multistep(engine):
    heun = calls_per_step(engine.generate(Request(SchedulerSpec.of("heun"), 4, (1,), PROMPT)))
    multi = calls_per_step(engine.generate(Request(DPM, 4, (1,), PROMPT)))
    assert heun == (2 * 4 - 1) / 4 and multi_point(heun)
    assert multi == 1.0 and not multi_point(multi)


# ----------------------------------------------------------------------------------------- recommended-default
def _default(**change):
    t = t_of("recommended-default")
    args = dict(steps=20, ssim_to_ref=0.95, adherence=1.0, ref_adherence=1.0, seconds=1.0, ddpm_seconds=50.0)
    args.update(change)
    return recommended_default(**args, min_quality_share=t("min_quality_share"), min_ssim=t("min_ssim"),
                               max_time_share=t("max_time_share")).holds


def test_recommended_default_passes_when_cheap_and_converged():
    assert _default()


@pytest.mark.parametrize("broken", [dict(seconds=25.0), dict(adherence=0.5), dict(ssim_to_ref=0.5)],
                         ids=["slow", "low-adherence", "far-from-converged"])
def test_recommended_default_fails_when_slow_or_unconverged(broken):
    assert not _default(**broken)


def test_median_settling_over_seeds():
    per_seed = [[8, 9, 9], [9, 9, None], [6, 9, None]]
    assert median_settling(per_seed, 10) == [8.0, 9.0, None]  # most seeds never settle the high band
    assert coarse_first([8.5, 9.0, 9.0])[0] and not coarse_first([9.0, 9.0, 9.0])[0]
    assert not coarse_first([None, 9.0, 9.0])[0]
