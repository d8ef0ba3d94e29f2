"""Negative controls of Exercise 2: every rule in sampler_claims.rules.exercise2 turns its verdict when the
property it checks is broken (a DDIM that adds noise, a pipeline that re-seeds, a scheduler that draws
nothing, eta ignored, ...) through the same code path the claim uses, and confirms the known-good case.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline
from diffusers.schedulers import scheduling_ddpm

from negative_support import PROMPT, SEED, STEPS, patch_step, req, scores, shifted
from sampler_claims import registry
from sampler_claims.engine import Engine
from sampler_claims.rules.exercise2 import (
    Interpolation,
    NoiseDraws,
    ddim_deterministic,
    ddim_depends_only_on_zT,
    ddim_eta,
    ddpm_50_step_count,
    ddpm_noise_draws,
    ddpm_reproducible_when_reseeded,
    ddpm_stochastic,
    measure_interpolation,
    measure_runs,
    noise_draws,
    slerp,
    zt_interpolation,
)
from sampler_claims.schedulers import SchedulerSpec
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Verdict, separation

T = {cid: registry.get(cid) for cid in registry.CLAIMS}
MIN_DIFF = T["ddpm-stochastic"].t("min_mean_abs_diff")
DDIM = SchedulerSpec.of("ddim")
DDPM = SchedulerSpec.of("ddpm")


# ------------------------------------------------------------------------------ ddim-deterministic
@pytest.mark.negative_of("ddim-deterministic")
def test_ddim_deterministic_holds_on_the_real_scheduler(engine):
    assert ddim_deterministic(measure_runs(engine, req(DDIM), 3, "reseed")).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-deterministic")
def test_ddim_deterministic_fails_when_ddim_adds_noise(engine, monkeypatch):
    def noisy_step(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        out = original(self, *args, **kwargs)
        prev = out[0] if isinstance(out, tuple) else out.prev_sample
        noise = 0.3 * torch.randn(prev.shape)  # the global RNG: not re-seeded between runs
        return (prev + noise, *out[1:]) if isinstance(out, tuple) else out.__class__(prev + noise,
                                                                                      out.pred_original_sample)

    patch_step(monkeypatch, DDIMScheduler, noisy_step)
    v = ddim_deterministic(measure_runs(engine, req(DDIM), 3, "reseed"))
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddpm-stochastic
@pytest.mark.negative_of("ddpm-stochastic")
def test_ddpm_stochastic_holds_on_the_real_pipeline(engine):
    v = ddpm_stochastic(measure_runs(engine, req(DDPM), 3, "shared"), min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == CONFIRMED, v.reason


@pytest.mark.negative_of("ddpm-stochastic")
def test_ddpm_stochastic_fails_when_the_pipeline_reseeds_generators(engine, monkeypatch):
    original = StableDiffusionPipeline.__call__

    def reseeding_call(self, *args, generator=None, **kwargs):  # type: ignore[no-untyped-def]
        fresh = [torch.Generator("cpu").manual_seed(SEED) for _ in generator] if generator else None
        return original(self, *args, generator=fresh, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", reseeding_call)
    v = ddpm_stochastic(measure_runs(engine, req(DDPM), 3, "shared"), min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddim-depends-only-on-zT
@pytest.mark.negative_of("ddim-depends-only-on-zT")
def test_depends_only_on_zT_holds_on_the_real_schedulers(engine):
    ddim, ddpm = (measure_runs(engine, req(s, fixed_zT=True), 3, "shared") for s in (DDIM, DDPM))
    assert ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-depends-only-on-zT")
def test_depends_only_on_zT_fails_when_ddim_uses_the_generator(engine, monkeypatch):
    def stochastic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 1.0})

    ddpm = measure_runs(engine, req(DDPM, fixed_zT=True), 3, "shared")
    patch_step(monkeypatch, DDIMScheduler, stochastic)
    ddim = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    v = ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED and "DDIM changed" in v.reason


# ------------------------------------------------------------------------------ ddpm-noise-draws
def _noise_rule(engine: Engine) -> Verdict:
    ddpm = measure_runs(engine, req(DDPM), 1, "reseed").runs[0]
    ddim = measure_runs(engine, req(DDIM), 1, "reseed").runs[0]
    # The rule's "dozens" scales with the lesson's 50 steps; here STEPS stand for them.
    return ddpm_noise_draws(noise_draws(ddpm, ddim), min_draws=STEPS)


@pytest.mark.negative_of("ddpm-noise-draws")
def test_ddpm_noise_draws_holds_on_the_real_scheduler(engine):
    v = _noise_rule(engine)
    assert v.verdict == CONFIRMED, v.reason


@pytest.mark.negative_of("ddpm-noise-draws")
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
    v = _noise_rule(engine)
    assert v.verdict == REFUTED and "only 0 of" in v.reason


@pytest.mark.negative_of("ddpm-noise-draws")
def test_ddpm_noise_draws_fails_on_too_few_draws():
    d = NoiseDraws(steps=10, ddpm_draws=11, ddpm_zT=1, ddpm_step_draws=[1] * 10, ddim_draws=1, ddim_zT=1,
                   ddim_step_draws=[0] * 10)
    v = ddpm_noise_draws(d, min_draws=T["ddpm-noise-draws"].t("min_draws"))
    assert v.verdict == REFUTED and "not dozens" in v.reason


# ------------------------------------------------------------------------------ ddpm-reproducible-when-reseeded
@pytest.mark.negative_of("ddpm-reproducible-when-reseeded")
def test_reseeded_ddpm_is_reproducible(engine):
    v = ddpm_reproducible_when_reseeded(measure_runs(engine, req(DDPM), 3, "reseed"))
    assert v.verdict == REFUTED  # the lesson's "non-reproducible" is refuted by the real scheduler


@pytest.mark.negative_of("ddpm-reproducible-when-reseeded")
def test_reproducible_rule_says_holds_for_ddpm_on_the_global_rng(engine, monkeypatch):
    def global_rng(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "generator": None})

    patch_step(monkeypatch, DDPMScheduler, global_rng)
    v = ddpm_reproducible_when_reseeded(measure_runs(engine, req(DDPM), 3, "reseed"))
    assert v.verdict == CONFIRMED, v.reason


# ------------------------------------------------------------------------------ ddim-eta
@pytest.mark.negative_of("ddim-eta")
def test_ddim_eta_holds_on_the_real_scheduler(engine):
    eta0 = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    eta1 = measure_runs(engine, req(DDIM, eta=1.0, fixed_zT=True), 3, "shared")
    assert ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-eta")
def test_ddim_eta_fails_when_eta_is_ignored(engine, monkeypatch):
    def deterministic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 0.0})

    patch_step(monkeypatch, DDIMScheduler, deterministic)
    eta0 = measure_runs(engine, req(DDIM, fixed_zT=True), 3, "shared")
    eta1 = measure_runs(engine, req(DDIM, eta=1.0, fixed_zT=True), 3, "shared")
    v = ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddpm-50-step-count
MARGIN = T["ddpm-50-step-count"].t("comparable_margin")
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")


def _step_count(ddpm1000: float, ddim50: float, control=CONTROL) -> Verdict:
    base = scores(0.70)  # DDPM@50
    s = {"DDPM@50": base, "DDPM@1000": shifted(base, ddpm1000, seed=2), "DDIM@50": shifted(base, ddim50, seed=3)}
    return ddpm_50_step_count(s, control, margin=MARGIN)


@pytest.mark.negative_of("ddpm-50-step-count")
def test_step_count_not_stochasticity_is_confirmed():
    assert _step_count(ddpm1000=0.15, ddim50=0.0).verdict == CONFIRMED


@pytest.mark.negative_of("ddpm-50-step-count")
def test_stochasticity_mattering_at_equal_steps_refutes_it():
    v = _step_count(ddpm1000=0.15, ddim50=0.15)  # DDIM@50 as good as DDPM@1000: the gap is about stochasticity
    assert v.verdict == REFUTED and "stochastic" in v.reason


@pytest.mark.negative_of("ddpm-50-step-count")
def test_no_step_count_effect_refutes_it():
    assert _step_count(ddpm1000=-0.10, ddim50=0.0).verdict == REFUTED


@pytest.mark.negative_of("ddpm-50-step-count")
def test_step_count_without_a_validated_metric_is_inconclusive():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    assert _step_count(0.15, 0.0, control=blind).verdict == INCONCLUSIVE


# ------------------------------------------------------------------------------ zt-interpolation
ZT = T["zt-interpolation"]
PAIRS = [(SEED + 2 * k, SEED + 2 * k + 1) for k in range(6)]  # 6/6 puts the Wilson interval above one half
PROMPTS = [PROMPT] * len(PAIRS)


def _path(engine, spec: SchedulerSpec, eta: float = 0.0) -> Interpolation:
    return measure_interpolation(engine, spec, PAIRS, PROMPTS, frames=ZT.t("frames"), steps=STEPS, eta=eta)


def _zt_rule(ddim: Interpolation, ddpm: Interpolation):
    return zt_interpolation(ddim, ddpm, max_jump_ratio=ZT.t("max_jump_ratio"), typical_share=ZT.t("typical_share"))


@pytest.fixture
def zt_paths(engine) -> dict[str, Interpolation]:
    return {"ddim": _path(engine, DDIM), "ddpm": _path(engine, DDPM), "eta1": _path(engine, DDIM, eta=1.0)}


@pytest.mark.negative_of("zt-interpolation")
def test_zt_interpolation_holds_for_ddim_against_ddpm(zt_paths):
    v = _zt_rule(zt_paths["ddim"], zt_paths["ddpm"])
    assert v.verdict == CONFIRMED, v.reason
    assert all(zt_paths["ddim"].ends_equal(p) for p in range(len(PAIRS)))


@pytest.mark.negative_of("zt-interpolation")
def test_zt_interpolation_fails_for_ddim_with_eta_1(zt_paths):
    """DDIM with eta=1 draws fresh noise at every step, as DDPM does: its path no longer starts and ends on the
    seeds' own images, so it is no better for interpolation than DDPM."""
    eta1 = zt_paths["eta1"]
    assert not any(eta1.ends_equal(p) for p in range(len(PAIRS)))
    v = _zt_rule(eta1, zt_paths["ddpm"])
    assert v.verdict == REFUTED and "ends on the seeds' images" in v.reason, v.reason


@pytest.mark.negative_of("zt-interpolation")
def test_zt_interpolation_fails_when_ddpm_interpolates_as_well(zt_paths):
    """If the stochastic row kept its path (here: DDIM itself in its place), determinism would not be what makes
    DDIM valuable for interpolation."""
    v = _zt_rule(zt_paths["ddim"], zt_paths["ddim"])
    assert v.verdict == REFUTED and "breaks the path" in v.reason, v.reason


def _synthetic(steps: list[float], n: int = 8) -> Interpolation:
    """n identical paths whose frames move a grey level by `steps` (per consecutive pair), ends as their own."""
    levels = np.concatenate([[60.0], 60.0 + np.cumsum(steps)])
    frames = [np.stack([np.full((8, 8, 3), round(v), np.uint8)] * n) for v in levels]
    return Interpolation("synthetic", [(k, k + 1) for k in range(n)], [PROMPT] * n, frames, frames[0], frames[-1])


@pytest.mark.negative_of("zt-interpolation")
def test_zt_interpolation_fails_for_a_path_that_jumps():
    """A path with one step much larger than its median (a cut) is not smooth, whatever its ends."""
    limit = ZT.t("max_jump_ratio")
    smooth, cut = _synthetic([4] * 8), _synthetic([4, 4, 4, 4 * (limit + 1), 4, 4, 4, 4])
    broken = _synthetic([4] * 8)
    broken.own_first = broken.own_first.copy() + 1  # DDPM's own images differ from its path's ends
    assert _zt_rule(smooth, broken).verdict == CONFIRMED
    v = _zt_rule(cut, broken)
    assert v.verdict == REFUTED and "path smooth" in v.reason, v.reason
    assert cut.jump_ratio(0) == pytest.approx(limit + 1)


def test_slerp_ends_are_the_seeds_own_z_T_and_the_middle_keeps_the_norm():
    z0, z1 = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)).split(1)
    assert torch.equal(slerp(z0, z1, 0.0), z0) and torch.equal(slerp(z0, z1, 1.0), z1)
    mid = slerp(z0, z1, 0.5)
    assert mid.norm() == pytest.approx(((z0.norm() + z1.norm()) / 2).item(), rel=0.1)  # a line would shrink it
