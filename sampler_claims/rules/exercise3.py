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
from ..schedulers import DPM  # noqa: F401 - the sampler of Exercise 3, re-exported for its claims
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
def sweet_spot(scores: Mapping[int, Sequence[float]] | None, ssim_to_20: Mapping[int, Sequence[float]],
               control: Separation | None, t: Any, missing: str = "", *, margin: Any = None,
               reference: Any = None) -> Verdict:
    """The lesson's four statements of Exercise 3, each decided by its interval; all must hold.

    scores: checker score per seed for each step count (the top one is the converged reference);
    ssim_to_20: per seed, SSIM of the 50..200-step images to the 20-step image. The quality statements
    are gated by the run's quality control; the similarity statement needs no checker.
    margin: maps a checker-scale margin to the metric's scale (Quality.margin; identity by default);
    reference: the convergence ReferenceCheck of the CLIP path: statements against the reference decide
    only if it is converged (convergence.gated_reference).
    """
    from ..convergence import gated_reference

    m = margin or (lambda x: x)
    grid = sorted(ssim_to_20)
    parts = []
    if scores is None:
        parts.append(inconclusive(missing or "no checker on this model: 5/10/20-step quality statements undecided"))
    else:
        ref = max(scores)

        def gap(steps: int) -> Interval:
            return paired(scores[ref], scores[steps], f"score@{ref} - score@{steps}")

        quality = all_of([
            at_least(gap(5), m(t("garbled_margin")), f"5 steps garbled: score@{ref} - score@5").named("5 garbled"),
            at_most(gap(10), m(t("recognizable_margin")), f"10 steps recognizable: score@{ref} - score@10")
            .named("10 recognizable"),
            at_most(gap(20), m(t("good_margin")), f"20 steps good: score@{ref} - score@20").named("20 good"),
        ])
        parts.append(gated_reference(reference, gated(control, quality, missing)))
    similar = all_of([at_least(t_interval(ssim_to_20[s]), t("indistinct_min_ssim"), f"SSIM({s} steps, 20 steps)")
                      for s in grid]).named("50-200 nearly indistinguishable from 20")
    parts.append(similar)
    return all_of(parts, "sweet spot")


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
def no_gain_past_25(score_200: Sequence[float], score_25: Sequence[float], control: Separation | None, *,
                    reference: Any = None,
                    margin: float, missing: str = "") -> Verdict:
    """'200 steps not meaningfully better than 25': the paired gain score@200 - score@25 stays under the
    comparable margin (one-sided: 25 steps being as good or better is fine)."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    gain = paired(score_200, score_25, "score@200 - score@25")
    from ..convergence import gated_reference

    return gated_reference(reference, gated(control, at_most(gain, margin, "gain of 200 over 25 steps"), missing))


def knee_of(step_counts: Sequence[int], values: Sequence[float], eps: float = 0.02) -> int | None:
    """The SSIM knee, shown in the report (not a verdict): see ssim_knee."""
    return ssim_knee(step_counts, values, eps)

