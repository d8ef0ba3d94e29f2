"""Negative controls of Exercise 2: every rule in sampler_claims.rules.exercise2 turns its verdict when the
property it checks is broken (a DDIM that adds noise, a pipeline that re-seeds, a scheduler that draws
nothing, eta ignored, ...) through the same code path the claim uses, and confirms the known-good case.

The identity controls measure the claims' own declared runs (sampler, eta, mode, repeat) at a few steps. The
statistical claims' controls feed differences at about 0.8x and 1.5x the margins as the catalogue states them
(STATED), of both signs, through the claim's own wiring (its entry's thresholds and runs): a margin halved or
doubled in the entry, an equivalence made one-sided or a difference's sign flipped turns at least one of them.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline
from diffusers.schedulers import scheduling_ddpm

from negative_support import PROMPT, SEED, STEPS, patch_step, scores, shifted
from sampler_claims import registry
from sampler_claims.engine import Engine
from sampler_claims.quality_claim import Judge
from sampler_claims.rules.exercise2 import (
    Interpolation,
    NoiseDraws,
    Runs,
    decide_zt_interpolation,
    ddim_deterministic,
    ddim_depends_only_on_zT,
    ddim_eta,
    ddpm_noise_draws,
    ddpm_reproducible_when_reseeded,
    ddpm_stochastic,
    judge_step_count,
    measure_interpolation,
    measure_run,
    noise_draws,
    slerp,
)
from sampler_claims.runs import RunSpec
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Verdict, separation

T = {cid: registry.get(cid) for cid in registry.CLAIMS}
MIN_DIFF = T["ddpm-stochastic"].t("min_mean_abs_diff")
#: The margins of the statistical claims as the catalogue states them when these controls were written. The
#: controls feed differences at multiples of these (not of the entry's current value), so an entry whose margin
#: moves fails its controls until they are stated again.
STATED = {"comparable_margin": 0.058, "max_jump_ratio": 3.0, "typical_share": 0.5}


def run_of(claim_id: str, name: str, **changes) -> RunSpec:
    """A claim's declared run at the controls' few steps (the identity rules do not depend on the step count)."""
    return replace(T[claim_id].run(name), steps=STEPS, **changes)


def measured(engine, claim_id: str, name: str) -> Runs:
    """A claim's declared run measured as its test measures it (repeat, and the generators driven as its mode
    says), on the controls' prompt and seed."""
    run = run_of(claim_id, name)
    return measure_run(engine, run, run.request((SEED,), PROMPT, latents_seed=SEED if run.mode == "fixed-zt" else None))


# ------------------------------------------------------------------------------ ddim-deterministic
@pytest.mark.negative_of("ddim-deterministic")
def test_ddim_deterministic_holds_on_the_real_scheduler(engine):
    assert ddim_deterministic(measured(engine, "ddim-deterministic", "reseeded")).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-deterministic")
def test_ddim_deterministic_fails_when_ddim_adds_noise(engine, monkeypatch):
    def noisy_step(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        out = original(self, *args, **kwargs)
        prev = out[0] if isinstance(out, tuple) else out.prev_sample
        noise = 0.3 * torch.randn(prev.shape)  # the global RNG: not re-seeded between runs
        return (prev + noise, *out[1:]) if isinstance(out, tuple) else out.__class__(prev + noise,
                                                                                      out.pred_original_sample)

    patch_step(monkeypatch, DDIMScheduler, noisy_step)
    v = ddim_deterministic(measured(engine, "ddim-deterministic", "reseeded"))
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddpm-stochastic
@pytest.mark.negative_of("ddpm-stochastic")
def test_ddpm_stochastic_holds_on_the_real_pipeline(engine):
    v = ddpm_stochastic(measured(engine, "ddpm-stochastic", "stochastic"), min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == CONFIRMED, v.reason


@pytest.mark.negative_of("ddpm-stochastic")
def test_ddpm_stochastic_fails_when_the_pipeline_reseeds_generators(engine, monkeypatch):
    original = StableDiffusionPipeline.__call__

    def reseeding_call(self, *args, generator=None, **kwargs):  # type: ignore[no-untyped-def]
        fresh = [torch.Generator("cpu").manual_seed(SEED) for _ in generator] if generator else None
        return original(self, *args, generator=fresh, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", reseeding_call)
    v = ddpm_stochastic(measured(engine, "ddpm-stochastic", "stochastic"), min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddim-depends-only-on-zT
@pytest.mark.negative_of("ddim-depends-only-on-zT")
def test_depends_only_on_zT_holds_on_the_real_schedulers(engine):
    ddim, ddpm = (measured(engine, "ddim-depends-only-on-zT", name) for name in ("deterministic", "stochastic"))
    assert ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-depends-only-on-zT")
def test_depends_only_on_zT_fails_when_ddim_uses_the_generator(engine, monkeypatch):
    def stochastic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 1.0})

    ddpm = measured(engine, "ddim-depends-only-on-zT", "stochastic")
    patch_step(monkeypatch, DDIMScheduler, stochastic)
    ddim = measured(engine, "ddim-depends-only-on-zT", "deterministic")
    v = ddim_depends_only_on_zT(ddim, ddpm, min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED and "DDIM changed" in v.reason


# ------------------------------------------------------------------------------ ddpm-noise-draws
def _noise_rule(engine: Engine) -> Verdict:
    ddpm = measured(engine, "ddpm-noise-draws", "stochastic").runs[0]
    ddim = measured(engine, "ddpm-noise-draws", "deterministic").runs[0]
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
    v = ddpm_reproducible_when_reseeded(measured(engine, "ddpm-reproducible-when-reseeded", "reseeded"))
    assert v.verdict == REFUTED  # the lesson's "non-reproducible" is refuted by the real scheduler


@pytest.mark.negative_of("ddpm-reproducible-when-reseeded")
def test_reproducible_rule_says_holds_for_ddpm_on_the_global_rng(engine, monkeypatch):
    def global_rng(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "generator": None})

    patch_step(monkeypatch, DDPMScheduler, global_rng)
    v = ddpm_reproducible_when_reseeded(measured(engine, "ddpm-reproducible-when-reseeded", "reseeded"))
    assert v.verdict == CONFIRMED, v.reason


# ------------------------------------------------------------------------------ ddim-eta
@pytest.mark.negative_of("ddim-eta")
def test_ddim_eta_holds_on_the_real_scheduler(engine):
    eta0, eta1 = measured(engine, "ddim-eta", "deterministic"), measured(engine, "ddim-eta", "with-noise")
    assert ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF).verdict == CONFIRMED


@pytest.mark.negative_of("ddim-eta")
def test_ddim_eta_fails_when_eta_is_ignored(engine, monkeypatch):
    def deterministic(original, self, args, kwargs):  # type: ignore[no-untyped-def]
        return original(self, *args, **{**kwargs, "eta": 0.0})

    patch_step(monkeypatch, DDIMScheduler, deterministic)
    eta0, eta1 = measured(engine, "ddim-eta", "deterministic"), measured(engine, "ddim-eta", "with-noise")
    v = ddim_eta(eta1, eta0, min_mean_abs_diff=MIN_DIFF)
    assert v.verdict == REFUTED, v.reason


# ------------------------------------------------------------------------------ ddpm-50-step-count
STEP = T["ddpm-50-step-count"]
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")
COMPARABLE = STATED["comparable_margin"]


def claim_judge(claim_id: str, control=CONTROL) -> Judge:
    """The claim's own judge (its entry's thresholds, on the checker's scale) over synthetic generations: a
    'generation' here is its list of per-seed scores."""
    return Judge("score", list, control, lambda m: m, T[claim_id].t)


def _step_count(long: float, ddim: float, control=CONTROL) -> Verdict:
    """Paired scores: the lesson's stochastic run, the same at more steps `long` higher, the deterministic run at
    equal steps `ddim` higher; decided by the claim's wiring (judge_step_count) over its declared runs."""
    base = scores(0.70)
    gens = {"stochastic": base, "more-steps": shifted(base, long, seed=2), "deterministic": shifted(base, ddim, seed=3)}
    return judge_step_count(claim_judge("ddpm-50-step-count", control), gens, STEP.runs)


@pytest.mark.negative_of("ddpm-50-step-count")
def test_step_count_not_stochasticity_is_confirmed():
    assert _step_count(long=0.15, ddim=0.0).verdict == CONFIRMED


@pytest.mark.parametrize(("times", "expected"), [(0.8, CONFIRMED), (-0.8, CONFIRMED), (1.5, REFUTED),
                                                 (-1.5, REFUTED)])
@pytest.mark.negative_of("ddpm-50-step-count")
def test_stochasticity_at_the_comparable_margin(times: float, expected: str):
    """DDIM - DDPM at equal steps at 0.8x the comparable margin, either way, is no real difference; at 1.5x, either
    way, stochasticity matters (an equivalence: a one-sided check lets one sign through)."""
    v = _step_count(long=0.15, ddim=times * COMPARABLE)
    assert v.verdict == expected, v.reason
    assert expected == CONFIRMED or "not because it is stochastic" in v.reason


@pytest.mark.parametrize(("times", "expected"), [(0.8, CONFIRMED), (1.5, CONFIRMED), (-0.8, REFUTED),
                                                 (-1.5, REFUTED)])
@pytest.mark.negative_of("ddpm-50-step-count")
def test_the_step_count_effect_is_one_sided(times: float, expected: str):
    """More steps must score higher (any gain the interval tells from zero): a gain of 0.8x or 1.5x the comparable
    margin confirms, a loss of either refutes (a flipped difference or a two-sided check turns one)."""
    v = _step_count(long=times * COMPARABLE, ddim=0.0)
    assert v.verdict == expected, v.reason


@pytest.mark.negative_of("ddpm-50-step-count")
def test_stochasticity_mattering_at_equal_steps_refutes_it():
    v = _step_count(long=0.15, ddim=0.15)  # DDIM@50 as good as DDPM@1000: the gap is about stochasticity
    assert v.verdict == REFUTED and "stochastic" in v.reason


@pytest.mark.negative_of("ddpm-50-step-count")
def test_step_count_without_a_validated_metric_is_inconclusive():
    blind = separation("score", scores(0.8), scores(0.8), "good", "bad")
    assert _step_count(0.15, 0.0, control=blind).verdict == INCONCLUSIVE


# ------------------------------------------------------------------------------ zt-interpolation
ZT = T["zt-interpolation"]
PAIRS = [(SEED + 2 * k, SEED + 2 * k + 1) for k in range(6)]  # 6/6 puts the Wilson interval above one half
PROMPTS = [PROMPT] * len(PAIRS)


def _path(engine, name: str, **changes) -> Interpolation:
    """The claim's declared run `name` along the controls' paths, at a few steps."""
    return measure_interpolation(engine, run_of("zt-interpolation", name, **changes), PAIRS, PROMPTS,
                                 frames=ZT.t("frames"))


def _zt_rule(ddim: Interpolation, ddpm: Interpolation) -> Verdict:
    return decide_zt_interpolation(ZT.t, ddim, ddpm)


@pytest.fixture
def zt_paths(engine) -> dict[str, Interpolation]:
    return {"ddim": _path(engine, "deterministic"), "ddpm": _path(engine, "stochastic"),
            "eta1": _path(engine, "deterministic", eta=1.0)}


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


def _paths(ratios: list[float], ends: list[bool] | None = None) -> Interpolation:
    """One synthetic path per entry of `ratios`: eight steps of 10 grey levels, the fourth `ratio` times as large
    (so its largest step over its median step is `ratio`), its end frames its own images where `ends` says so."""
    n, ends = len(ratios), ends or [True] * len(ratios)
    levels = [20.0 + np.cumsum([0, 10, 10, 10, 10 * r, 10, 10, 10, 10]) for r in ratios]
    frames = [np.stack([np.full((8, 8, 3), round(lv[k]), np.uint8) for lv in levels]) for k in range(9)]
    own_first = np.stack([f if e else f + 1 for f, e in zip(frames[0], ends)])
    return Interpolation("synthetic", [(2 * k, 2 * k + 1) for k in range(n)], [PROMPT] * n, frames, own_first,
                         frames[-1])


#: Enough synthetic pairs that a share 0.8x or 1.5x the typical share has its Wilson interval clear of it.
MANY = 200


def _share(share: float, ratio: float) -> list[float]:
    """MANY paths, `share` of them with largest/median step `ratio`, the others with twice the jump limit."""
    k = round(share * MANY)
    return [ratio] * k + [2 * STATED["max_jump_ratio"]] * (MANY - k)


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


@pytest.mark.parametrize(("times", "expected"), [(0.8, CONFIRMED), (1.5, REFUTED)])
@pytest.mark.negative_of("zt-interpolation")
def test_the_jump_limit_at_the_margin(times: float, expected: str):
    """Every DDIM path's largest step at 0.8x the jump limit is smooth; at 1.5x, a cut. The DDPM row's paths, the
    same steps with broken ends, stay broken either way."""
    ratio = times * STATED["max_jump_ratio"]
    ddpm = _paths([ratio] * 8, ends=[False] * 8)
    v = _zt_rule(_paths([ratio] * 8), ddpm)
    assert v.verdict == expected, v.reason
    assert expected == CONFIRMED or "path smooth" in v.reason


@pytest.mark.parametrize(("times", "expected"), [(0.8, REFUTED), (1.5, CONFIRMED)])
@pytest.mark.negative_of("zt-interpolation")
def test_the_jump_limit_decides_whether_ddpm_breaks_the_path(times: float, expected: str):
    """The other side of the limit: DDPM paths whose ends are their own images, at 0.8x the jump limit, are intact
    (DDPM interpolates as well: refuted); at 1.5x they are cut (DDPM breaks the path: confirmed)."""
    ratio = times * STATED["max_jump_ratio"]
    v = _zt_rule(_paths([1.0] * 8), _paths([ratio] * 8))
    assert v.verdict == expected, v.reason


@pytest.mark.parametrize(("times", "expected"), [(0.8, REFUTED), (1.5, CONFIRMED)])
@pytest.mark.negative_of("zt-interpolation")
def test_the_share_of_smooth_ddim_paths_at_the_typical_share(times: float, expected: str):
    """A share of smooth DDIM paths at 0.8x the typical share is not 'most pairs' (refuted); at 1.5x it is (the
    Wilson interval over MANY pairs clears the typical share either way)."""
    ddim = _paths(_share(times * STATED["typical_share"], 1.0))
    ddpm = _paths([1.0] * MANY, ends=[False] * MANY)
    v = _zt_rule(ddim, ddpm)
    assert v.verdict == expected, v.reason


@pytest.mark.parametrize(("times", "expected"), [(0.8, CONFIRMED), (1.5, REFUTED)])
@pytest.mark.negative_of("zt-interpolation")
def test_the_share_of_intact_ddpm_paths_at_the_typical_share(times: float, expected: str):
    """The mirror, one-sided the other way: DDPM intact on 0.8x the typical share of pairs still breaks the path
    (confirmed); on 1.5x it interpolates as well as DDIM for most pairs (refuted)."""
    ddpm = _paths(_share(times * STATED["typical_share"], 1.0))
    v = _zt_rule(_paths([1.0] * MANY), ddpm)
    assert v.verdict == expected, v.reason


def test_slerp_ends_are_the_seeds_own_z_T_and_the_middle_keeps_the_norm():
    z0, z1 = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)).split(1)
    assert torch.equal(slerp(z0, z1, 0.0), z0) and torch.equal(slerp(z0, z1, 1.0), z1)
    mid = slerp(z0, z1, 0.5)
    assert mid.norm() == pytest.approx(((z0.norm() + z1.norm()) / 2).item(), rel=0.1)  # a line would shrink it
