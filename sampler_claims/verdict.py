"""The one decision layer: every rule returns a `Verdict`, and statistical rules decide from intervals.

Why one layer: a verdict a reader can trust must come from a rule stated before measuring and from
the uncertainty of the measurement, not from a point estimate that another set of seeds would move.
So:
- an *equivalence* claim ("comparable", "nearly indistinguishable") is confirmed only when the whole
  95% interval of the paired difference lies inside (-margin, +margin), refuted only when it lies
  wholly outside, and inconclusive otherwise, with the number of seeds that would decide it;
- a *bound* claim ("much worse", "at least", "at most") mirrors this on one side;
- a metric decides only after it separated a known-bad control from a known-good case in the same run
  (`Separation`), else the claim is inconclusive and says which metric failed its control;
- exact claims (identity, counts) are confirmed or refuted outright.

The pytest outcome is derived from the verdict in one place (`results.ClaimRecorder.decide`).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

# scipy.stats is imported where an interval is computed, not here: the registry imports this module, and the
# registry is read at start-up (options, --claims-list, usage errors), which must not wait the second
# scipy.stats takes to import.

CONFIRMED, REFUTED, INCONCLUSIVE, SKIPPED = "confirmed", "refuted", "inconclusive", "skipped"
VERDICTS = (CONFIRMED, REFUTED, INCONCLUSIVE, SKIPPED)
#: Every interval in the suite is a two-sided 95% interval.
CONFIDENCE = 0.95
#: The power behind every seed count the suite plans or suggests: run at that many seeds, a comparison is decided
#: four times in five if the difference and spread it was sized on are the true ones. A bare "half-width under
#: the distance" count is a coin toss: a rerun at the suggested --seeds would stay undecided half the time.
POWER = 0.80


def power_z() -> float:
    """z of the two-sided CONFIDENCE plus z of POWER (2.80 at 95% and 80%): n = (power_z() * sd / distance)^2."""
    z = NormalDist()
    return z.inv_cdf(0.5 + CONFIDENCE / 2) + z.inv_cdf(POWER)


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided 95% interval, the spread and count behind it."""

    mean: float
    low: float
    high: float
    n: int
    sd: float = 0.0
    what: str = ""
    #: "log" when the interval was built on the log scale and shown back on the linear one (a time ratio): its
    #: sd is then the spread of the logs, and a distance to an edge is measured between logs.
    scale: str = "linear"

    def as_dict(self) -> dict[str, Any]:
        return {"mean": _r(self.mean), "ci95": [_r(self.low), _r(self.high)], "n": self.n, "sd": _r(self.sd),
                **({"what": self.what} if self.what else {}), **({"sd_of": "log"} if self.scale == "log" else {})}

    def distance(self, value: float) -> float:
        """How far `value` lies from the mean, on the scale the sd is on."""
        if self.scale == "log":
            return abs(math.log(self.mean) - math.log(value))
        return abs(self.mean - value)

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"


def _r(x: float) -> float:
    return round(float(x), 5) if math.isfinite(x) else x


def t_interval(values: Sequence[float], what: str = "") -> Interval:
    """Student-t 95% interval of a mean. n=1 gives an unbounded interval: one value decides nothing."""
    x = np.asarray(list(values), dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise ValueError("an interval of no values")
    m = float(x.mean())
    if n == 1:
        return Interval(m, -math.inf, math.inf, 1, math.nan, what)
    sd = float(x.std(ddof=1))
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(m, m - half, m + half, n, sd, what)


def paired(a: Sequence[float], b: Sequence[float], what: str = "") -> Interval:
    """Interval of the mean of a_k - b_k: the same seed k (same z_T and prompt) on both sides."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    return t_interval([float(x) - float(y) for x, y in zip(a, b)], what)


def wilson(successes: int, n: int, what: str = "") -> Interval:
    """Wilson 95% interval of a proportion (e.g. the share of seeds whose trajectory is coarse-first)."""
    if n == 0:
        raise ValueError("a proportion of no trials")
    from scipy import stats

    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    p = successes / n
    return Interval(p, float(ci.low), float(ci.high), n, math.sqrt(p * (1 - p)), what)


def rounds_needed(sd: float, half_width: float, most: int = 100, power: float | None = None) -> int:
    """The fewest rounds whose 95% t-interval of a mean is at most `half_width` wide on each side, at a
    per-round standard deviation `sd`: the smallest n >= 2 with t(0.975, n - 1) * sd / sqrt(n) <= half_width.
    With `power`, the rounds that decide a mean `half_width` from an edge that often: t(power, n - 1) is added
    to the quantile. Exact at the few rounds timing runs, where the normal approximation of `seeds_needed`
    would be far off."""
    from scipy import stats

    for n in range(2, most + 1):
        q = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) + (stats.t.ppf(power, n - 1) if power else 0.0)
        if q * sd / math.sqrt(n) <= half_width:
            return n
    raise ValueError(f"no number of rounds up to {most} gets sd {sd:g} under +-{half_width:g}")


def seeds_needed(iv: Interval, distance: float) -> int | None:
    """Seeds that would decide the comparison with POWER at the observed mean and spread (normal approximation,
    plus 2 for the t quantile); None when no number of seeds can decide (the mean sits on the margin, or there is
    no spread to extrapolate from)."""
    if not math.isfinite(iv.sd) or iv.sd <= 0 or distance <= 0:
        return None
    return int(math.ceil((power_z() * iv.sd / distance) ** 2)) + 2


@dataclass(frozen=True)
class Statement:
    """One measured statement a verdict was decided from, as fields: what was measured (`label`), its estimate,
    interval and count, the limit it was held against and how (`relation`), and what that gave. The reason, the
    plain sentence, the report and the errata are written from these fields; no text is parsed back."""

    label: str
    verdict: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    #: The limit: a margin (relation "inside ±limit"), a bound ("at least", "at most"), 0 ("above"; "control above"
    #: or "control below" for a metric's control), a [low, high] range ("within"), or none ("exact").
    limit: float | tuple[float, float] | None = None
    relation: str = ""
    scale: str = "linear"

    @property
    def decided(self) -> bool:
        return self.verdict in (CONFIRMED, REFUTED)

    @classmethod
    def of(cls, label: str, verdict: str, iv: "Interval | None" = None, limit: Any = None,
           relation: str = "") -> "Statement":
        if iv is None:
            return cls(label, verdict, limit=limit, relation=relation)
        return cls(label, verdict, iv.mean, iv.low, iv.high, iv.n, limit, relation, iv.scale)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "verdict": self.verdict, "decided": self.decided,
                               "relation": self.relation}
        if self.estimate is not None:
            out.update(estimate=_r(self.estimate), ci95=[_r(self.low), _r(self.high)], n=self.n)  # type: ignore[arg-type]
        if self.limit is not None:
            out["limit"] = list(self.limit) if isinstance(self.limit, tuple) else self.limit
        if self.scale != "linear":
            out["scale"] = self.scale
        return out


@dataclass(frozen=True)
class Verdict:
    """What a rule decided, why, and the numbers it decided on."""

    verdict: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    #: For an inconclusive statistical verdict: seeds that would decide it, with POWER, at the observed spread.
    seeds_needed: int | None = None
    #: The statements it was decided from (one for a simple rule, every part's for all_of).
    statements: tuple[Statement, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def decided(self) -> bool:
        return self.verdict in (CONFIRMED, REFUTED)

    def as_dict(self) -> dict[str, Any]:
        out = {"verdict": self.verdict, "reason": self.reason, "numbers": self.numbers}
        if self.seeds_needed is not None:
            out["seeds_needed"] = self.seeds_needed
        if self.statements:
            out["statements"] = [st.as_dict() for st in self.statements]
        return out

    def on(self, setting: str) -> "Verdict":
        """The same verdict with the setting it holds for (device, dtype, ...) after its reason."""
        return Verdict(self.verdict, f"{self.reason} ({setting})", self.numbers, self.seeds_needed, self.statements)

    def named(self, name: str) -> "Verdict":
        """The same verdict with its reason prefixed by the statement it decides."""
        return Verdict(self.verdict, f"{name}: {self.reason}", self.numbers, self.seeds_needed,
                       tuple(replace(st, label=f"{name}: {st.label}") for st in self.statements))


def exact(holds: bool, why: str, **numbers: Any) -> Verdict:
    """An exact claim (identity, a count): the measurement is the whole population, no interval."""
    verdict = CONFIRMED if holds else REFUTED
    return Verdict(verdict, why, numbers, statements=(Statement.of(why, verdict, relation="exact"),))


def inconclusive(why: str, seeds: int | None = None, **numbers: Any) -> Verdict:
    return Verdict(INCONCLUSIVE, why, numbers, seeds)


def equivalent(iv: Interval, margin: float, what: str) -> Verdict:
    """Equivalence: |difference| < margin. Confirmed when the interval lies inside (-margin, margin),
    refuted when it lies wholly outside, else inconclusive with the seeds that would decide it."""
    text = f"{what} {iv} against the margin ±{margin:g}"
    nums = {"difference": iv.as_dict(), "margin": margin}
    st = functools.partial(Statement.of, what, iv=iv, limit=margin, relation="inside ±limit")
    if -margin < iv.low and iv.high < margin:
        return Verdict(CONFIRMED, f"{text}: the whole interval lies inside the margin", nums, None,
                       (st(verdict=CONFIRMED),))
    if iv.low >= margin or iv.high <= -margin:
        return Verdict(REFUTED, f"{text}: the whole interval lies outside the margin", nums, None,
                       (st(verdict=REFUTED),))
    need = seeds_needed(iv, abs(margin - abs(iv.mean)))
    return Verdict(INCONCLUSIVE, f"{text}: the interval straddles the margin" + _need_text(iv, need), nums, need,
                   (st(verdict=INCONCLUSIVE),))


def at_least(iv: Interval, bound: float, what: str) -> Verdict:
    """One-sided: the quantity is at least `bound`. Confirmed when the interval lies at or above it,
    refuted when it lies wholly below, else inconclusive."""
    text = f"{what} {iv} against 'at least {bound:g}'"
    nums = {"estimate": iv.as_dict(), "bound": bound, "side": "at least"}
    st = functools.partial(Statement.of, what, iv=iv, limit=bound, relation="at least")
    if iv.low >= bound:
        return Verdict(CONFIRMED, f"{text}: the whole interval is at or above it", nums,
                       None, (st(verdict=CONFIRMED),))
    if iv.high < bound:
        return Verdict(REFUTED, f"{text}: the whole interval is below it", nums, None, (st(verdict=REFUTED),))
    need = seeds_needed(iv, abs(iv.mean - bound))
    return Verdict(INCONCLUSIVE, f"{text}: the interval straddles it" + _need_text(iv, need), nums, need,
                   (st(verdict=INCONCLUSIVE),))


def at_most(iv: Interval, bound: float, what: str) -> Verdict:
    """One-sided: the quantity is at most `bound` (the mirror of at_least)."""
    text = f"{what} {iv} against 'at most {bound:g}'"
    nums = {"estimate": iv.as_dict(), "bound": bound, "side": "at most"}
    st = functools.partial(Statement.of, what, iv=iv, limit=bound, relation="at most")
    if iv.high <= bound:
        return Verdict(CONFIRMED, f"{text}: the whole interval is at or below it", nums,
                       None, (st(verdict=CONFIRMED),))
    if iv.low > bound:
        return Verdict(REFUTED, f"{text}: the whole interval is above it", nums, None, (st(verdict=REFUTED),))
    need = seeds_needed(iv, abs(iv.mean - bound))
    return Verdict(INCONCLUSIVE, f"{text}: the interval straddles it" + _need_text(iv, need), nums, need,
                   (st(verdict=INCONCLUSIVE),))


def improves(iv: Interval, what: str) -> Verdict:
    """A gain claim ("helps", "stabilizes"): confirmed when the interval of the paired gain lies above 0,
    refuted when it lies at or below 0 (no gain at all also refutes), else inconclusive."""
    text = f"{what} {iv} against 'above 0'"
    nums = {"gain": iv.as_dict()}
    st = functools.partial(Statement.of, what, iv=iv, limit=0.0, relation="above")
    if iv.low > 0:
        return Verdict(CONFIRMED, f"{text}: the whole interval is above 0", nums, None, (st(verdict=CONFIRMED),))
    if iv.high <= 0:
        return Verdict(REFUTED, f"{text}: the whole interval is at or below 0", nums, None, (st(verdict=REFUTED),))
    need = seeds_needed(iv, abs(iv.mean))
    return Verdict(INCONCLUSIVE, f"{text}: the interval straddles 0" + _need_text(iv, need), nums, need,
                   (st(verdict=INCONCLUSIVE),))


def within(iv: Interval, low: float, high: float, what: str) -> Verdict:
    """Two-sided range over timing rounds: the quantity lies in [low, high] (e.g. 'about 20x' as a factor band).
    Undecided, it names the rounds that would decide it with POWER: `rounds_needed` at the observed spread, with the
    distance to the nearer edge taken on the interval's own scale (the logs, for a time ratio)."""
    text = f"{what} {iv} against [{low:g}, {high:g}]"
    nums = {"estimate": iv.as_dict(), "range": [low, high]}
    st = functools.partial(Statement.of, what, iv=iv, limit=(low, high), relation="within")
    if low <= iv.low and iv.high <= high:
        return Verdict(CONFIRMED, f"{text}: the whole interval lies inside", nums, None, (st(verdict=CONFIRMED),))
    if iv.high < low or iv.low > high:
        return Verdict(REFUTED, f"{text}: the whole interval lies outside", nums, None, (st(verdict=REFUTED),))
    distance = min(iv.distance(low), iv.distance(high))
    try:
        need: int | None = (rounds_needed(iv.sd, distance, power=POWER)
                            if math.isfinite(iv.sd) and iv.sd > 0 < distance else None)
    except ValueError:
        need = None
    return Verdict(INCONCLUSIVE, f"{text}: the interval straddles an edge" + _need_text(iv, need, "rounds"),
                   nums, need, (st(verdict=INCONCLUSIVE),))


def _need_text(iv: Interval, need: int | None, unit: str = "seeds") -> str:
    if need is None and (iv.n < 2 or not math.isfinite(iv.sd)):
        # One value has no spread: nothing to size a run from, and nothing to do with the margin.
        option = "--timing-rounds" if unit == "rounds" else "--seeds"
        return (f"; one {unit[:-1]} gives no spread to size a run from: run with more {unit} ({option} at its "
                "default is sized by power)")
    if need is None and iv.sd <= 0:
        return f"; the {unit} agree exactly, so more of them cannot move the interval off the margin"
    if need is None:
        return "; no number of " + unit + " decides it at this spread (the mean sits on the margin)"
    if need <= iv.n:
        return f"; at this spread about {need} {unit} would decide it (the spread was unlucky at n={iv.n})"
    return (f"; about {need} {unit} would decide it at the observed mean and spread, {POWER:.0%} of the time "
            f"(n={iv.n} now)")


def all_of(parts: Iterable[Verdict], what: str = "") -> Verdict:
    """A claim made of several statements that must all hold: refuted if any is refuted, confirmed if
    all are confirmed, else inconclusive (with the most seeds any undecided statement needs)."""
    parts = list(parts)
    if not parts:
        raise ValueError("all_of needs at least one statement")
    lead = f"{what}: " if what else ""
    refuted = [p for p in parts if p.verdict == REFUTED]
    numbers = {f"part{i}": p.as_dict() for i, p in enumerate(parts)}
    statements = tuple(st for p in parts for st in (p.statements or (Statement.of(p.reason, p.verdict),)))
    if refuted:
        return Verdict(REFUTED, lead + "; ".join(p.reason for p in refuted)
                       + _others(parts, refuted), numbers, None, statements)
    undecided = [p for p in parts if p.verdict != CONFIRMED]
    if undecided:
        need = [p.seeds_needed for p in undecided if p.seeds_needed is not None]
        return Verdict(INCONCLUSIVE, lead + "; ".join(p.reason for p in undecided) + _others(parts, undecided),
                       numbers, max(need) if need else None, statements)
    return Verdict(CONFIRMED, lead + "; ".join(p.reason for p in parts), numbers, None, statements)


def unless_clocks_disagree(main: Verdict, wall: Verdict, why: str) -> Verdict:
    """A timing verdict on the deciding clock, unless wall time decides the opposite way: then inconclusive,
    saying `why`. A busy machine can make a timing claim inconclusive, never flip it."""
    if main.decided and wall.decided and main.verdict != wall.verdict:
        return Verdict(INCONCLUSIVE, why, main.numbers, None, main.statements + wall.statements)
    return main


def _others(parts: list[Verdict], shown: list[Verdict]) -> str:
    rest = [p for p in parts if p not in shown]
    return (" (also: " + "; ".join(f"{p.verdict}: {p.reason}" for p in rest) + ")") if rest else ""


@dataclass(frozen=True)
class Separation:
    """Did a metric tell a known-good case from a known-bad control, paired by seed, in this run?

    `higher_is_better` says which way the metric points; separation needs the whole interval of
    (good - bad), oriented that way, above zero.
    """

    metric: str
    good: str
    bad: str
    difference: Interval
    higher_is_better: bool = True

    @property
    def separates(self) -> bool:
        d = self.difference
        return d.low > 0 if self.higher_is_better else d.high < 0

    def __str__(self) -> str:
        word = "separates" if self.separates else "does NOT separate"
        sign = "above" if self.higher_is_better else "below"
        return (f"{self.metric} {word} {self.good} from {self.bad} ({self.good} - {self.bad} = {self.difference}, "
                f"needs the interval {sign} 0)")

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "good": self.good, "bad": self.bad, "difference": self.difference.as_dict(),
                "higher_is_better": self.higher_is_better, "separates": self.separates}


def separation(metric: str, good: Sequence[float], bad: Sequence[float], good_label: str, bad_label: str,
               *, higher_is_better: bool = True) -> Separation:
    return Separation(metric, good_label, bad_label, paired(good, bad, f"{good_label} - {bad_label}"),
                      higher_is_better)


def gated(check: Separation | None, verdict: Verdict, missing: str = "") -> Verdict:
    """The verdict only if its metric passed its control in this run; otherwise inconclusive, naming why."""
    if check is None:
        return inconclusive(missing or "no validated metric on this model", metric_check=None)
    control = Statement.of(f"{check.metric} control: {check.good} - {check.bad}",
                           CONFIRMED if check.separates else INCONCLUSIVE, check.difference, 0.0,
                           "control above" if check.higher_is_better else "control below")
    if not check.separates:
        v = inconclusive(f"the metric failed its control, so it cannot decide: {check}", metric_check=check.as_dict())
        return replace(v, statements=(control,))
    nums = dict(verdict.numbers)
    nums["metric_check"] = check.as_dict()
    return Verdict(verdict.verdict, f"{verdict.reason} [metric check: {check}]", nums, verdict.seeds_needed,
                   verdict.statements + (control,))
