"""Rules of the claims beyond the lesson: the default on the quality-against-cost front, three diffusers pitfalls
(final sigma, Karras sigmas, lower-order final steps), each with its diffusers issue, the sweet spot against the
guidance scale, steps against U-Net calls, and where DDIM's step lands."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..atlas import Atlas, AtlasPoint, calls_to_reach
from ..verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    REFUTED,
    Interval,
    Separation,
    Verdict,
    all_of,
    at_least,
    at_most,
    exact,
    gated,
    improves,
    inconclusive,
    paired,
    t_interval,
)

#: The atlas table's "calls to 95%" column: the share of the converged score a scheduler has to reach
#: (shown in the report; it decides nothing).
REACH_SHARE = 0.95


def calls_to_reach_converged(points: list[AtlasPoint], converged: Sequence[float] | None) -> dict[str, int | None]:
    """Per scheduler, the fewest grid calls whose mean score reaches REACH_SHARE of the converged mean score."""
    if converged is None:
        return {}
    ref = float(np.mean(converged))
    return calls_to_reach(points, REACH_SHARE * ref) if ref else {}


def default_on_front(atlas: Atlas, default: AtlasPoint, control: Separation | None, *, margin: float,
                     half_the_calls: float, missing: str = "") -> Verdict:
    """Refuted if another sampler reaches the default's quality with at most `half_the_calls` of its calls: its
    paired score minus the default's has its interval at or above -margin. Confirmed if every such cheap point
    is clearly worse (interval wholly below -margin). Else inconclusive."""
    if control is None or default.scores is None:
        return inconclusive(missing or "no validated quality metric on this model")
    cheap = [p for p in atlas.points if p.calls <= default.calls * half_the_calls and p.scores is not None
             and p.scheduler != default.scheduler]
    if not cheap:
        return inconclusive(f"no other sampler ran at {default.calls // 2} calls or fewer")
    parts = {p.label: at_least(paired(p.scores, default.scores, f"{p.label} - {default.label}"), -margin,
                               f"{p.label} ({p.calls} calls) score - {default.label} ({default.calls} calls)")
             for p in cheap}
    reach = [k for k, v in parts.items() if v.verdict == CONFIRMED]
    numbers = {k: v.as_dict() for k, v in parts.items()}
    if reach:
        return gated(control, Verdict(REFUTED, f"{', '.join(reach)} reach(es) {default.label}'s quality (within "
                                               f"{margin:g}) with at most half its calls: "
                                      + "; ".join(parts[k].reason for k in reach), numbers))
    if all(v.verdict == REFUTED for v in parts.values()):
        return gated(control, Verdict(CONFIRMED, f"every sampler at {default.calls // 2} calls or fewer is worse "
                                                 f"than {default.label} by more than {margin:g}: "
                                      + "; ".join(v.reason for v in parts.values()), numbers))
    undecided = [v for v in parts.values() if v.verdict == INCONCLUSIVE]
    need = [v.seeds_needed for v in undecided if v.seeds_needed]
    return gated(control, Verdict(INCONCLUSIVE, "; ".join(v.reason for v in undecided), numbers,
                                  max(need) if need else None))


def final_sigma_zero(noise_sigma_min: Sequence[float], noise_zero: Sequence[float], control: Separation) -> Verdict:
    """sigma_min leaves residual noise that 'zero' removes: the paired noise difference lies above 0, decided
    only if residual noise separated a noisy image from a clean one in this run."""
    return gated(control, improves(paired(noise_sigma_min, noise_zero, "noise sigma_min - zero"),
                                   "residual noise final_sigmas_type='sigma_min' - 'zero'"))


def gain_at_steps(with_: Mapping[int, Sequence[float]], without: Mapping[int, Sequence[float]],
                  control: Separation | None, what: str, missing: str = "") -> Verdict:
    """An option helps at few steps: at every step count the paired score gain (with - without) is above 0."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    parts = [improves(paired(with_[s], without[s], f"{what} @{s}"), f"{s} steps: score with - without {what}")
             for s in sorted(with_)]
    return gated(control, all_of(parts, what))


# ------------------------------------------------------------------------------------------ sweet-spot-guidance
@dataclass(frozen=True)
class Knee:
    """Where DPM-Solver's SSIM to its converged image reaches the margin, at one guidance scale.

    The grid ends with the reference's own step count (SSIM 1 there by construction), so the bracket always closes:
    `low` is the first step count whose SSIM interval is not wholly below the margin (the knee cannot be earlier),
    `high` the first whose interval is wholly at or above it (the knee is there or earlier), `point` the first whose
    mean reaches it. Step counts after `high` cannot move the knee, so they may be left unmeasured.
    """

    guidance: float
    ssim: dict[int, Interval]
    low: int
    high: int
    point: int

    def as_dict(self) -> dict[str, Any]:
        return {"guidance": self.guidance, "low": self.low, "high": self.high, "point": self.point,
                "ssim": {str(s): iv.as_dict() for s, iv in self.ssim.items()}}

    def __str__(self) -> str:
        span = f"{self.low}" if self.low == self.high else f"{self.low}-{self.high}"
        return f"guidance {self.guidance:g}: knee {self.point} steps (bracket {span})"


def knee_at(guidance: float, ssim_to_reference: Mapping[int, Sequence[float]], margin: float) -> Knee:
    """The knee of one guidance from per-seed SSIM to the converged image at each measured step count (ascending;
    the reference's step count last, with SSIM 1 for every seed)."""
    grid = sorted(ssim_to_reference)
    ivs = {s: t_interval(ssim_to_reference[s], f"SSIM to converged at {s} steps") for s in grid}
    # The last step count is the reference: it reaches the margin by construction, even where one seed gives no
    # interval (n=1), so the bracket closes there at the latest.
    high = next((s for s in grid if ivs[s].low >= margin), grid[-1])
    low = next((s for s in grid if ivs[s].high >= margin), grid[-1])
    point = next((s for s in grid if ivs[s].mean >= margin), grid[-1])
    return Knee(guidance, {s: ivs[s] for s in grid if s <= high}, low, high, point)


def sweet_spot_guidance(knees: Sequence[Knee], grid: Sequence[int], *, ratio: float) -> Verdict:
    """Refuted if the knee at the strongest guidance is at least `ratio` times the knee at the weakest, bracket
    against bracket (its lower end against the other's upper end, so the brackets are apart too). Confirmed, if
    not refuted, when every bracket lies within one step of `grid` (the step counts and the reference's): the
    highest upper end is at most one grid position above the lowest lower end. Else inconclusive."""
    grid = sorted(grid)
    ordered = sorted(knees, key=lambda k: k.guidance)
    weak, strong = ordered[0], ordered[-1]
    listing = "; ".join(str(k) for k in ordered)
    numbers = {f"guidance {k.guidance:g}": k.as_dict() for k in ordered}
    if strong.low >= ratio * weak.high:
        return Verdict(REFUTED, f"the knee moves with guidance: at {strong.guidance:g} it is at least "
                                f"{strong.low} steps, at {weak.guidance:g} at most {weak.high}, "
                                f"{strong.low / weak.high:.1f}x (at least {ratio:g}x, brackets apart) ({listing})",
                       numbers)
    spread = grid.index(max(k.high for k in ordered)) - grid.index(min(k.low for k in ordered))
    if spread <= 1:
        return Verdict(CONFIRMED, f"every knee lies within one grid step ({listing})", numbers)
    return inconclusive(f"the knees span {spread} grid steps, but the strongest guidance's is not at least {ratio:g}x "
                        f"the weakest's bracket against bracket ({listing}); more seeds narrow the brackets",
                        **numbers)


# ------------------------------------------------------------------------------------------------ steps-are-calls
def evaluations_per_step(guidance: float) -> int:
    """U-Net evaluations per image and step in the lesson's equation: 2 with CFG (guidance > 1), else 1. The
    pipeline skips CFG at guidance 1 or less."""
    return 2 if guidance > 1 else 1


@dataclass
class CallCounts:
    """Per scheduler and step count: U-Net calls, and U-Net evaluations per image (a call of batch 2B counts 2 per
    image); the schedulers that could not run, with why."""

    calls: dict[str, dict[int, int]]
    evaluations: dict[str, dict[int, int]]
    failed: dict[str, str]


def count_calls(engine: Any, runs: Sequence[Any], seeds: tuple[int, ...], prompt: str) -> CallCounts:
    """Each run (sampler_claims.runs.RunSpec: steps-are-calls' runs expanded to every compatible scheduler, as
    catalogue.expand makes them) from the stock config on `seeds` and `prompt`, as the run declares it (latents
    only): the engine's forward hook counts the U-Net calls. A scheduler that cannot run at some step count is listed
    with its reason, never dropped."""
    out = CallCounts({}, {}, {})
    for name in dict.fromkeys(r.sampler for r in runs):
        try:
            # A scheduler this suite does not know fails at spec(), with its name.
            gens = {r.steps: engine.generate(r.request(seeds, prompt), cached=r.cached)
                    for r in runs if r.sampler == name}
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            out.failed[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
            continue
        out.calls[name] = {s: g.unet_calls for s, g in gens.items()}
        out.evaluations[name] = {s: sum(g.unet_batch_sizes) // len(g.request.seeds) for s, g in gens.items()}
    return out


def steps_are_calls(evaluations: Mapping[str, Mapping[int, int]], failed: Mapping[str, str], *,
                    per_step: int) -> Verdict:
    """evaluations: per scheduler, per step count, the counted U-Net evaluations per image (a call of batch 2B is 2
    per image). Refuted where any differs from steps x per_step, naming each scheduler and its counts; confirmed
    when every scheduler that ran matches and none failed; inconclusive if all that ran match but some could not
    run."""
    differ = {name: {s: n for s, n in counts.items() if n != s * per_step} for name, counts in evaluations.items()}
    differ = {name: d for name, d in differ.items() if d}
    numbers = {"evaluations": {n: {str(s): c for s, c in v.items()} for n, v in evaluations.items()},
               "per_step": per_step, "differ": sorted(differ), "failed": dict(failed)}
    if differ:
        from ..schedulers import LABELS

        said = "; ".join(f"{LABELS.get(name, name)}: " + ", ".join(f"{n} at {s} steps" for s, n in d.items())
                         for name, d in differ.items())
        return Verdict(REFUTED, f"U-Net evaluations per image differ from steps x {per_step} for {len(differ)} of "
                                f"{len(evaluations)} schedulers: {said}", numbers)
    if failed:
        return inconclusive(f"every scheduler that ran makes steps x {per_step} evaluations, but "
                            f"{', '.join(failed)} could not run: {'; '.join(failed.values())}", **numbers)
    return exact(True, f"all {len(evaluations)} schedulers make steps x {per_step} U-Net evaluations per image",
                 **numbers)


# ------------------------------------------------------------------------------------ ddim-step-lands-on-schedule
@dataclass(frozen=True)
class DDIMProbe:
    """Which alpha DDIMScheduler.step used at each scheduled timestep, against the schedule's next timestep's.

    -1 stands for the end of the schedule (the scheduler's final_alpha_cumprod)."""

    spacing: str
    steps: int
    timesteps: tuple[int, ...]
    scheduled: tuple[int, ...]
    used: tuple[int, ...]
    rel_error: tuple[float, ...]
    rtol: float

    @property
    def misses(self) -> list[int]:
        """Indices of the steps whose alpha is not the scheduled next timestep's."""
        return [i for i, e in enumerate(self.rel_error) if e > self.rtol]

    @property
    def lands(self) -> bool:
        return not self.misses

    def as_dict(self) -> dict[str, Any]:
        return {"spacing": self.spacing, "steps": self.steps, "misses": len(self.misses),
                "max_rel_error": float(max(self.rel_error)),
                "first_miss": None if self.lands else {"t": self.timesteps[self.misses[0]],
                                                       "scheduled": self.scheduled[self.misses[0]],
                                                       "used": self.used[self.misses[0]]}}


def probe_ddim_step(stock_config: Any, spacing: str, steps: int, rtol: float, scheduler: str) -> DDIMProbe:
    """One stock DDIMScheduler.step per scheduled timestep with a zero noise prediction, and the alpha it used read
    back from prev_sample: with eta 0 and epsilon prediction, prev = sqrt(a_prev / a_t) * sample. Epsilon prediction
    without clipping or thresholding is set for the probe: those settings change how step() turns the model's
    output into x0, not which alpha it steps to. `scheduler`: the short name of diffusers' own DDIM or of the step to
    the next scheduled timestep (sampler_claims.schedulers.DDIMNextStepScheduler), as the claim's runs name them."""
    from ..schedulers import SchedulerSpec, make_scheduler

    spec = SchedulerSpec.of(scheduler, timestep_spacing=spacing, prediction_type="epsilon", clip_sample=False,
                            thresholding=False)
    sched, _ = make_scheduler(spec, stock_config)
    sched.set_timesteps(steps)
    ts = [int(t) for t in sched.timesteps]
    alphas = sched.alphas_cumprod.double()
    final = float(sched.final_alpha_cumprod)
    sample = torch.ones(1, dtype=torch.float64)
    scheduled, used, err = [], [], []
    for i, t in enumerate(ts):
        prev = sched.step(torch.zeros_like(sample), t, sample).prev_sample
        a_used = float(alphas[t]) * float(prev[0] / sample[0]) ** 2
        nxt = ts[i + 1] if i + 1 < len(ts) else -1
        a_next = float(alphas[nxt]) if nxt >= 0 else final
        scheduled.append(nxt)
        err.append(abs(a_used / a_next - 1))
        if err[-1] <= rtol:
            used.append(nxt)
        else:  # name the timestep whose alpha it was (the end if the final alpha is closer)
            j = int(torch.argmin((alphas - a_used).abs() / alphas))
            used.append(-1 if abs(final - a_used) < abs(float(alphas[j]) - a_used) else j)
    return DDIMProbe(spacing, steps, tuple(ts), tuple(scheduled), tuple(used), tuple(err), rtol)


@dataclass(frozen=True)
class StepEffect:
    """The final images of stock DDIM against DDIM with the step to the next scheduled timestep, same seeds."""

    spacing: str
    steps: int
    ssim: list[float]
    max_abs: int

    def as_dict(self) -> dict[str, Any]:
        return {"spacing": self.spacing, "steps": self.steps, "ssim": t_interval(self.ssim).as_dict(),
                "max_abs_difference": self.max_abs}


def ddim_step_lands(probes: Sequence[DDIMProbe], effects: Mapping[str, StepEffect], *, min_ssim: float,
                    effect_note: str = "") -> Verdict:
    """Exact, per spacing: does every step use the alpha of the schedule's next timestep, at every step count?
    Refuted if any spacing misses, naming where; the effect of a miss on the final image (SSIM against the
    'nearly indistinguishable' margin, largest pixel difference) is stated beside it and decides nothing."""
    spacings = list(dict.fromkeys(p.spacing for p in probes))
    parts, numbers = [], {}
    for sp in spacings:
        mine = [p for p in probes if p.spacing == sp]
        missed = [p for p in mine if not p.lands]
        numbers[sp] = {"probes": [p.as_dict() for p in mine]}
        if not missed:
            parts.append(f"{sp}: lands at {', '.join(str(p.steps) for p in mine)} steps")
            continue
        text = f"{sp}: misses " + ", ".join(
            f"{len(p.misses)}/{p.steps} steps at {p.steps} (t={p.timesteps[p.misses[0]]} goes to "
            f"{p.used[p.misses[0]]}, not {p.scheduled[p.misses[0]]})" for p in missed)
        e = effects.get(sp)
        if e is not None:
            iv = t_interval(e.ssim)
            word = at_least(iv, min_ssim, "").verdict
            looks = {CONFIRMED: "nearly indistinguishable", REFUTED: "visibly different"}.get(word, "undecided")
            text += (f"; final images against the corrected step at {e.steps} steps: SSIM {iv.mean:.4f} "
                     f"[{iv.low:.4f}, {iv.high:.4f}] ({looks} at {min_ssim:g}), largest pixel difference {e.max_abs}")
            numbers[sp]["effect"] = e.as_dict()
        elif effect_note:
            text += f"; {effect_note}"
        parts.append(text)
    lands = [sp for sp in spacings if all(p.lands for p in probes if p.spacing == sp)]
    verdict = len(lands) == len(spacings)
    lead = ("DDIM's step lands on the schedule's next timestep for every spacing" if verdict else
            f"DDIM's step misses the schedule's next timestep with {', '.join(s for s in spacings if s not in lands)}")
    return exact(verdict, f"{lead}: " + "; ".join(parts), **numbers)


# ------------------------------------------------------------------------------------ the claims' wiring
# One function per statistical claim, shared by its test and its negative control: the claim's catalogue entry
# (its runs, its margins) goes in, the verdict comes out, so that an edit in the catalogue reaches both.
def decide_default_on_front(judge: Any, atlas: Atlas, default: AtlasPoint) -> Verdict:
    """default-on-front through one metric's view (a quality_claim.Judge): the claim's comparable margin on that
    metric's scale and its share of the default's calls."""
    return default_on_front(atlas, default, judge.control, margin=judge.margin("comparable_margin"),
                            half_the_calls=judge.t("half_the_calls"), missing=judge.missing)


def final_sigma_runs(claim: Any) -> tuple[str, str]:
    """final-sigma-zero's two compared runs, as declared: the one that ends at sigma_min, then the one that ends at
    zero (the difference is the first's residual noise minus the second's)."""
    first, second = [n for n, r in claim.runs.items() if "final_sigmas_type" in dict(r.overrides)]
    return first, second


def decide_final_sigma_zero(claim: Any, noise: Mapping[str, Sequence[float]], control: Separation) -> Verdict:
    """final-sigma-zero: per-seed residual noise by run name, the first declared run's minus the second's."""
    first, second = final_sigma_runs(claim)
    return final_sigma_zero(noise[first], noise[second], control)


def option_pairs(claim: Any, option: str) -> dict[int, tuple[str, str]]:
    """A gain claim's runs paired by step count: steps -> (the run with `option` True, the run with it False),
    ascending. A step count without both is a usage error naming the runs."""
    pairs: dict[int, dict[bool, str]] = {}
    for name, run in claim.runs.items():
        value = dict(run.overrides).get(option)
        if isinstance(value, bool):
            pairs.setdefault(run.steps, {})[value] = name
    broken = {s: p for s, p in pairs.items() if set(p) != {True, False}}
    if broken or not pairs:
        raise ValueError(f"claim {claim.id!r}: every step count needs one run with {option} = true and one with "
                         f"false; it has {pairs or 'none'}")
    return {s: (pairs[s][True], pairs[s][False]) for s in sorted(pairs)}


def decide_gain(claim: Any, option: str, scores: Mapping[str, Sequence[float]], control: Separation | None,
                what: str, missing: str = "") -> Verdict:
    """karras-sigmas-few-steps and lower-order-final: per-seed scores by run name, paired by the claim's step
    counts (option_pairs), the gain with the option minus without."""
    if control is None:
        return gain_at_steps({}, {}, None, what, missing=missing)
    pairs = option_pairs(claim, option)
    return gain_at_steps({s: scores[w] for s, (w, _) in pairs.items()},
                         {s: scores[wo] for s, (_, wo) in pairs.items()}, control, what)


def knee_of(claim: Any, guidance: float, ssim_to_reference: Mapping[int, Sequence[float]]) -> Knee:
    """sweet-spot-guidance's knee at one guidance, against the claim's knee_ssim margin."""
    return knee_at(guidance, ssim_to_reference, claim.t("knee_ssim", float))


def decide_sweet_spot_guidance(claim: Any, knees: Sequence[Knee], grid: Sequence[int]) -> Verdict:
    """sweet-spot-guidance: the knees against the claim's knee_ratio, on `grid` (the step counts and the
    reference's, from the claim's runs)."""
    return sweet_spot_guidance(knees, grid, ratio=claim.t("knee_ratio", float))

# ------------------------------------------------------------------------------------------------ batch-invariant


@contextmanager
def stock_time_embedding(unet: Any) -> Iterator[None]:
    """diffusers' own U-Net for the duration: without the engine's `time_embedding_once_per_call`, which embeds the
    timestep once per call so that the suite's chunks agree. A diffusers user runs the stock path, where the time
    embedding is a matrix product with one row per image. Restored on exit."""
    patched = unet.__dict__.get("get_time_embed")
    if patched is None:
        yield
        return
    del unet.get_time_embed
    try:
        yield
    finally:
        unet.get_time_embed = patched


def _one_call(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
    """A step-end callback that changes nothing: with it the engine runs a request as one pipeline call (its own
    CPU lanes would split the seeds), so the batch is the one asked for."""
    return {}


def batch_images(runs: Any, name: str, *, shared_generator: bool = False) -> np.ndarray:
    """The uint8 images of run `name`: `runs[name].repeat` batches of `runs[name].seeds` seeds each, from the start of
    the run's roster, one pipeline call per batch. Each image has its own CPU generator (diffusers' documented way),
    or, with `shared_generator`, the batch's one generator is given once per image (`[g] * n`: the documented
    mistake, one stream shared by the batch)."""
    run = runs[name]
    batch, calls = int(run.seeds), int(run.repeat)
    prompts, seeds = runs.inputs(name)
    texts = prompts if isinstance(prompts, tuple) else (prompts,) * len(seeds)
    if calls > 1:  # the run's roster is its first `batch` seeds; the repeats take the ones after, in order
        prompts_all, seeds_all = runs.prompts.roster("exercise1", batch * calls)
        texts, seeds = tuple(prompts_all), tuple(seeds_all)
    out = []
    for a in range(0, batch * calls, batch):
        chunk = tuple(int(s) for s in seeds[a:a + batch])
        gens = None
        if shared_generator:
            g = torch.Generator("cpu").manual_seed(chunk[0])
            gens = [g] * len(chunk)
        out.append(runs.generate(name, seeds=chunk, prompt=tuple(texts[a:a + batch]), generators=gens,
                                 callback=_one_call).images)
    return np.concatenate(out)


@dataclass(frozen=True)
class BatchDifference:
    """One sampler's images of the same seeds at one batch size against each seed alone."""

    label: str
    batch: int
    images: int
    differing_images: int
    differing_pixels: int
    max_abs: int

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "batch": self.batch, "images": self.images,
                "differing_images": self.differing_images, "differing_pixels": self.differing_pixels,
                "max_abs_difference": self.max_abs}


def batch_differences(label: str, by_batch: Mapping[int, np.ndarray]) -> list[BatchDifference]:
    """Every batch size's uint8 images against the smallest batch's (a seed alone), seed by seed."""
    alone = min(by_batch)
    ref = by_batch[alone].astype(np.int16)
    out = []
    for b in sorted(by_batch):
        if b == alone:
            continue
        d = np.abs(by_batch[b].astype(np.int16) - ref)
        out.append(BatchDifference(label, b, len(d), int((d.reshape(len(d), -1).max(axis=1) > 0).sum()),
                                   int((d > 0).sum()), int(d.max())))
    return out


def batch_invariant(differences: Sequence[BatchDifference], *, same_image: int, setting: str) -> Verdict:
    """Exact: every seed's 8-bit image is the same alone as inside every batch (no pixel value differs by more than
    `same_image`), for every sampler. Refuted with the largest pixel difference (the figure) and where it is;
    `setting` names the device, dtype and path measured."""
    numbers = {"differences": [d.as_dict() for d in differences], "setting": setting, "same_image": same_image}
    worst = max(differences, key=lambda d: d.max_abs)
    if worst.max_abs <= same_image:
        said = ", ".join(sorted({d.label for d in differences}))
        return exact(True, f"every seed's 8-bit image is the same alone as in batches of "
                           f"{', '.join(str(b) for b in sorted({d.batch for d in differences}))} ({said}; {setting})",
                     **numbers)
    differ = [d for d in differences if d.max_abs > same_image]
    said = "; ".join(f"{d.label} batch {d.batch}: {d.differing_images}/{d.images} images, {d.differing_pixels} "
                     f"pixel values, up to {d.max_abs}/255" for d in differ)
    return exact(False, f"a seed's 8-bit image depends on the batch it is made in: largest pixel difference "
                        f"{worst.max_abs}/255 ({said}; {setting})", **numbers)


# ----------------------------------------------------------------------------------------------- zero-snr-needs-v
@contextmanager
def unguarded(engine: Any) -> Iterator[None]:
    """The engine without its NaN and blank-image guard for the duration: a run that is expected to break must be
    counted, not raised."""
    check = engine.check
    engine.check = False
    try:
        yield
    finally:
        engine.check = check


@dataclass(frozen=True)
class Breakage:
    """How many of a run's images came out NaN (non-finite final latents) or constant (blank: black, grey)."""

    label: str
    images: int
    nan: int
    constant: int

    @property
    def broken(self) -> int:
        return self.nan + self.constant

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "images": self.images, "nan": self.nan, "constant": self.constant}


def count_broken(gen: Any, label: str) -> Breakage:
    """NaN and constant images of a generation (made unguarded), counted image by image."""
    from ..metrics import is_constant

    nan = sum(not bool(torch.isfinite(lat).all()) for lat in gen.latents)
    constant = sum(is_constant(im) for im in gen.images) if gen.images is not None else 0
    return Breakage(label, len(gen.request.seeds), nan, constant)


def zero_snr_needs_v(broken: Sequence[Breakage], losses: Mapping[str, Interval], control: Separation | None, *,
                     margin: float, missing: str = "") -> Verdict:
    """The zero-terminal-SNR rescale breaks an epsilon-prediction model's output, for every sampler measured: a
    sampler breaks when any image is NaN or constant (exact), else when its paired score with the rescale minus
    without lies wholly below -margin (a loss of quality beyond 'comparable'); it is left intact when that interval
    lies wholly above -margin with no NaN or blank image. Refuted if any sampler is left intact. The quality
    statements count only after the metric passed its control."""
    parts = []
    for b in broken:
        if b.broken:
            parts.append(exact(True, f"{b.label}: {b.nan} of {b.images} images NaN, {b.constant} constant"))
            continue
        iv = losses.get(b.label)
        if iv is None:
            parts.append(inconclusive(f"{b.label}: no NaN or blank image, and no score to compare"))
            continue
        loss = at_most(iv, -margin, f"{b.label}: no NaN or blank image; score with the rescale - without")
        parts.append(gated(control, loss, missing))
    return all_of(parts, "rescale_betas_zero_snr on an epsilon-prediction model")


# ------------------------------------------------------------------------------------------ trailing-at-few-steps
def spacing_pairs(runs: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """A claim's runs (name -> RunSpec) by configuration: 'DDIM@5' -> (its 'leading' run, its 'trailing' run), each
    run's spacing read from its scheduler overrides."""
    from ..names import LABELS

    def spacing(name: str) -> str:
        return dict(runs[name].overrides).get("timestep_spacing", "")

    out = {}
    for name, r in runs.items():
        if spacing(name) == "trailing":
            lead = next(n for n, o in runs.items() if (o.sampler, o.steps) == (r.sampler, r.steps)
                        and spacing(n) == "leading")
            out[f"{LABELS.get(r.sampler, r.sampler)}@{r.steps}"] = (lead, name)
    return out


def trailing_at_few_steps(ssim_leading: Mapping[str, Sequence[float]], ssim_trailing: Mapping[str, Sequence[float]],
                          control: Separation | None, missing: str = "") -> Verdict:
    """Per configuration (a sampler at a step count), per-seed SSIM to the converged image with 'leading' and with
    'trailing' spacing: trailing is closer when the paired gain (trailing - leading) lies above 0. Confirmed if it
    does for every configuration, refuted if any gain lies at or below 0; the statements count only after the
    quality metric passed its control (the converged image is that control's good run)."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    parts = [improves(paired(ssim_trailing[k], ssim_leading[k], f"{k} SSIM trailing - leading"),
                      f"{k}: SSIM to the converged image, trailing - leading") for k in ssim_leading]
    return gated(control, all_of(parts, "timestep_spacing 'trailing' against 'leading'"))
