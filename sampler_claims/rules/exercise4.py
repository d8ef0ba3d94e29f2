"""Rules of Exercise 4 (intermediates) and the two mechanism claims its solution makes (DDPM's formula
over gaps, DPM-Solver's points per step).

Every rule takes plain measurements (numbers, tensors, images) and returns a Verdict, so that
tests/test_negative_exercise4.py can feed it broken inputs (an in-place scheduler, a shuffled
trajectory, DDPM with the adjacent-step beta, a fake solver) and show that the verdict turns.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from ..engine import Engine, Generation, Request
from ..metrics import band_settling, residual_noise, ssim
from ..verdict import (
    Separation,
    Verdict,
    all_of,
    at_least,
    exact,
    gated,
    inconclusive,
    paired,
    separation,
    t_interval,
    wilson,
)


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


def callback_after_step(callbacks: int, steps: int, last_capture: torch.Tensor,
                        latent_output: torch.Tensor) -> Verdict:
    """Callback count equals steps, and the last capture is exactly the output_type='latent' result."""
    count_ok = callbacks == steps
    same = last_capture.shape == latent_output.shape and bool(torch.equal(last_capture, latent_output))
    diff = (float((last_capture - latent_output).abs().max()) if last_capture.shape == latent_output.shape
            else float("inf"))
    why = (f"{callbacks} callbacks for {steps} steps; last capture "
           f"{'equals' if same else 'differs from'} the output_type='latent' result (max |diff| {diff:.3g})")
    return exact(count_ok and same, why, callbacks=callbacks, steps=steps)


def clone_needed(aliases: dict[str, "Aliasing"]) -> Verdict:
    """The lesson's form: without .clone() every entry is one and the same tensor, for every sampler."""
    why = "; ".join(
        f"{n}: {a.entries} un-cloned entries are {a.distinct_objects} objects on {a.distinct_storages} storages, "
        f"{a.equal_neighbours} equal neighbours, {a.changed_after_capture} changed after capture"
        for n, a in aliases.items())
    lesson = all(a.all_same_tensor for a in aliases.values())
    if lesson:
        return exact(True, "every un-cloned entry is the same tensor: " + why)
    independent = all(a.independent for a in aliases.values())
    return exact(False, ("the pipeline rebinds `latents` to the scheduler's new tensor every step, so un-cloned "
                         "entries stay distinct and keep their values: " if independent else
                         "un-cloned entries are neither one tensor nor independent: ") + why)


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


def trajectory_ok(ssims: Sequence[float], settling: Sequence[int | None], max_dip: float) -> bool:
    """One seed's DDIM trajectory: SSIM to the final rises (dips <= max_dip) and the bands settle coarse first."""
    return rises(ssims, max_dip)[0] and coarse_first(settling)[0]


def coarse_to_fine(per_seed_ok: Sequence[bool], *, typical_share: float) -> Verdict:
    """'Smoothly from noise to image, coarse first' for DDIM's trajectories in general: the share of seeds
    where it holds has its Wilson interval above typical_share (refuted when wholly below)."""
    k, n = int(sum(bool(x) for x in per_seed_ok)), len(per_seed_ok)
    iv = wilson(k, n, "share of seeds rising smoothly and settling coarse-first")
    return at_least(iv, typical_share, f"{k}/{n} seeds smooth and coarse-first: share")


def decide_coarse_to_fine(claim: Any, per_seed_ok: Sequence[bool]) -> Verdict:
    """coarse-to-fine's wiring, shared by its test and its negative control: the deciding trajectory's per-seed
    outcomes against the claim's typical_share."""
    return coarse_to_fine(per_seed_ok, typical_share=claim.t("typical_share"))


def ddpm_10_worse(better: Sequence[float], worse: Sequence[float], control: Separation | None, *, margin: float,
                  labels: tuple[str, str] = ("better", "worse"), missing: str = "") -> Verdict:
    """'Much worse' = the paired score gap better - worse (`labels`: the claim's first run's label, then its
    second's, e.g. DDIM@10 - DDPM@10, as its test passes them) has its interval at or above the margin."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    what = f"{labels[0]} - {labels[1]}"
    gap = paired(better, worse, f"score {what}")
    return gated(control, at_least(gap, margin, what), missing)


def decide_ddpm_10_worse(judge: Any, better: Any, worse: Any, labels: tuple[str, str]) -> Verdict:
    """ddpm-10-worse's wiring, shared by its test and its negative control: one metric's view (a
    quality_claim.Judge) of the two runs' images, against the claim's much_worse_margin on that metric's scale."""
    margin = judge.margin("much_worse_margin")
    if judge.control is None:
        return ddpm_10_worse([], [], None, margin=margin, labels=labels, missing=judge.missing)
    return ddpm_10_worse(judge.scores(better), judge.scores(worse), judge.control, margin=margin, labels=labels)


@dataclass(frozen=True)
class LateSteps:
    """Per seed, over the late intermediates: DDPM - DDIM residual noise, DDIM - DDPM SSIM to own final."""

    steps: tuple[int, ...]  # 1-based steps averaged
    noise_gap: list[float]
    coherence_gap: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "noise_gap": self.noise_gap, "coherence_gap": self.coherence_gap}


def late_steps(n_steps: int) -> tuple[int, ...]:
    """The second half of the trajectory, final step excluded (1-based)."""
    return tuple(range(n_steps // 2 + 1, n_steps))


def measure_late_steps(ddim: np.ndarray, ddpm: np.ndarray, ddim_final: np.ndarray, ddpm_final: np.ndarray,
                       steps: tuple[int, ...]) -> LateSteps:
    """ddim, ddpm: [steps, seeds, H, W, 3] decoded intermediates; finals: [seeds, H, W, 3]."""
    noise, coh = [], []
    for k in range(ddim.shape[1]):
        idx = [s - 1 for s in steps]
        noise.append(float(np.mean([residual_noise(ddpm[i, k]) - residual_noise(ddim[i, k]) for i in idx])))
        coh.append(float(np.mean([ssim(ddim[i, k], ddim_final[k]) - ssim(ddpm[i, k], ddpm_final[k]) for i in idx])))
    return LateSteps(steps, noise, coh)


def noise_control(early: np.ndarray, final: np.ndarray) -> Separation:
    """Does residual noise tell a known-noisy image (DDIM's first intermediate) from its clean final?"""
    return separation("residual noise", [residual_noise(im) for im in early], [residual_noise(im) for im in final],
                      "step-1 intermediate", "final image")


def intermediates_noisier(m: LateSteps, control: Separation, *, margin: float) -> Verdict:
    """'Noisier, less coherent': both per-seed gaps have intervals above `margin`; the noise statement
    decides only if residual noise separated a noisy intermediate from a clean final in this run."""
    noisier = gated(control, at_least(t_interval(m.noise_gap), margin,
                                      "residual noise DDPM - DDIM (late steps, per seed)"))
    coherent = at_least(t_interval(m.coherence_gap), margin, "SSIM to own final DDIM - DDPM (late steps, per seed)")
    return all_of([noisier.named("noisier"), coherent.named("less coherent")], "DDPM intermediates")


def decide_intermediates_noisier(claim: Any, m: LateSteps, control: Separation) -> Verdict:
    """ddpm-intermediates-noisier's wiring, shared by its test and its negative control: both gaps against the
    claim's margin."""
    return intermediates_noisier(m, control, margin=claim.t("margin"))


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


def measure_formula_gap(stock_config: Any, steps: int,
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


def final_step_with_alpha_one(stock_config: Any, steps: int) -> tuple[float, float]:
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


def multi_point(calls: float, threshold: float) -> bool:
    """'Evaluates the model at several points per step': clearly more than one call per step."""
    return calls >= threshold


def dpm_multi_point(per_step: dict[str, float], threshold: float, decides: str) -> Verdict:
    """The lesson's DPM-Solver (multistep, as it uses it: `decides`, a key of per_step) evaluates several points
    per step; the other solvers are shown beside it."""
    why = (", ".join(f"{n} {v:g}" for n, v in per_step.items()) + " U-Net calls per step")
    return exact(multi_point(per_step[decides], threshold), why, calls_per_step=per_step)


def formula_adjacent(gap: "FormulaGap", adjacent: "FormulaGap", rtol: float) -> Verdict:
    """The lesson's form: DDPM's step over a gap is NOT the exact posterior (differs from DDIM eta=1)."""
    why = (f"over every {gap.gaps[0]}-timestep gap but the last (which ends at t<0, where the stock "
           f"set_alpha_to_one=False alone differs) DDPM's step mean and std "
           f"{'equal' if gap.equal(rtol) else 'differ from'} DDIM(eta=1)'s: max rel. diff mean "
           f"{gap.max_mean_rel:.1e}, std {gap.max_std_rel:.1e} (rtol {rtol}), noise model residual "
           f"{max(gap.residuals):.1e}; the adjacent-step (beta_t) formula would differ by up to "
           f"{adjacent.max_mean_rel:.0%} in mean and {adjacent.max_std_rel:.0%} in std")
    return exact(not gap.equal(rtol), why)



# ----------------------------------------------------------------------------------------- traces
@dataclass
class Trace:
    """One captured generation of Exercise 4: cloned latents and x0 previews per step, the un-cloned
    references of the lesson's callback, and their decodes (the engine's, made once, on first use)."""

    name: str
    generation: Generation
    references: list[torch.Tensor]
    engine: Engine

    @property
    def final(self) -> np.ndarray:
        return self.generation.image(0)

    def decoded(self, what: str = "steps") -> np.ndarray:
        """uint8 decodes of the latents after every step ('steps') or of the x0 previews ('x0'), [steps x batch, H,
        W, 3] (read-only: shared with every reader of this generation)."""
        arr = self.engine.decode_captured(self.generation, what)
        return arr.reshape(-1, *arr.shape[2:])


def trace(engine: Engine, name: str, request: Request) -> Trace:
    """A captured generation of `request` (capture=True), with the lesson's un-cloned callback beside it (a callback
    bypasses the engine's cache: each trace is made anew)."""
    gen, refs = capture_references(engine, request)
    return Trace(name, gen, refs, engine)


def band_errors(images: np.ndarray, final: np.ndarray, bands: int = 3) -> list[list[float]]:
    """Per band (low first), the energy of (image - final) as a share of the final's energy, per step."""
    from ..metrics import radial_band_energy

    target = np.maximum(radial_band_energy(final, bands), 1e-12)
    rows = [radial_band_energy(im.astype(np.float64) - final.astype(np.float64), bands) / target for im in images]
    return [[float(r[b]) for r in rows] for b in range(bands)]


def median_settling(per_seed: Sequence[Sequence[int | None]], steps: int) -> list[float | None]:
    """Per band, the median over seeds of the settling step ('never' counts as after the last step)."""
    never = steps + 1
    arr = np.array([[never if x is None else x for x in row] for row in per_seed], dtype=float)
    med = np.median(arr, axis=0)
    return [None if m >= never else float(m) for m in med]


@dataclass(frozen=True)
class Trajectories:
    """Per trajectory ('DDIM z_t decoded', 'DDPM x0 preview', ...) over the roster: the mean SSIM to the final
    after each step, each seed's band settling steps, whether each seed rises smoothly and settles coarse-first,
    and the mean relative band error per step."""

    curves: dict[str, list[float]]
    settling: dict[str, list[list[int | None]]]
    ok: dict[str, list[bool]]
    errors: dict[str, np.ndarray]


def measure_trajectories(engine: Engine, gens: Mapping[str, Generation], *, max_dip: float,
                         settle_rel_error: float) -> Trajectories:
    """coarse-to-fine's measurement: every seed's decoded z_t and x0 preview after each step against its final."""
    curves, settling, ok, errors = {}, {}, {}, {}
    for name, gen in gens.items():
        n = len(gen.request.seeds)
        for what, label in (("steps", "z_t decoded"), ("x0", "x0 preview")):
            key = f"{name} {label}"
            arr = engine.decode_captured(gen, what)  # [steps, seeds, H, W, 3]
            rows = [ssim_series(arr[:, k], gen.images[k]) for k in range(n)]
            settle = [settling_steps(arr[:, k], gen.images[k], settle_rel_error) for k in range(n)]
            curves[key] = [float(np.mean(col)) for col in zip(*rows)]
            settling[key] = settle
            ok[key] = [trajectory_ok(r, st, max_dip) for r, st in zip(rows, settle)]
            errors[key] = np.mean([band_errors(arr[:, k], gen.images[k]) for k in range(n)], axis=0)
    return Trajectories(curves, settling, ok, errors)
