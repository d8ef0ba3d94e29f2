"""Measurements and decision rules of Exercises 3 and 4 and the takeaways.

Every rule here takes plain measurements (numbers, tensors, images) and returns what it decided with a
reason, so that tests/test_negative_exercise34.py can feed it broken inputs (quadratic time, a sampler
that keeps improving, an in-place scheduler, a shuffled trajectory, DDPM with the adjacent-step beta)
and show that each rule can fail. The claim tests in claims/ only wire the engine to these functions.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from .engine import Engine, Generation, Request
from .metrics import band_settling, mean_ci, r_squared, ssim
from .schedulers import SchedulerSpec

# ----------------------------------------------------------------------------------------- shared state
#: Medians of the timing tests, keyed by (scheduler label, steps): linear-time writes them and
#: recommended-default reuses them, in the same session, without a global.
TIMINGS_KEY = pytest.StashKey[dict]()


def timing_store(config: pytest.Config) -> dict[tuple[str, int], float]:
    """The session's timing medians (seconds), created on first use."""
    if TIMINGS_KEY not in config.stash:
        config.stash[TIMINGS_KEY] = {}
    return config.stash[TIMINGS_KEY]


def bench(benchmark: Any, engine: Engine, request: Request, *, rounds: int, warmup: int = 1) -> float:
    """Median seconds of uncached runs of `request` by pytest-benchmark; one plain run's time if the
    plugin is disabled (--benchmark-disable), so the claims still get a number."""
    gen = benchmark.pedantic(engine.generate, args=(request,), kwargs={"cached": False}, warmup_rounds=warmup,
                             rounds=rounds, iterations=1)
    stats = getattr(benchmark, "stats", None)
    return float(stats.stats.median) if stats is not None else float(gen.seconds)


#: The lesson's sampler of Exercise 3 and the takeaway: DPM-Solver++ (multistep), stock config.
DPM = SchedulerSpec.of("dpm-solver")
#: DDPM at 1000 steps needs trailing spacing with SD's stock config (diffusers #10003, lesson-code-runs).
DDPM_1000 = SchedulerSpec.of("ddpm", timestep_spacing="trailing")
DDIM = SchedulerSpec.of("ddim")
DDPM = SchedulerSpec.of("ddpm")


# ----------------------------------------------------------------------------------------- Exercise 3
def gains_per_doubling(step_counts: Sequence[int], values: Sequence[float]) -> list[float]:
    """Gain of the metric between neighbouring step counts, per doubling of steps (log2 spacing).

    The lesson's grid is not evenly doubled (20 -> 50 is 1.32 doublings), so the gain is normalised.
    """
    if len(step_counts) != len(values) or len(values) < 2:
        raise ValueError("need at least two (steps, value) pairs of equal length")
    out = []
    for (s0, v0), (s1, v1) in zip(zip(step_counts, values), zip(step_counts[1:], values[1:])):
        if s1 <= s0:
            raise ValueError(f"step counts must increase, got {s0} then {s1}")
        out.append((v1 - v0) / math.log2(s1 / s0))
    return out


def knee(step_counts: Sequence[int], means: Sequence[float], eps: float) -> int | None:
    """The first step count from which every further doubling gains less than `eps`; None if none does.

    "Every further" (not just the next) so that one flat stretch between two steep ones is not a knee.
    The last step count never qualifies on its own: with nothing after it there is no evidence.
    """
    gains = gains_per_doubling(step_counts, means)
    for i in range(len(gains)):
        if all(g < eps for g in gains[i:]):
            return int(step_counts[i])
    return None


def ssim_knee(step_counts: Sequence[int], ssim_to_ref: Sequence[float], eps: float) -> int | None:
    """The knee of the SSIM-to-reference curve, leaving out the reference itself.

    The reference's SSIM to itself is 1 by construction, not a measurement: keeping it would make the last
    interval measure only how far the second-highest step count is from the reference image.
    """
    return knee(list(step_counts)[:-1], list(ssim_to_ref)[:-1], eps)


@dataclass(frozen=True)
class Statement:
    """One of the lesson's sentences, the rule it was checked by, what was measured and the result.

    `holds` is None when the metric the rule needs is missing (no checker on this model).
    """

    name: str
    rule: str
    measured: Any
    holds: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "measured": self.measured, "holds": self.holds}


def sweet_spot_statements(
    step_counts: Sequence[int],
    ssim_to_ref: Sequence[float],
    adherence: Sequence[float] | None,
    ssim_to_20: dict[int, float],
    t: Callable[[str], Any],
) -> list[Statement]:
    """The lesson's four statements of Exercise 3, each against its registry threshold.

    ssim_to_ref: mean SSIM to the converged reference per step count (the last step count is the
    reference); adherence: the checker's share of images matching the prompt per step count (None without
    a checker), judged as a share of the converged adherence; ssim_to_20: mean SSIM of the 50..200-step
    images to the 20-step image.
    """
    idx = {int(s): i for i, s in enumerate(step_counts)}

    def share(steps: int) -> float | None:
        """Adherence at `steps` over the converged adherence; None without a checker or a converged read."""
        if adherence is None or adherence[-1] <= 0:
            return None
        return round(float(adherence[idx[steps]]) / float(adherence[-1]), 4)

    s5 = float(ssim_to_ref[idx[5]])
    out = [Statement("5 steps garbled", f"SSIM to converged < {t('garbled_max_ssim')}", round(s5, 4),
                     s5 < t("garbled_max_ssim"))]
    r10 = t("recognizable_min_adherence_share")
    a10 = share(10)
    out.append(Statement("10 steps recognizable", f"adherence >= {r10} x converged adherence", a10,
                         None if a10 is None else a10 >= r10))
    g20, gs = t("good_min_adherence_share"), t("good_min_ssim")
    a20, s20 = share(20), float(ssim_to_ref[idx[20]])
    out.append(Statement(
        "20 steps good", f"adherence >= {g20} x converged adherence and SSIM to converged >= {gs}",
        {"adherence_share": a20, "ssim": round(s20, 4)},
        None if a20 is None else (a20 >= g20 and s20 >= gs)))
    worst = min(ssim_to_20.values())
    out.append(Statement("50-200 steps nearly indistinguishable from 20",
                         f"min SSIM to the 20-step image >= {t('indistinct_min_ssim')}",
                         {str(k): round(v, 4) for k, v in ssim_to_20.items()}, worst >= t("indistinct_min_ssim")))
    return out


@dataclass(frozen=True)
class LinearFit:
    a: float
    b: float
    r2: float
    time_at: float
    overhead_share: float
    holds: bool
    why: str


def linear_fit_verdict(step_counts: Sequence[int], seconds: Sequence[float], *, min_r2: float,
                       max_overhead_share: float, at: int = 20) -> LinearFit:
    """Fit time = a + b*steps; 'about linear with small overhead' = R^2 >= min_r2 and |a| <= share * time(at).

    |a|, not a: a clearly negative intercept is a sign of curvature (e.g. quadratic time), not of
    negative overhead, so it must not pass as "small".
    """
    if len(step_counts) < 3:
        raise ValueError("a line through fewer than 3 points says nothing about linearity")
    a, b, r2 = r_squared(step_counts, seconds)
    measured = dict(zip(map(int, step_counts), map(float, seconds)))
    time_at = measured.get(at, a + b * at)  # the measured time where there is one, else the line's
    share = abs(a) / time_at if time_at > 0 else math.inf
    linear, small = r2 >= min_r2, share <= max_overhead_share
    holds = linear and small
    why = (f"R^2 = {r2:.4f} ({'>=' if linear else '<'} {min_r2}), slope {b * 1e3:.2f} ms/step, intercept "
           f"{a * 1e3:.1f} ms = {share:.1%} of the {at}-step time ({'<=' if small else '>'} {max_overhead_share:.0%})")
    return LinearFit(a, b, r2, time_at, share, holds, why)


# ----------------------------------------------------------------------------------------- Exercise 4
def capture_references(engine: Engine, request: Request) -> tuple[Generation, list[torch.Tensor]]:
    """Run `request` with a callback that stores callback_kwargs['latents'] WITHOUT cloning, as the
    lesson warns against; the engine's own capture (request.capture) keeps clones beside it.
    """
    refs: list[torch.Tensor] = []

    def keep(_pipe: Any, _i: int, _t: Any, kwargs: dict) -> dict:
        refs.append(kwargs["latents"])
        return kwargs

    return engine.generate(request, callback=keep), refs


@dataclass(frozen=True)
class Aliasing:
    entries: int
    distinct_objects: int
    distinct_storages: int
    #: Neighbouring entries whose values are equal (0 when every step changed the latents).
    equal_neighbours: int
    #: Entries whose value at the end differs from the clone taken when the callback fired.
    changed_after_capture: int

    @property
    def all_same_tensor(self) -> bool:
        """The lesson's form: every entry is one and the same tensor (so all show the final value)."""
        return self.distinct_storages == 1 and self.entries > 1

    @property
    def independent(self) -> bool:
        """What a capture needs to be usable without .clone(): distinct storages, values kept."""
        return (self.distinct_storages == self.entries and self.equal_neighbours == 0
                and self.changed_after_capture == 0)

    def as_dict(self) -> dict[str, int]:
        return {"entries": self.entries, "distinct_objects": self.distinct_objects,
                "distinct_storages": self.distinct_storages, "equal_neighbours": self.equal_neighbours,
                "changed_after_capture": self.changed_after_capture}


def aliasing(refs: Sequence[torch.Tensor], clones: Sequence[torch.Tensor]) -> Aliasing:
    """How the un-cloned references relate to each other and to clones taken at capture time."""
    if len(refs) != len(clones):
        raise ValueError(f"{len(refs)} references but {len(clones)} clones")
    storages = {r.untyped_storage().data_ptr() for r in refs}
    equal = sum(bool(torch.equal(a, b)) for a, b in zip(refs, refs[1:]))
    changed = sum(not torch.equal(r.detach().float().cpu(), c) for r, c in zip(refs, clones))
    return Aliasing(len(refs), len({id(r) for r in refs}), len(storages), equal, changed)


def callback_after_step_verdict(callbacks: int, steps: int, last_capture: torch.Tensor,
                                latent_output: torch.Tensor) -> tuple[bool, str]:
    """Callback count equals steps, and the last capture is exactly the output_type='latent' result."""
    count_ok = callbacks == steps
    same = last_capture.shape == latent_output.shape and bool(torch.equal(last_capture, latent_output))
    diff = (float((last_capture - latent_output).abs().max()) if last_capture.shape == latent_output.shape
            else float("inf"))
    why = (f"{callbacks} callbacks for {steps} steps; last capture "
           f"{'equals' if same else 'differs from'} the output_type='latent' result (max |diff| {diff:.3g})")
    return count_ok and same, why


def rises(values: Sequence[float], max_dip: float) -> tuple[bool, float]:
    """'Rises monotonically' allowing dips of at most `max_dip`, and ending higher than it started.

    Returns (holds, the largest dip seen).
    """
    v = [float(x) for x in values]
    dips = [max(0.0, a - b) for a, b in zip(v, v[1:])]
    worst = max(dips, default=0.0)
    return (worst <= max_dip and v[-1] > v[0]), worst


def ssim_series(images: np.ndarray, final: np.ndarray) -> list[float]:
    return [ssim(im, final) for im in images]


def settling_steps(images: np.ndarray, final: np.ndarray, rel: float, bands: int = 3) -> list[int | None]:
    """1-based step at which each radial band (low first) settles for good; None if it never does."""
    idx = band_settling(list(images), final, rel, bands)
    return [None if i is None else i + 1 for i in idx]


def coarse_first(settling: Sequence[float | None]) -> tuple[bool, str]:
    """Low frequencies settle strictly before the high ones, and no band settles before a lower one
    (None = never settles)."""
    never = len(settling) + 10**6
    s = [never if x is None else x for x in settling]
    ordered = all(a <= b for a, b in zip(s, s[1:]))
    strictly = s[0] < s[-1]
    why = f"settling step low..high bands: {list(settling)}"
    return ordered and strictly and settling[0] is not None, why


def much_worse(good_adherence: float | None, bad_adherence: float | None, good_noise: float, bad_noise: float,
               *, min_adherence_drop: float, min_noise_ratio: float) -> tuple[bool, str]:
    """'Much worse' = adherence lower by at least min_adherence_drop, or residual noise min_noise_ratio x."""
    ratio = bad_noise / good_noise if good_noise > 0 else math.inf
    noisy = ratio >= min_noise_ratio
    parts = [f"residual noise {bad_noise:.2f} vs {good_noise:.2f} ({ratio:.2f}x, needs >= {min_noise_ratio}x)"]
    drop_ok = False
    if good_adherence is not None and bad_adherence is not None:
        drop = good_adherence - bad_adherence
        drop_ok = drop >= min_adherence_drop
        parts.insert(0, f"adherence {bad_adherence:.2f} vs {good_adherence:.2f} (drop {drop:+.2f}, needs >= "
                        f"{min_adherence_drop})")
    return drop_ok or noisy, "; ".join(parts)


# --- ddpm-formula-adjacent: one scheduler step, no model
@dataclass(frozen=True)
class StepMoments:
    """x_{t-gap} = mean + std * z, recovered from two draws; `residual` checks it on a third."""

    t: int
    prev_t: int
    mean: torch.Tensor
    std: float
    residual: float


def draw(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The noise a scheduler draws from a fresh CPU generator seeded `seed`: diffusers' randn_tensor with
    a CPU generator is torch.randn on that generator, which `step_moments` verifies on a third seed."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


def step_moments(scheduler: Any, model_output: torch.Tensor, t: int, sample: torch.Tensor,
                 seeds: tuple[int, int, int] = (11, 12, 13), **step_kwargs: Any) -> StepMoments:
    """Mean and std of one stochastic scheduler step, recovered exactly from the noise it draws.

    Two runs with known seeds give out_k = mean + std * z_k; std is the least-squares ratio of the output
    difference to the noise difference, and a third seed checks the model (the residual must be ~0).
    """
    outs, zs = [], []
    for s in seeds:
        gen = torch.Generator("cpu").manual_seed(s)
        outs.append(scheduler.step(model_output, t, sample, generator=gen, return_dict=False, **step_kwargs)[0])
        zs.append(draw(tuple(model_output.shape), s))
    dz, do = zs[0] - zs[1], outs[0] - outs[1]
    std = float((do * dz).sum() / (dz * dz).sum())
    mean = outs[0] - std * zs[0]
    predicted = mean + std * zs[2]
    residual = float((outs[2] - predicted).abs().max() / outs[2].abs().max())
    prev = getattr(scheduler, "previous_timestep", None)
    prev_t = int(prev(t)) if prev is not None else int(t) - scheduler.config.num_train_timesteps // \
        scheduler.num_inference_steps
    return StepMoments(int(t), prev_t, mean, std, residual)


@dataclass
class FormulaGap:
    """DDPM's step against DDIM(eta=1) over the same gaps: relative differences per step."""

    steps: int
    timesteps: list[int]
    gaps: list[int]
    mean_rel: list[float]
    std_rel: list[float]
    residuals: list[float]
    ddpm_std: list[float]
    ddim_std: list[float]
    notes: dict[str, Any] = field(default_factory=dict)

    def interior(self) -> slice:
        """All steps but the last: the last one lands on t<0, where DDIM's set_alpha_to_one decides."""
        return slice(0, len(self.timesteps) - 1)

    @property
    def max_mean_rel(self) -> float:
        return max(self.mean_rel[self.interior()])

    @property
    def max_std_rel(self) -> float:
        return max(self.std_rel[self.interior()])

    def equal(self, rtol: float) -> bool:
        return self.max_mean_rel <= rtol and self.max_std_rel <= rtol and max(self.residuals) <= rtol


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def formula_inputs(shape: tuple[int, ...] = (1, 4, 8, 8), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed 'model output' (epsilon) and a fixed x_t; any values do, the comparison is algebraic."""
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def adjacent_step(scheduler: DDPMScheduler) -> DDPMScheduler:
    """DDPM as if 'calibrated for adjacent timesteps': its posterior from t to t-1 (beta_t), used for a
    step that jumps the whole gap. Done by pointing diffusers' own previous_timestep at t-1."""
    scheduler.previous_timestep = lambda t: t - 1  # type: ignore[method-assign]
    return scheduler


def measure_formula_gap(stock_config: Any, steps: int = 10,
                        ddpm: Callable[[Any], DDPMScheduler] | None = None) -> FormulaGap:
    """DDPM's step mean and std against DDIM's with eta=1, step by step over a `steps`-step schedule.

    `ddpm` builds the DDPM scheduler under test from the stock config (the negative control passes one
    with the adjacent-step formula).
    """
    ddpm_s = (ddpm or DDPMScheduler.from_config)(stock_config)
    ddim_s = DDIMScheduler.from_config(stock_config)
    ddpm_s.set_timesteps(steps)
    ddim_s.set_timesteps(steps)
    if not torch.equal(ddpm_s.timesteps, ddim_s.timesteps):
        raise AssertionError(f"DDPM and DDIM disagree on the timesteps: {ddpm_s.timesteps} vs {ddim_s.timesteps}")
    eps, x_t = formula_inputs()
    gap = FormulaGap(steps, [], [], [], [], [], [], [])
    for t in ddpm_s.timesteps.tolist():
        p = step_moments(ddpm_s, eps, t, x_t)
        d = step_moments(ddim_s, eps, t, x_t, eta=1.0)
        gap.timesteps.append(int(t))
        gap.gaps.append(int(t) - d.prev_t)
        gap.mean_rel.append(_rel(p.mean, d.mean))
        gap.std_rel.append(abs(p.std - d.std) / d.std if d.std > 0 else abs(p.std))
        gap.residuals.append(max(p.residual, d.residual))
        gap.ddpm_std.append(p.std)
        gap.ddim_std.append(d.std)
    return gap


def final_step_with_alpha_one(stock_config: Any, steps: int = 10) -> tuple[float, float]:
    """The last step with DDIM's set_alpha_to_one=True (DDPM's own convention at t<0): (mean rel, std abs)."""
    ddpm_s = DDPMScheduler.from_config(stock_config)
    ddim_s = DDIMScheduler.from_config(stock_config, set_alpha_to_one=True)
    ddpm_s.set_timesteps(steps)
    ddim_s.set_timesteps(steps)
    eps, x_t = formula_inputs()
    t = int(ddpm_s.timesteps[-1])
    p = step_moments(ddpm_s, eps, t, x_t)
    d = step_moments(ddim_s, eps, t, x_t, eta=1.0)
    return _rel(p.mean, d.mean), abs(p.std - d.std)


# --- dpm-multi-point
def calls_per_step(generation: Generation) -> float:
    """U-Net calls (one batched CFG call counts once) per inference step asked for."""
    return generation.unet_calls / generation.request.steps


def multi_point(calls: float, threshold: float = 1.5) -> bool:
    """'Evaluates the model at several points per step': clearly more than one call per step."""
    return calls >= threshold


# ----------------------------------------------------------------------------------------- takeaways
@dataclass(frozen=True)
class DefaultCheck:
    steps: int
    ssim: float
    quality_share: float | None
    time_share: float
    holds: bool
    why: str


def recommended_default(steps: int, ssim_to_ref: float, adherence: float | None, ref_adherence: float | None,
                        seconds: float, ddpm_seconds: float, *, min_quality_share: float, min_ssim: float,
                        max_time_share: float) -> DefaultCheck:
    """A default worth recommending: near-converged quality for a small share of DDPM@1000's time."""
    share = None
    if adherence is not None and ref_adherence is not None:
        share = adherence / ref_adherence if ref_adherence > 0 else (1.0 if adherence == 0 else math.inf)
    tshare = seconds / ddpm_seconds
    ok_q = share is None or share >= min_quality_share
    ok_s = ssim_to_ref >= min_ssim
    ok_t = tshare <= max_time_share
    q = "no checker" if share is None else f"{share:.0%} of converged adherence (needs {min_quality_share:.0%})"
    why = (f"{steps} steps: {q}, SSIM to converged {ssim_to_ref:.3f} (needs {min_ssim}), time "
           f"{tshare:.1%} of DDPM@1000 (needs <= {max_time_share:.0%})")
    return DefaultCheck(steps, ssim_to_ref, share, tshare, ok_q and ok_s and ok_t, why)


def per_seed_ssim(images: np.ndarray, reference: np.ndarray) -> list[float]:
    """SSIM of image k to reference image k (same seed and prompt)."""
    if len(images) != len(reference):
        raise ValueError(f"{len(images)} images against {len(reference)} references")
    return [ssim(a, b) for a, b in zip(images, reference)]


def mean(values: Sequence[float]) -> float:
    return mean_ci(values).mean


# ----------------------------------------------------------------------------------------- traces
@dataclass
class Trace:
    """One captured generation of Exercise 4: cloned latents and x0 previews per step, the un-cloned
    references of the lesson's callback, and their decodes (made once, on first use)."""

    name: str
    generation: Generation
    references: list[torch.Tensor]
    engine: Engine
    _decoded: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def final(self) -> np.ndarray:
        return self.generation.image(0)

    def decoded(self, what: str = "steps") -> np.ndarray:
        """uint8 decodes of the latents after every step ('steps') or of the x0 previews ('x0')."""
        if what not in self._decoded:
            src = self.generation.intermediates if what == "steps" else self.generation.x0_previews
            if not src:
                raise ValueError(f"{self.name}: nothing captured for {what!r}")
            self._decoded[what] = self.engine.decode(torch.cat(src))
        return self._decoded[what]


def trace(engine: Engine, name: str, spec: SchedulerSpec, steps: int, seed: int, prompt: str) -> Trace:
    gen, refs = capture_references(engine, Request(spec, steps, (seed,), prompt, capture=True))
    return Trace(name, gen, refs, engine)


def band_errors(images: np.ndarray, final: np.ndarray, bands: int = 3) -> list[list[float]]:
    """Per band (low first), the energy of (image - final) as a share of the final's energy, per step."""
    from .metrics import radial_band_energy

    target = np.maximum(radial_band_energy(final, bands), 1e-12)
    rows = [radial_band_energy(im.astype(np.float64) - final.astype(np.float64), bands) / target for im in images]
    return [[float(r[b]) for r in rows] for b in range(bands)]


def decoded_batch(engine: Engine, generation: Generation, what: str = "steps") -> np.ndarray:
    """[steps, batch, H, W, 3] uint8 decodes of a batched capture: latents after each step or x0 previews."""
    src = generation.intermediates if what == "steps" else generation.x0_previews
    if not src:
        raise ValueError(f"{generation.request.label}: nothing captured for {what!r}")
    flat = engine.decode(torch.cat(src))
    return flat.reshape(len(src), src[0].shape[0], *flat.shape[1:])


def median_settling(per_seed: Sequence[Sequence[int | None]], steps: int) -> list[float | None]:
    """Per band, the median over seeds of the settling step ('never' counts as after the last step)."""
    never = steps + 1
    arr = np.array([[never if x is None else x for x in row] for row in per_seed], dtype=float)
    med = np.median(arr, axis=0)
    return [None if m >= never else float(m) for m in med]
