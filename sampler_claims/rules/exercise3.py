"""Rules of Exercise 3 (step count): sweet-spot, linear-time and no-gain-past-25.

The quality statements pair checker scores by seed against the converged reference (DPM-Solver@200,
same seed) and decide by intervals; the similarity statement uses SSIM between images of the same
seed; linear-time fits a line per interleaved timing round and decides on intervals over rounds.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import ssim
from ..runs import RunSpec
from ..timing import Rounds
from ..verdict import (
    Interval,
    Separation,
    Verdict,
    all_of,
    at_least,
    at_most,
    gated,
    inconclusive,
    paired,
    t_interval,
    unless_clocks_disagree,
    within,
)



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


def per_seed_ssim(images: np.ndarray, reference: np.ndarray) -> list[float]:
    """SSIM of image k to reference image k (same seed and prompt)."""
    if len(images) != len(reference):
        raise ValueError(f"{len(images)} images against {len(reference)} references")
    return [ssim(a, b) for a, b in zip(images, reference)]


# ----------------------------------------------------------------------------------------- sweet-spot
#: What sweet-spot's seed sets mean: the runs on the claim's longer roster are the scored ones.
SCORED = "claim"


@dataclass(frozen=True)
class SweetSpotGrid:
    """sweet-spot's step counts by the part the lesson gives each, from the claim's runs: the scored runs in order
    of steps are garbled, recognizable, good and the converged reference; every step count of the grid above
    'good' is compared with it by SSIM ('nearly indistinguishable')."""

    garbled: int
    recognizable: int
    good: int
    converged: int
    #: Every step count of the grid, ascending (the images and the SSIM-to-converged curve).
    steps: tuple[int, ...]

    @property
    def beyond(self) -> tuple[int, ...]:
        """The step counts compared with 'good' by SSIM: every one above it."""
        return tuple(s for s in self.steps if s > self.good)

    @property
    def scored(self) -> tuple[int, ...]:
        return (self.garbled, self.recognizable, self.good, self.converged)

    @classmethod
    def of(cls, runs: Mapping[str, RunSpec]) -> SweetSpotGrid:
        """From the claim's declared runs (name -> RunSpec): the scored ones are those on its longer roster."""
        scored = sorted(r.steps for r in runs.values() if r.seeds == SCORED)
        if len(scored) != 4 or len(set(scored)) != 4:
            raise ValueError(f"sweet-spot needs four runs with seeds = {SCORED!r} at different step counts (garbled, "
                             f"recognizable, good, converged), its catalogue entry declares {scored}")
        steps = tuple(sorted({r.steps for r in runs.values()}))
        if max(steps) != scored[-1]:
            raise ValueError(f"sweet-spot's converged reference ({scored[-1]} steps, the most steps scored) must be "
                             f"its grid's largest step count, not {max(steps)}")
        return cls(*scored, steps=steps)

    @classmethod
    def infer(cls, scores: Mapping[int, Sequence[float]] | None,
              ssim_to_good: Mapping[int, Sequence[float]]) -> SweetSpotGrid | None:
        """The grid a rule call's inputs imply (scores for the four scored step counts), or None without scores."""
        if scores is None:
            return None
        garbled, recognizable, good, converged = sorted(scores)
        return cls(garbled, recognizable, good, converged, tuple(sorted({*scores, *ssim_to_good})))


def sweet_spot(scores: Mapping[int, Sequence[float]] | None, ssim_to_good: Mapping[int, Sequence[float]],
               control: Separation | None, t: Any, missing: str = "", *, margin: Any = None,
               reference: Any = None, grid: SweetSpotGrid | None = None) -> Verdict:
    """The lesson's four statements of Exercise 3, each decided by its interval; all must hold.

    scores: checker score per seed for each scored step count (grid.scored; the top one is the converged
    reference); ssim_to_good: per seed, SSIM of the images above the 'good' step count (grid.beyond) to the
    'good' image. The quality statements are gated by the run's quality control; the similarity statement needs no
    checker. grid: the step counts by part (SweetSpotGrid.of the claim's runs; without it, from the keys).
    margin: maps a checker-scale margin to the metric's scale (Quality.margin; identity by default);
    reference: the convergence ReferenceCheck of the CLIP path: statements against the reference decide
    only if it is converged (convergence.gated_reference).
    """
    from ..convergence import gated_reference

    g = grid or SweetSpotGrid.infer(scores, ssim_to_good)
    m = margin or (lambda x: x)
    beyond = sorted(ssim_to_good)
    good = "the good step count" if g is None else f"{g.good} steps"
    parts = []
    if scores is None or g is None:
        what = "the" if g is None else f"{g.garbled}/{g.recognizable}/{g.good}-step"
        parts.append(inconclusive(missing or f"no checker on this model: {what} quality statements undecided"))
    else:
        ref = g.converged

        def gap(steps: int) -> Interval:
            return paired(scores[ref], scores[steps], f"score@{ref} - score@{steps}")

        quality = all_of([
            at_least(gap(g.garbled), m(t("garbled_margin")),
                     f"{g.garbled} steps garbled: score@{ref} - score@{g.garbled}").named(f"{g.garbled} garbled"),
            at_most(gap(g.recognizable), m(t("recognizable_margin")),
                    f"{g.recognizable} steps recognizable: score@{ref} - score@{g.recognizable}")
            .named(f"{g.recognizable} recognizable"),
            at_most(gap(g.good), m(t("good_margin")), f"{g.good} steps good: score@{ref} - score@{g.good}")
            .named(f"{g.good} good"),
        ])
        parts.append(gated_reference(reference, gated(control, quality, missing)))
    similar = all_of([at_least(t_interval(ssim_to_good[s]), t("indistinct_min_ssim"), f"SSIM({s} steps, {good})")
                      for s in beyond]).named(f"{beyond[0]}-{beyond[-1]} nearly indistinguishable from "
                                              f"{good.removesuffix(' steps')}")
    parts.append(similar)
    return all_of(parts, "sweet spot")


def judge_sweet_spot(judge: Any, scored: Mapping[int, Any], ssim_to_good: Mapping[int, Sequence[float]],
                     grid: SweetSpotGrid) -> Verdict:
    """sweet-spot decided by one metric (sampler_claims.quality_claim.Judge) from the scored generations by step
    count and the SSIM of the images beyond 'good' to it: the wiring its test and its negative controls share."""
    scores = {s: judge.scores(g) for s, g in scored.items()} if judge.control is not None else None
    return sweet_spot(scores, ssim_to_good, judge.control, judge.t, missing=judge.missing, margin=judge.scale,
                      reference=judge.reference, grid=grid)


# ----------------------------------------------------------------------------------------- linear-time
@dataclass(frozen=True)
class LineFits:
    """One least-squares line time = a + b*steps per timing round, on one clock."""

    clock: str
    steps: tuple[int, ...]
    a: list[float]
    b: list[float]
    r2: list[float]
    share: list[float]  # a / time(20 steps) of the same round

    def as_dict(self) -> dict[str, Any]:
        return {"clock": self.clock, "steps": list(self.steps), "a_s": self.a, "b_s_per_step": self.b,
                "r2": self.r2, "overhead_share": self.share}


def fit_rounds(steps: Sequence[int], seconds_per_round: Sequence[Sequence[float]], clock: str,
               at: int = 20) -> LineFits:
    """Fit each round's times (one per step count) with a line; the share is a over the line's time at `at`.

    Two fits of the same points, each for what it measures:
    - R^2 is the ordinary least-squares line's, in seconds: 'about linear' is about the whole grid, where the
      long runs carry the variance;
    - the line (a, b) is fitted on relative errors (weights 1/t^2): timing noise is multiplicative (a busy
      neighbour stretches a call by a factor), so in seconds the 200-step run's few percent would set the
      intercept, and the overhead lives where the runs are short. On the same contended rounds the per-round
      spread of a / t(20) fell from 0.19 (seconds) to 0.03 (relative errors).
    """
    a, b, r2, share = [], [], [], []
    x = np.asarray(steps, float)
    for ys in seconds_per_round:
        y = np.asarray(ys, float)
        slope, icpt = np.polyfit(x, y, 1)
        resid = y - (icpt + slope * x)
        tot = float(((y - y.mean()) ** 2).sum())
        r2.append(1.0 - float((resid ** 2).sum()) / tot if tot > 0 else 0.0)
        wslope, wicpt = np.polyfit(x, y, 1, w=1.0 / np.abs(y))  # polyfit weights residuals by w: relative errors
        a.append(float(wicpt))
        b.append(float(wslope))
        share.append(float(wicpt) / float(wicpt + wslope * at))
    return LineFits(clock, tuple(int(s) for s in steps), a, b, r2, share)


def line_fits(rounds: Rounds, names: Mapping[int, str], clock: str | None = None) -> LineFits:
    """The per-round fits of the timing rounds; `names` maps step count -> timed configuration name."""
    clock = clock or rounds.clock
    steps = sorted(names)
    per_round = [[rounds.seconds(names[s], clock)[r] for s in steps] for r in range(rounds.rounds)]
    return fit_rounds(steps, per_round, clock)


def linear_time(fits: LineFits, *, min_r2: float, max_overhead_share: float,
                wall: LineFits | None = None) -> Verdict:
    """'About linear, small overhead' = R^2's interval at or above min_r2 and the overhead share's interval
    inside [-max, +max] (a clearly negative intercept is curvature, not negative overhead).

    Decided on the deciding clock; if the wall clock decides the other way, inconclusive.
    """
    def decide(f: LineFits) -> Verdict:
        r2 = at_least(t_interval(f.r2), min_r2, f"R^2 ({f.clock} time, per round)")
        share = within(t_interval(f.share), -max_overhead_share, max_overhead_share,
                       f"intercept / 20-step time ({f.clock} time, per round)")
        slope = t_interval(f.b)
        v = all_of([r2, share], "linear time")
        return Verdict(v.verdict, v.reason + f"; slope {slope.mean * 1e3:.2f} ms/step "
                                          f"[{slope.low * 1e3:.2f}, {slope.high * 1e3:.2f}]",
                       {**v.numbers, "fits": f.as_dict()}, v.seeds_needed)

    main = decide(fits)
    if wall is not None and wall.clock != fits.clock:
        other = decide(wall)
        v = unless_clocks_disagree(main, other, f"{main.reason}; but on wall time {other.verdict}: {other.reason} "
                                                "(the clocks disagree: a busy machine)")
        if v is not main:
            return v
        return Verdict(main.verdict, main.reason + f" (wall time: {other.verdict})",
                       {**main.numbers, "wall": other.as_dict()}, main.seeds_needed)
    return main


# ----------------------------------------------------------------------------------------- no-gain-past-25
def no_gain_past_25(score_more: Sequence[float], score_fewer: Sequence[float], control: Separation | None, *,
                    reference: Any = None, margin: float, missing: str = "",
                    steps: tuple[int, int] | None = None) -> Verdict:
    """'200 steps not meaningfully better than 25': the paired gain score@more - score@fewer stays under the
    comparable margin (one-sided: fewer steps being as good or better is fine). `steps` = (more, fewer), the
    runs' step counts, for the words."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    more, fewer = steps or ("more", "fewer")
    gain = paired(score_more, score_fewer, f"score@{more} - score@{fewer}")
    from ..convergence import gated_reference

    return gated_reference(reference, gated(control, at_most(gain, margin, f"gain of {more} over {fewer} steps"),
                                            missing))


#: no-gain-past-25's runs: the same sampler at the lesson's fewer steps and at more.
NO_GAIN_RUNS = ("dpm-solver-25", "dpm-solver-200")


def judge_no_gain(judge: Any, gens: Mapping[str, Any], runs: Mapping[str, RunSpec] | Any) -> Verdict:
    """no-gain-past-25 decided by one metric (sampler_claims.quality_claim.Judge) from its runs' generations by run
    name (NO_GAIN_RUNS): the wiring its test and its negative controls share."""
    fewer, more = NO_GAIN_RUNS
    if judge.control is None:
        return no_gain_past_25([], [], None, margin=judge.margin("comparable_margin"), missing=judge.missing)
    return no_gain_past_25(judge.scores(gens[more]), judge.scores(gens[fewer]), judge.control,
                           margin=judge.margin("comparable_margin"), reference=judge.reference,
                           steps=(runs[more].steps, runs[fewer].steps))


def knee_of(step_counts: Sequence[int], values: Sequence[float], eps: float = 0.02) -> int | None:
    """The SSIM knee, shown in the report (not a verdict): see ssim_knee."""
    return ssim_knee(step_counts, values, eps)

