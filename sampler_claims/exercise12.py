"""Measurements and decision rules of Exercises 1 and 2 (same model with different samplers; DDIM
determinism against DDPM stochasticity).

Measurements run the engine and return plain dataclasses; rules take those dataclasses (or numbers)
and return `(lesson_holds, why)`. Keeping the two apart is what lets tests/test_negative_exercise12.py
feed each rule a broken sampler or a synthetic measurement and show that the rule can fail.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .counters import count_random_draws, count_unet_calls
from .engine import Engine, Generation, Request
from .metrics import Difference, Estimate, difference, r_squared, ssim
from .quality import QualityStats
from .schedulers import SchedulerSpec, make_scheduler

# ---------------------------------------------------------------------------- same-weights

def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes), order-stable."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def same_weights(hashes: dict[str, str]) -> tuple[bool, str]:
    distinct = sorted(set(hashes.values()))
    if len(distinct) == 1:
        return True, f"U-Net hash unchanged across {len(hashes)} checkpoints ({distinct[0][:12]}…)"
    changed = [k for k, v in hashes.items() if v != hashes[next(iter(hashes))]]
    return False, f"U-Net weights changed at: {', '.join(changed)}"


# ============================================================================ Exercise 1: the configs
#: The lesson's three configurations by short name: (scheduler, steps). DDPM at 1000 steps needs
#: trailing spacing with SD 1.5's stock config (diffusers #10003; see `lesson-code-runs`).
LESSON_SAMPLERS: dict[str, tuple[SchedulerSpec, int]] = {
    "ddpm": (SchedulerSpec.of("ddpm", timestep_spacing="trailing"), 1000),
    "ddim": (SchedulerSpec.of("ddim"), 50),
    "dpm-solver": (SchedulerSpec.of("dpm-solver"), 20),
}
#: What the lesson runs literally: DDPMScheduler.from_config(stock) with no override.
STOCK_DDPM = SchedulerSpec.of("ddpm")
LABELS = {"ddpm": "DDPM@1000", "ddim": "DDIM@50", "dpm-solver": "DPM-Solver@20"}
#: Pairs compared for `different-paths`: the ODE pair first.
PAIRS: tuple[tuple[str, str], ...] = (("ddim", "dpm-solver"), ("ddpm", "ddim"), ("ddpm", "dpm-solver"))


def exercise1_requests(prompts: str | tuple[str, ...], seeds: tuple[int, ...],
                       guidance: float = 7.5) -> dict[str, Request]:
    """One batched request per lesson sampler over the same seeds and prompts (the cache shares them)."""
    return {name: Request(spec, steps, seeds, prompts, guidance=guidance)
            for name, (spec, steps) in LESSON_SAMPLERS.items()}


def run_exercise1(engine: Engine, prompts: str | tuple[str, ...], seeds: tuple[int, ...]) -> dict[str, Generation]:
    """The three samplers over all seeds, one engine call each (cached: later claims reuse them)."""
    return {name: engine.generate(req) for name, req in exercise1_requests(prompts, seeds).items()}


# ---------------------------------------------------------------------------- lesson-code-runs
@dataclass(frozen=True)
class StockRun:
    """What happens when the lesson's DDPM line runs on the model's stock scheduler config."""

    steps: int
    config: dict[str, Any]  # the settings that decide the timesteps
    first_timestep: int
    num_train_timesteps: int
    error_type: str | None
    error: str | None
    unet_calls: int  # before the error, or in all

    @property
    def ran(self) -> bool:
        return self.error_type is None

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "config": self.config, "first_timestep": self.first_timestep,
                "num_train_timesteps": self.num_train_timesteps, "error_type": self.error_type,
                "error": self.error, "unet_calls": self.unet_calls}


def measure_stock_ddpm(engine: Engine, prompt: str, seed: int, steps: int = 1000,
                       spec: SchedulerSpec = STOCK_DDPM) -> StockRun:
    """Run DDPM from the stock config and catch what it raises (it fails at the first step, so it is cheap)."""
    scheduler, used = make_scheduler(spec, engine.stock_config)
    scheduler.set_timesteps(steps)
    keys = ("timestep_spacing", "steps_offset", "num_train_timesteps", "_class_name")
    error_type = error = None
    with count_unet_calls(engine.pipe.unet) as calls:
        try:
            engine.generate(Request(spec, steps, (seed,), prompt))
        except Exception as exc:  # noqa: BLE001 - the failure is the measurement
            error_type, error = type(exc).__name__, str(exc)
    return StockRun(steps=steps, config={k: used.get(k) for k in keys},
                    first_timestep=int(scheduler.timesteps[0]),
                    num_train_timesteps=int(used["num_train_timesteps"]),
                    error_type=error_type, error=error, unet_calls=calls.calls)


def lesson_code_runs(stock: StockRun, fixed: Generation | None = None) -> tuple[bool, str]:
    """The lesson's code runs as written iff the stock config completes DDPM at its step count."""
    fix = ""
    if fixed is not None:
        spacing = dict(fixed.request.scheduler.overrides).get("timestep_spacing", "stock")
        fix = (f"; with timestep_spacing={spacing!r} it runs ({fixed.unet_calls} U-Net calls, first timestep "
               f"{fixed.timesteps[0]})")
    if stock.ran:
        return True, (f"DDPMScheduler.from_config(stock) ran {stock.steps} steps "
                      f"(first timestep {stock.first_timestep})" + fix)
    return False, (f"DDPMScheduler.from_config(stock) at {stock.steps} steps raises {stock.error_type} "
                   f"({stock.error}) after {stock.unet_calls} U-Net call(s): spacing "
                   f"{stock.config.get('timestep_spacing')!r} with steps_offset={stock.config.get('steps_offset')} "
                   f"gives first timestep {stock.first_timestep} of {stock.num_train_timesteps} (diffusers #10003)"
                   + fix)


# ---------------------------------------------------------------------------- comparable-quality
#: The known-good sampler of the adherence control, and the known-bad one's scheduler (its steps live
#: in the registry as comparable-quality's control_steps).
CONTROL_GOOD = "dpm-solver"
CONTROL_SPEC = SchedulerSpec.of("dpm-solver")


def newcombe_difference(a: Estimate, b: Estimate) -> tuple[float, float]:
    """95% interval of a - b for two independent proportions from their Wilson intervals (Newcombe's
    hybrid score method), so a difference of two small-sample rates comes with its uncertainty."""
    d = a.mean - b.mean
    low = d - math.sqrt((a.mean - a.low) ** 2 + (b.high - b.mean) ** 2)
    high = d + math.sqrt((a.high - a.mean) ** 2 + (b.mean - b.low) ** 2)
    return low, high


@dataclass(frozen=True)
class Separation:
    """Does adherence tell the known-good sampler from the known-bad one on this model at this n?"""

    good: str
    bad: str
    good_adherence: Estimate
    bad_adherence: Estimate
    low: float
    high: float

    @property
    def separates(self) -> bool:
        return self.low > 0

    def __str__(self) -> str:
        return (f"{self.good} {self.good_adherence.mean:.2f} against {self.bad} {self.bad_adherence.mean:.2f}: "
                f"difference 95% interval [{self.low:.2f}, {self.high:.2f}]")

    def as_dict(self) -> dict[str, Any]:
        return {"good": self.good, "bad": self.bad, "good_adherence": self.good_adherence.as_dict(),
                "bad_adherence": self.bad_adherence.as_dict(), "difference_ci95": [round(self.low, 4),
                                                                                 round(self.high, 4)],
                "separates": self.separates}


def adherence_separation(good: QualityStats, bad: QualityStats, good_label: str, bad_label: str) -> Separation | None:
    """The adherence control; None where there is no checker."""
    if good.adherence is None or bad.adherence is None:
        return None
    low, high = newcombe_difference(good.adherence, bad.adherence)
    return Separation(good_label, bad_label, good.adherence, bad.adherence, low, high)


def comparable_quality(stats: Mapping[str, QualityStats], *, separation: Separation | None, max_adherence_gap: float,
                       min_adherence: float, max_noise_ratio: float, noise_floor: float,
                       min_sharpness_ratio: float) -> tuple[bool, str]:
    """Comparable = adherence means within a tolerance and all good, residual noise within a ratio of the
    quietest sampler, and sharpness within a ratio of the sharpest.

    Adherence decides only where a checker exists *and* it separated the known-good sampler from the
    known-bad control on the same seeds; otherwise it is reported and the verdict rests on the
    no-reference statistics, and the reason says so. The noise floor keeps a ratio of two invisible
    sigmas from deciding anything.
    """
    names = list(stats)
    fails: list[str] = []
    parts: list[str] = []
    basis = ""
    has_adherence = all(stats[n].adherence is not None for n in names)
    if has_adherence:
        adh = {n: stats[n].adherence.mean for n in names}  # type: ignore[union-attr]
        gap = max(adh.values()) - min(adh.values())
        worst, best = min(adh, key=adh.get), max(adh, key=adh.get)
        low, high = newcombe_difference(stats[best].adherence, stats[worst].adherence)  # type: ignore[arg-type]
        parts.append("adherence " + ", ".join(f"{n} {stats[n].adherence}" for n in names)
                     + f"; gap {gap:.3f} (tolerance {max_adherence_gap}; its 95% interval [{low:.2f}, {high:.2f}])")
        if separation is not None and separation.separates:
            parts.append(f"adherence control: {separation}")
            if gap > max_adherence_gap:
                fails.append(f"adherence gap {gap:.3f} > {max_adherence_gap}")
            if adh[worst] < min_adherence:
                fails.append(f"{worst} adherence {adh[worst]:.3f} < {min_adherence}")
        else:
            basis = ("adherence does not decide: it did not separate known-good from known-bad on this model at "
                     f"n={stats[names[0]].adherence.n} ({separation or 'no control'}); the verdict rests on "  # type: ignore[union-attr]
                     "residual noise and sharpness; ")
    else:
        basis = "no checker on this model: verdict rests on residual noise and sharpness only; "
    noise = {n: stats[n].noise.mean for n in names}
    noise_ratio = max(noise.values()) / max(min(noise.values()), noise_floor)
    parts.append("residual noise " + ", ".join(f"{n} {stats[n].noise}" for n in names)
                 + f"; ratio {noise_ratio:.2f} with the floor {noise_floor} (tolerance {max_noise_ratio})")
    if noise_ratio > max_noise_ratio:
        fails.append(f"{max(noise, key=noise.get)} is {noise_ratio:.2f}x noisier than "
                     f"{min(noise, key=noise.get)} (floor {noise_floor})")
    sharp = {n: stats[n].sharpness.mean for n in names}
    sharp_ratio = min(sharp.values()) / max(max(sharp.values()), 1e-12)
    parts.append(f"sharpness ratio {sharp_ratio:.2f} (at least {min_sharpness_ratio})")
    if sharp_ratio < min_sharpness_ratio:
        fails.append(f"{min(sharp, key=sharp.get)} has {sharp_ratio:.2f}x the sharpness of "
                     f"{max(sharp, key=sharp.get)}")
    if fails:
        return False, basis + "not comparable: " + "; ".join(fails) + " — " + "; ".join(parts)
    return True, basis + "comparable: " + "; ".join(parts)


# ---------------------------------------------------------------------------- different-paths
@dataclass(frozen=True)
class Paths:
    """Per-seed SSIM of each sampler pair on the same seed."""

    seeds: tuple[int, ...]
    ssim: dict[str, list[float]]  # "ddim|dpm-solver" -> per seed

    def mean(self, pair: str) -> float:
        return float(np.mean(self.ssim[pair]))

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "ssim": self.ssim,
                "mean_ssim": {p: round(self.mean(p), 4) for p in self.ssim}}


def pair_key(a: str, b: str) -> str:
    return f"{a}|{b}"


def measure_paths(images: Mapping[str, np.ndarray], seeds: Sequence[int]) -> Paths:
    """SSIM (skimage) of every pair of samplers, image by image on the same seed."""
    out = {pair_key(a, b): [ssim(images[a][k], images[b][k]) for k in range(len(seeds))] for a, b in PAIRS}
    return Paths(tuple(seeds), out)


def different_paths(paths: Paths, *, max_identity_ssim: float) -> tuple[bool, str]:
    """Different paths = no pair of samplers gives the same image on any seed, and the two ODE samplers
    (DDIM, DPM-Solver) land closer to each other than either does to stochastic DDPM."""
    ode = pair_key(*PAIRS[0])
    same = {p: sum(v >= max_identity_ssim for v in vals) for p, vals in paths.ssim.items()}
    means = {p: paths.mean(p) for p in paths.ssim}
    text = ", ".join(f"{p.replace('|', ' vs ')} {m:.3f}" for p, m in means.items())
    identical = {p: n for p, n in same.items() if n}
    if identical:
        return False, (f"identical images (SSIM >= {max_identity_ssim}) on "
                       + ", ".join(f"{n}/{len(paths.seeds)} seeds for {p.replace('|', ' vs ')}"
                                   for p, n in identical.items()) + f"; mean SSIM {text}")
    others = [m for p, m in means.items() if p != ode]
    if means[ode] <= max(others):
        return False, (f"no image identical, but the ODE pair is not the closest (mean SSIM {text}): the "
                       "paths do not group as DDIM/DPM-Solver (ODE) against DDPM (stochastic)")
    return True, (f"no pair identical on {len(paths.seeds)} seeds; mean SSIM {text}: the ODE samplers land "
                  "closest to each other, DDPM's stochastic path elsewhere")


# ---------------------------------------------------------------------------- speedup
@dataclass(frozen=True)
class Timing:
    """One timed configuration: pytest-benchmark's median (or a single run's time) and counted calls."""

    name: str
    seconds: float
    rounds: int
    unet_calls: int
    unet_samples: int
    steps: int
    source: str = "pytest-benchmark median"

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 5), "rounds": self.rounds, "unet_calls": self.unet_calls,
                "unet_samples": self.unet_samples, "steps": self.steps, "source": self.source}


def timing_rounds(unet_calls: int, budget_calls: int = 300, most: int = 5) -> int:
    """Rounds sized to cost: about `budget_calls` U-Net calls per configuration, at least 1, at most `most`."""
    return max(1, min(most, budget_calls // max(unet_calls, 1)))


@dataclass(frozen=True)
class Speedup:
    baseline: str
    time_ratio: dict[str, float]
    call_ratio: dict[str, float]
    share: dict[str, float]  # time ratio / call ratio
    intercept_s: float  # a of time = a + b * calls
    per_call_s: float  # b
    r2: float
    predicted_ratio: dict[str, float]  # (a + b*calls_base) / (a + b*calls)

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "time_ratio": self.time_ratio, "call_ratio": self.call_ratio,
                "share_of_call_ratio": self.share, "fixed_overhead_s": self.intercept_s,
                "per_call_s": self.per_call_s, "fit_r2": self.r2, "fit_predicted_ratio": self.predicted_ratio}


def speedup_analysis(timings: Mapping[str, Timing], baseline: str = "ddpm") -> Speedup:
    """Time ratios against the baseline, U-Net call ratios, and the line time = a + b*calls over all configs."""
    base = timings[baseline]
    others = [n for n in timings if n != baseline]
    a, b, r2 = r_squared([t.unet_calls for t in timings.values()], [t.seconds for t in timings.values()])
    tr = {n: base.seconds / timings[n].seconds for n in others}
    cr = {n: base.unet_calls / timings[n].unet_calls for n in others}
    pred = {n: (a + b * base.unet_calls) / (a + b * timings[n].unet_calls) for n in others}
    return Speedup(baseline, tr, cr, {n: tr[n] / cr[n] for n in others}, a, b, r2, pred)


def speedup(s: Speedup, lesson_factor: Mapping[str, float], *, min_share: float, max_share: float) -> tuple[bool, str]:
    """'About N× faster' holds iff each time ratio is within [min_share, max_share] of the U-Net call
    ratio and that call ratio is the lesson's N (so the speed-up is the one fewer U-Net calls explain)."""
    fails, parts = [], []
    for n, ratio in s.time_ratio.items():
        share = s.share[n]
        parts.append(f"{n} {ratio:.1f}x (calls {s.call_ratio[n]:.0f}x, lesson {lesson_factor[n]:.0f}x, "
                     f"share {share:.2f})")
        if not math.isclose(s.call_ratio[n], lesson_factor[n], rel_tol=0.05):
            fails.append(f"{n}: U-Net call ratio {s.call_ratio[n]:.1f} is not the lesson's {lesson_factor[n]:.0f}")
        if share < min_share:
            fails.append(f"{n}: {ratio:.1f}x is under {min_share} of the call ratio")
        elif share > max_share:
            fails.append(f"{n}: {ratio:.1f}x is over {max_share}x the call ratio (time is not driven by U-Net calls)")
    fit = f"fit time = {s.intercept_s:.3f} s + {s.per_call_s * 1e3:.2f} ms x calls (R2 {s.r2:.4f}); "
    if s.intercept_s > 0:
        fit += (f"the fixed overhead of {s.intercept_s:.3f} s per pipeline call keeps the ratios under the "
                "call ratios (the fit predicts " + ", ".join(f"{n} {r:.1f}x" for n, r in s.predicted_ratio.items())
                + ")")
    else:
        fit += "no positive fixed overhead: time is proportional to U-Net calls (or cheaper per call at fewer steps)"
    text = "; ".join(parts) + "; " + fit
    return (False, "; ".join(fails) + " — " + text) if fails else (True, text)


# ---------------------------------------------------------------------------- cfg-two-passes
@dataclass(frozen=True)
class CfgCounts:
    """U-Net calls and batch sizes of the same config with guidance (CFG) and without."""

    steps: int
    images: int
    cfg_batch_sizes: list[int]
    plain_batch_sizes: list[int]
    cfg_seconds: float | None = None
    plain_seconds: float | None = None

    @property
    def cfg_calls(self) -> int:
        return len(self.cfg_batch_sizes)

    @property
    def plain_calls(self) -> int:
        return len(self.plain_batch_sizes)

    @property
    def sample_ratio(self) -> float:
        return sum(self.cfg_batch_sizes) / max(sum(self.plain_batch_sizes), 1)

    @property
    def time_ratio(self) -> float | None:
        if self.cfg_seconds is None or self.plain_seconds is None:
            return None
        return self.cfg_seconds / self.plain_seconds

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "images": self.images, "cfg_calls": self.cfg_calls,
                "plain_calls": self.plain_calls, "cfg_batch": sorted(set(self.cfg_batch_sizes)),
                "plain_batch": sorted(set(self.plain_batch_sizes)), "sample_ratio": self.sample_ratio,
                "time_ratio": self.time_ratio, "cfg_seconds": self.cfg_seconds, "plain_seconds": self.plain_seconds}


def cfg_counts(cfg: Generation, plain: Generation, cfg_seconds: float | None = None,
               plain_seconds: float | None = None) -> CfgCounts:
    return CfgCounts(cfg.request.steps, len(cfg.request.seeds), list(cfg.unet_batch_sizes),
                     list(plain.unet_batch_sizes), cfg_seconds, plain_seconds)


def cfg_compute_doubles(c: CfgCounts) -> bool:
    """What is true of diffusers' CFG: the U-Net evaluates twice the samples (2B) per step."""
    return math.isclose(c.sample_ratio, 2.0)


def cfg_two_passes(c: CfgCounts) -> tuple[bool, str]:
    """The lesson's literal form: 2 U-Net forward passes per step, steps x 2 calls in all."""
    time = f"; time ratio 7.5/1.0 = {c.time_ratio:.2f}" if c.time_ratio is not None else ""
    sizes = sorted(set(c.cfg_batch_sizes))
    shape = (f"{c.cfg_calls} U-Net calls for {c.steps} steps with guidance, batch {sizes} for {c.images} "
             f"image(s) (without: {c.plain_calls} calls, batch {sorted(set(c.plain_batch_sizes))}); "
             f"samples evaluated x{c.sample_ratio:.2f}")
    if c.cfg_calls == 2 * c.steps:
        return True, f"two forward passes per step: {shape}{time}"
    if c.cfg_calls == c.steps and cfg_compute_doubles(c):
        return False, (f"one batched forward pass of 2B per step, not two passes: {shape}; the compute doubles "
                       f"but the call count does not{time}")
    return False, f"neither two passes per step nor one of 2B: {shape}{time}"


# ============================================================================ Exercise 2: runs
@dataclass
class Run:
    """One pipeline call: its uint8 image, final latents and what it drew from the random generator."""

    image: np.ndarray
    latents: torch.Tensor
    draws: int
    zT_draws: int
    step_draws: list[int]
    generator_advanced: bool
    unet_calls: int
    seconds: float
    timesteps: list[int] = field(default_factory=list)


@dataclass
class Runs:
    """Several runs of one configuration, and how the generators were handled between them."""

    label: str
    mode: str  # reseed | shared | distinct
    request: Request
    runs: list[Run]

    def pairs(self) -> list[tuple[int, int, Difference, bool]]:
        """(i, j, pixel difference, latents equal) for every pair of runs."""
        out = []
        for i in range(len(self.runs)):
            for j in range(i + 1, len(self.runs)):
                a, b = self.runs[i], self.runs[j]
                out.append((i, j, difference(a.image, b.image), bool(torch.equal(a.latents, b.latents))))
        return out

    def all_identical(self) -> bool:
        return all(d.identical and lat for _, _, d, lat in self.pairs())

    def table(self) -> list[list[Any]]:
        return [[f"run {i + 1} vs run {j + 1}", d.identical, lat, round(d.mean_abs, 3), d.max_abs]
                for i, j, d, lat in self.pairs()]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "mode": self.mode, "runs": len(self.runs),
                "draws_per_call": [r.draws for r in self.runs],
                "pairs": [{"runs": [i + 1, j + 1], **d.as_dict(), "latents_equal": lat}
                          for i, j, d, lat in self.pairs()]}


TABLE_COLUMNS = ["pair", "pixel-identical (uint8)", "latents equal", "mean |diff| /255", "max |diff| /255"]

MODES = {
    "reseed": "a fresh generator seeded with the same seed before every run",
    "shared": "one generator seeded once and shared by all runs",
    "distinct": "a different seed's generator for every run",
}


def run_once(engine: Engine, request: Request, generators: list[torch.Generator]) -> Run:
    """One uncached generation with the given generators, counting diffusers' random draws per phase.

    z_T draws are those before the first U-Net call; step i's draws fall between its U-Net call and its
    step-end callback.
    """
    before = [g.get_state().clone() for g in generators]
    marks: list[int] = []
    first: list[int] = []
    with count_random_draws() as draws:
        def pre(_m: Any, _a: Any) -> None:
            if not first:
                first.append(draws.count)

        def on_step(_p: Any, _i: int, _t: Any, _kw: dict) -> dict:
            marks.append(draws.count)
            return {}

        handle = engine.pipe.unet.register_forward_pre_hook(pre)
        try:
            gen = engine.generate(request, generators=generators, callback=on_step)
        finally:
            handle.remove()
    zT = first[0] if first else draws.count
    steps = list(np.diff([zT, *marks]).astype(int)) if marks else []
    advanced = any(not torch.equal(b, g.get_state()) for b, g in zip(before, generators))
    return Run(image=gen.image(0), latents=gen.latents, draws=draws.count, zT_draws=int(zT),
               step_draws=[int(s) for s in steps], generator_advanced=advanced, unet_calls=gen.unet_calls,
               seconds=gen.seconds, timesteps=gen.timesteps)


def measure_runs(engine: Engine, request: Request, runs: int, mode: str, label: str = "") -> Runs:
    """`runs` uncached runs of one single-seed request with generators handled as `mode` says."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if len(request.seeds) != 1:
        raise ValueError("Exercise 2 runs one image per call, as the lesson does")
    seed = request.seeds[0]
    shared = [torch.Generator("cpu").manual_seed(seed)]
    out = []
    for i in range(runs):
        if mode == "shared":
            gens = shared
        else:
            gens = [torch.Generator("cpu").manual_seed(seed if mode == "reseed" else seed + i)]
        out.append(run_once(engine, request, gens))
    return Runs(label or request.label, mode, request, out)


def _diff_summary(r: Runs) -> str:
    pairs = r.pairs()
    same = sum(d.identical for _, _, d, _ in pairs)
    mean = min(d.mean_abs for _, _, d, _ in pairs)
    mx = max(d.max_abs for _, _, d, _ in pairs)
    return (f"{same}/{len(pairs)} pairs pixel-identical, smallest mean |diff| {mean:.2f}/255, "
            f"largest max |diff| {mx}/255")


def _all_differ(r: Runs, min_mean_abs_diff: float) -> bool:
    return all(not d.identical and d.mean_abs >= min_mean_abs_diff for _, _, d, _ in r.pairs())


def ddim_deterministic(r: Runs) -> tuple[bool, str]:
    """Every pair of re-seeded runs is pixel-identical (uint8) and has equal latents."""
    lat = all(l for *_, l in r.pairs())
    text = f"{len(r.runs)} runs, {MODES[r.mode]}: {_diff_summary(r)}; latents equal: {lat}"
    return r.all_identical(), text


def ddpm_stochastic(r: Runs, *, min_mean_abs_diff: float) -> tuple[bool, str]:
    """Every pair of runs sharing one generator differs, by more than rounding."""
    adv = all(x.generator_advanced for x in r.runs)
    return _all_differ(r, min_mean_abs_diff), (f"{len(r.runs)} runs, {MODES[r.mode]} (advanced by every run: "
                                               f"{adv}): {_diff_summary(r)}")


def ddim_depends_only_on_zT(ddim: Runs, ddpm: Runs, *, min_mean_abs_diff: float) -> tuple[bool, str]:
    """With z_T fixed and the generators varied, DDIM is identical and DDPM is not."""
    d_ok, p_ok = ddim.all_identical(), _all_differ(ddpm, min_mean_abs_diff)
    text = (f"same z_T, {MODES[ddim.mode]}: DDIM {_diff_summary(ddim)}; DDPM {_diff_summary(ddpm)}")
    if not d_ok:
        text = "DDIM changed with the generator although z_T was fixed: " + text
    elif not p_ok:
        text = "DDPM did not change with the generator: " + text
    return d_ok and p_ok, text


def ddim_eta(eta1: Runs, eta0: Runs, *, min_mean_abs_diff: float) -> tuple[bool, str]:
    """With z_T fixed: DDIM eta=0 identical whatever the generator, eta=1 different; sigma is the cause."""
    z_ok, o_ok = eta0.all_identical(), _all_differ(eta1, min_mean_abs_diff)
    text = (f"same z_T: eta=0 ({MODES[eta0.mode]}) {_diff_summary(eta0)}; eta=1 ({MODES[eta1.mode]}) "
            f"{_diff_summary(eta1)}")
    return z_ok and o_ok, text


def ddpm_reproducible_when_reseeded(r: Runs) -> tuple[bool, str]:
    """The lesson's takeaway ('non-reproducible') holds iff re-seeded DDPM runs are NOT all identical."""
    identical = r.all_identical()
    text = f"{len(r.runs)} DDPM runs, {MODES[r.mode]}: {_diff_summary(r)}"
    if identical:
        return False, ("re-seeded DDPM is pixel-identical: stochastic is not irreproducible — the per-step noise "
                       "comes from the seeded generator. " + text)
    return True, "re-seeded DDPM differs between runs: " + text


@dataclass(frozen=True)
class NoiseDraws:
    steps: int
    ddpm_draws: int
    ddpm_zT: int
    ddpm_step_draws: list[int]
    ddim_draws: int
    ddim_zT: int
    ddim_step_draws: list[int]
    last_timestep: int | None = None
    last_step_variance: float | None = None

    @property
    def steps_drawing(self) -> int:
        return sum(1 for d in self.ddpm_step_draws if d > 0)

    @property
    def last_step_draws(self) -> bool:
        return bool(self.ddpm_step_draws) and self.ddpm_step_draws[-1] > 0

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "ddpm_draws_per_call": self.ddpm_draws, "ddpm_zT_draws": self.ddpm_zT,
                "ddpm_steps_drawing": self.steps_drawing, "ddpm_last_step_draws": self.last_step_draws,
                "ddpm_last_timestep": self.last_timestep, "ddpm_last_step_variance": self.last_step_variance,
                "ddim_draws_per_call": self.ddim_draws, "ddim_zT_draws": self.ddim_zT,
                "ddim_step_draws": sum(self.ddim_step_draws)}


def noise_draws(ddpm: Run, ddim: Run, last_step_variance: float | None = None) -> NoiseDraws:
    return NoiseDraws(len(ddpm.step_draws), ddpm.draws, ddpm.zT_draws, ddpm.step_draws, ddim.draws, ddim.zT_draws,
                      ddim.step_draws, ddpm.timesteps[-1] if ddpm.timesteps else None, last_step_variance)


def last_step_variance(engine: Engine, spec: SchedulerSpec, steps: int) -> tuple[int, float]:
    """DDPM's posterior variance at its last timestep (0 when it steps to t<0), from the scheduler itself."""
    scheduler, _ = make_scheduler(spec, engine.stock_config)
    scheduler.set_timesteps(steps)
    t = int(scheduler.timesteps[-1])
    return t, float(scheduler._get_variance(t))  # noqa: SLF001 - the value step() scales its draw by


def ddpm_noise_draws(m: NoiseDraws, *, min_draws: int) -> tuple[bool, str]:
    """DDPM draws at every step (the last may be spared: its variance is 0) and dozens of draws per call."""
    every = m.steps_drawing >= m.steps - 1
    dozens = m.ddpm_draws >= min_draws
    last = "draws" if m.last_step_draws else "does not draw"
    var = ""
    if m.last_step_variance is not None:
        v = "0 (diffusers clamps it to 1e-20)" if m.last_step_variance <= 1e-12 else f"{m.last_step_variance:.3g}"
        var = f" (t={m.last_timestep}, variance {v})"
    text = (f"DDPM@{m.steps}: {m.ddpm_draws} draws per call = {m.ddpm_zT} for z_T + {sum(m.ddpm_step_draws)} "
            f"over {m.steps_drawing}/{m.steps} steps; the last step {last}{var}; DDIM(eta=0): {m.ddim_draws} "
            f"per call ({m.ddim_zT} for z_T, {sum(m.ddim_step_draws)} per-step)")
    if not every:
        return False, f"DDPM drew noise on only {m.steps_drawing} of {m.steps} steps: " + text
    if not dozens:
        return False, f"{m.ddpm_draws} draws per call is not dozens (< {min_draws}): " + text
    return True, text
