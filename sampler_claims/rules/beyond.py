"""Rules of the claims beyond the lesson: the default on the quality-against-cost front, three diffusers pitfalls
(final sigma, Karras sigmas, lower-order final steps), each with its diffusers issue, the sweet spot against the
guidance scale, steps against U-Net calls, and where DDIM's step lands."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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
