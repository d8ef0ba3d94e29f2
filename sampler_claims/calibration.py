"""What a run's generations cost here, in seconds, before and while they run, and in units that compare across
machines.

- `calibrate`: seconds per U-Net evaluation and per image at the shapes the run uses: the --seeds roster as the
  engine runs it (on the CPU in one lane per generation thread, or in --max-batch chunks) and one seed with
  guidance on one thread (the timing rounds and the single-seed claims). Each rate is the difference of
  DPM-Solver at 1 step and at enough steps to last a measurable while, repeated and interleaved (the median of
  the repeats), after a warm-up call of every shape (with --compile the warm-up pays the compilation, and is
  measured as such). A first calibration took the difference of one 1-step and one 3-step call at 4 seeds
  (0.3-0.7 s): its estimate moved 2.6x between two runs on one machine, and four seeds in one call is a shape the
  run never used.
- `RunClock`: the run's time left, corrected as generations finish: the evaluations still planned at the rate
  measured so far in this run. Evaluations are weighted by their calibrated cost (one seed on one thread costs
  more per evaluation than a lane of 32), so the timing rounds and the roster generations each count for what
  they take; with one shape it is exactly remaining evaluations / (evaluations done / seconds spent). It never
  says 0 s while the plan has evaluations left, and says so when the run has done more than the plan counted.
- `Cost`: the run's wall time in units of one DDPM@1000 image with guidance on one thread (the timing rounds
  time it in every round; else the calibration's one-seed rate estimates it): the unit of a machine's speed at
  the work this suite does, so that "51 units" means the same on a laptop and on a server.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .lanes import lane_chunks, waves

#: Seconds the calibration aims to last on a model whose one-step generations are short (the embedded one):
#: long enough for a median of repeats to be steady, short beside the run. A slow model (SD 1.5 on a CPU)
#: shrinks to one repeat of the fewest steps and seeds instead (see `calibrate`). With 3 repeats in 6 s the
#: roster rate's repeats spread 21-47% and fresh-clone runs on one machine calibrated 1.48-1.85 ms per evaluation:
#: now 5 repeats in about 10 s per shape, each pair at most a fifth of it (twice that where they spread, SPREAD_MORE).
TARGET_S = 10.0
#: Repeats of each (1 step, N steps) pair, interleaved.
REPEATS = 5
#: A shape whose first REPEATS pairs spread more than this (max - min over the median) gets as many pairs again,
#: and its rate is the median of all: a calibration that falls in a slow minute of a shared machine. Of five
#: fresh-clone runs of one version on one machine, the one whose plan missed by 20% had spread 24% (roster) and
#: 19% (one seed); the others 6-12% and 1-14%.
SPREAD_MORE = 0.15
#: How far the N-step call's steps outweigh the call's fixed cost (text encoding, decoding). At 3 to 1 the
#: roster's pairs lasted about a second and its rate moved 1.48-1.85 ms per evaluation between fresh-clone runs on
#: one machine (its repeats spread up to 47%), where the run's own long generations held 1.56.
STEPS_OVER_FIXED = 10

#: What a run spends beyond the U-Net evaluations and images the calibration prices, as a factor on them: the
#: tests' own work (scoring, SSIM, captured intermediates, the engine's bookkeeping per generation, the timing
#: harness), less what the calibration's short calls overprice (a lane of 16 seeds costs more per sample than the
#: lanes of 32-64 most evaluations run in). Measured, not fitted to a verdict: on the embedded model on a 2-core CPU,
#: four fresh-clone default runs with the allocator setting (sampler_claims.allocator) took 1.12x, 0.96x, 1.26x and
#: 1.09x the time their calibrations priced the generations they made at (the runs took 615-734 s; the 0.96 is the
#: run whose calibration fell in a slow minute, the 1.26 the run whose machine slowed after it); the mean is 1.11.
#: Before the allocator setting, runs started slow and four took 1.01-1.31x. Where it was not measured (SD 1.5, a
#: GPU) the factor is 1 and the plan says the tests' own work is not counted.
OVERHEAD = {("tiny", "cpu"): 1.11}


def overhead_of(model_kind: str, device: str) -> float:
    """The factor on the calibrated generation time where it was measured for this model and device, else 1."""
    return OVERHEAD.get((model_kind, "cuda" if device.startswith("cuda") else device), 1.0)
#: The unit of cost: DDPM at 1000 steps, one seed, with guidance (2 evaluations per step), on one thread.
UNIT_EVALUATIONS = 2000
UNIT_TEXT = "one DDPM@1000 image with guidance on one thread"
#: The timed configuration whose per-round time is the unit (sampler_claims.timing.timed_name).
UNIT_TIMED = "ddpm@1000"


#: Seconds of one torch.compile graph of the U-Net on a 2-core CPU, measured (sampler_claims' compile_check
#: script, inductor, torch 2.13): the embedded model 37-73 s beside other work, 113-160 s on a heavily shared
#: machine (load 5-8 on 2 cores); SD 1.5's architecture (sd15-random at 64x64) about 700 s for one graph, on the
#: same busy machine (a 2-step eager and compiled generation took 746 s). A run compiles about three graphs (one
#: seed with guidance, the roster's batch made dynamic, one seed without guidance); inductor's on-disk cache makes
#: a second run's compilation shorter.
COMPILE_S_PER_GRAPH = {("tiny", "cpu"): 60.0, ("sd15", "cpu"): 700.0, ("sd15-random", "cpu"): 700.0}
COMPILE_GRAPHS = 3


def compile_estimate(model_kind: str, device: str) -> float | None:
    """The compilation a --compile run pays before its first generation, where it was measured (else None)."""
    per = COMPILE_S_PER_GRAPH.get((model_kind, "cuda" if device.startswith("cuda") else device))
    return None if per is None else per * COMPILE_GRAPHS


@dataclass
class Rate:
    """Seconds per U-Net evaluation and per image (text encoding, decoding, the call's fixed cost), at `batch`
    seeds per generation; `spread` is the relative spread (max - min) / median of the repeats' per-evaluation
    estimates: how steady the measurement was."""

    per_eval: float
    per_image: float
    batch: int
    repeats: int = 1
    spread: float = 0.0
    steps: int = 3

    def seconds(self, evaluations: float, images: float) -> float:
        return evaluations * self.per_eval + images * self.per_image


@dataclass
class Calibration:
    device: str
    dtype: str
    size: int
    roster: Rate
    single: Rate
    #: Wall seconds the whole calibration took, warm-ups (and with --compile the compilation) included.
    seconds: float
    #: Seconds of the warm-up calls beyond their steady time: the compilation with --compile, else small.
    compile_s: float = 0.0
    compiled: bool = False
    channels_last: bool = False
    #: Generation threads (CPU lanes) the roster rate was measured with.
    lanes: int = 1
    #: --max-batch: at most this many seeds per pipeline call (the engine's chunks), else 0.
    max_batch: int = 0
    #: The factor on the priced generations for the tests' own work (OVERHEAD), 1 where not measured.
    overhead: float = 1.0

    def rate(self, images: int) -> Rate:
        return self.single if images == 1 else self.roster

    def per_call(self) -> tuple[float, float] | None:
        """(seconds per pipeline call, seconds per sample in the call) of one lane: a call costs a fixed part (the
        scheduler's step, the pipeline's loop, the U-Net's per-call work) plus a part per sample in its batch. The
        two rates give two points: one seed with guidance (2 samples per call, one thread) and the roster (each
        lane's share of the seeds, twice with guidance, the lanes at once). None when they do not (one lane of one
        seed), and the per-evaluation rates are used as they are."""
        n, lanes = self.roster.batch, max(1, self.lanes)
        chunks = lane_chunks(n, lanes, self.max_batch)
        share = max(count for _, count in chunks)
        if share <= 1:
            return None
        per_call_roster = self.roster.per_eval * 2 * n / waves(len(chunks), lanes)  # every seed's step, guided
        per_call_single = self.single.per_eval * 2
        beta = (per_call_roster - per_call_single) / (2 * share - 2)
        if beta <= 0:
            return None
        return max(per_call_single - 2 * beta, 0.0), beta

    def generation_seconds(self, images: int, calls: float, guided: bool = True, times: int = 1) -> float:
        """Seconds of `times` generations of `images` seeds, `calls` U-Net calls each: in the engine's chunks (one
        share per lane on the CPU, --max-batch chunks, one call of every seed on a GPU), each call at the per-call
        model (`per_call`), plus the per-image cost (text, decoding), times the overhead factor. Small requests (a
        few seeds per lane, guidance 1 with half the batch) cost more per evaluation than the roster: the model
        prices them so; a per-evaluation rate measured at the roster would not."""
        g = 2 if guided else 1
        model = self.per_call()
        if model is None:
            rate = self.rate(images)
            return rate.seconds(images * calls * g * times, images * times) * self.overhead
        alpha, beta = model
        lanes = max(1, self.lanes) if images > 1 else 1
        chunks = lane_chunks(images, lanes, self.max_batch)  # as the engine splits them (sampler_claims.lanes)
        share = max(count for _, count in chunks)
        seconds = (waves(len(chunks), lanes) * calls * (alpha + beta * share * g)
                   + self.rate(images).per_image * images)
        return seconds * times * self.overhead

    @property
    def unit_s(self) -> float:
        """The calibration's estimate of one cost unit (DDPM@1000, one seed, guidance, one thread), priced as the
        plan prices a generation (the overhead factor included: the timing rounds' DDPM@1000 pays the engine's
        per-step work too)."""
        return self.generation_seconds(1, UNIT_EVALUATIONS // 2)

    def describe(self) -> str:
        r, s = self.roster, self.single
        lanes = f" in {self.lanes} lanes" if self.lanes > 1 else ""
        extra = ""
        if self.compiled:
            extra = f"; torch.compile on: {self.compile_s:.0f} s of compilation, paid in the calibration"
        if self.channels_last:
            extra += "; channels_last U-Net"
        model = self.per_call()
        if model is not None:
            extra += (f"; per call {model[0] * 1e3:.2f} ms + {model[1] * 1e3:.3f} ms per sample in its batch, per "
                      "lane")
        extra += (f"; x{self.overhead:.2f} for the tests' own work (measured on this model and device)"
                  if self.overhead != 1.0 else "; the tests' own work beyond generating is not counted (not "
                  "measured for this model and device)")
        def how(x: Rate) -> str:
            return (f"1 against {x.steps} steps, " + ("one pair" if x.repeats == 1 else
                                                      f"median of {x.repeats} pairs, spread {x.spread:.0%}"))

        return (f"calibrated on {self.device} {self.dtype} {self.size}px in {self.seconds:.1f} s: "
                f"{r.per_eval * 1e3:.3f} ms per U-Net evaluation at {r.batch} seeds per generation{lanes} "
                f"({how(r)}), {s.per_eval * 1e3:.3f} ms at one seed on one thread ({how(s)}); "
                f"{r.per_image * 1e3:.1f} ms per image (text, decoding){extra}")

    def as_dict(self) -> dict[str, Any]:
        def rate(r: Rate) -> dict[str, Any]:
            return {"ms_per_eval": round(r.per_eval * 1e3, 4), "ms_per_image": round(r.per_image * 1e3, 3),
                    "seeds": r.batch, "repeats": r.repeats, "spread": round(r.spread, 3), "steps": r.steps}

        return {"device": self.device, "dtype": self.dtype, "size": self.size, "seconds": round(self.seconds, 2),
                "roster": rate(self.roster), "single": rate(self.single), "lanes": self.lanes,
                "compiled": self.compiled, "compile_s": round(self.compile_s, 1),
                "channels_last": self.channels_last, "unit_s_estimated": round(self.unit_s, 3),
                "max_batch": self.max_batch, "overhead": self.overhead,
                "per_call_ms": None if self.per_call() is None else [round(x * 1e3, 4) for x in self.per_call()]}


def _pair_rate(timed: Callable[[int], tuple[float, int]], n: int, hi: int, repeats: int,
               more: bool = False) -> Rate:
    """Per-evaluation and per-image seconds at `n` seeds from `repeats` interleaved pairs of a 1-step and a
    `hi`-step generation: the median of the pairs' differences per evaluation. With `more`, pairs that spread
    more than SPREAD_MORE get `repeats` pairs again, and the median is over all of them."""
    per_evals: list[float] = []
    lows: list[float] = []
    e_lo = 1

    def pairs(k: int) -> None:
        nonlocal e_lo
        for _ in range(k):
            t_lo, e_lo = timed(1)
            t_hi, e_hi = timed(hi)
            per_evals.append(max(t_hi - t_lo, 1e-9) / max(e_hi - e_lo, 1))
            lows.append(t_lo)

    def spread_of() -> float:
        mid = statistics.median(per_evals)
        return (max(per_evals) - min(per_evals)) / mid if mid > 0 else 0.0

    pairs(repeats)
    if more and repeats > 1 and spread_of() > SPREAD_MORE:
        pairs(repeats)
    per_eval = statistics.median(per_evals)
    per_image = max(statistics.median(lows) - per_eval * e_lo, 0.0) / n
    return Rate(per_eval, per_image, n, len(per_evals), spread_of(), hi)


def calibrate(engine: Any, seeds: int, prompt: str = "a red circle", *, target_s: float = TARGET_S,
              repeats: int = REPEATS, clock: Callable[[], float] = time.perf_counter,
              overhead: float = 1.0) -> Calibration:
    """Calibrate on the run's engine at the run's shapes: `seeds` (the --seeds roster) as the engine splits them,
    and one seed with guidance (uncached; the engine runs every CPU pipeline call on one thread).

    First a warm-up of each shape: a 1-step call twice (the first pays allocator growth, kernel selection and,
    with --compile, the compilation of that shape; the excess over the second is `compile_s`), and with
    --compile also one seed without guidance (a batch of one is compiled apart). Then per shape `repeats`
    interleaved pairs of DPM-Solver at 1 step and at N steps: N makes the steps outweigh the call's fixed cost
    (text encoding, decoding) ten to one (a 2-step call first sizes it; the N-step call runs once unmeasured first) while one pair lasts at most
    `target_s`; `repeats` pairs where one lasts up to half of `target_s`, else as many as fit in it (and `repeats` more
    where the first spread more than SPREAD_MORE). A model slow enough that one 1-step call of the roster takes longer than `target_s` is measured at fewer
    seeds per lane (down to one), at 2 steps, with one repeat: SD 1.5 on a CPU stays at a few calls."""
    from .engine import Request
    from .schedulers import DPM

    start = clock()

    def timed(steps: int, n: int, guidance: float = 7.5) -> tuple[float, int]:
        t = clock()
        g = engine.generate(Request(DPM, steps, tuple(range(n)), prompt, guidance=guidance), cached=False)
        return clock() - t, sum(g.unet_batch_sizes)

    import torch

    lanes = torch.get_num_threads() if engine.device == "cpu" and not engine.max_batch else 1
    progress, engine.progress = engine.progress, None  # the calibration is not a claim's generation
    try:
        warm = 0.0
        first, _ = timed(1, 1)
        steady_one, e_one = timed(1, 1)
        warm += max(first - steady_one, 0.0)
        if getattr(engine, "compiled", False):
            first, _ = timed(1, 1, guidance=1.0)
            again, _ = timed(1, 1, guidance=1.0)
            warm += max(first - again, 0.0)
        n = max(1, seeds)
        first, _ = timed(1, n)
        steady_n, e_n = timed(1, n)
        warm += max(first - steady_n, 0.0)
        if steady_n > target_s and n > lanes:  # a slow model: fewer seeds per lane, as few calls as possible
            per_lane = max(1, int(n / lanes * target_s / 4 / steady_n))
            n = min(n, per_lane * lanes)
            steady_n, e_n = timed(1, n)
        rates = []
        for k, t1 in ((n, steady_n), (1, steady_one)):
            t2, _ = timed(2, k)  # sizes the pairs: one step's time beyond the call's fixed cost
            per_step = max(t2 - t1, t1 / 20, 1e-9)
            # enough steps that the steps outweigh the fixed cost (text, decoding) STEPS_OVER_FIXED to 1, within
            # the budget
            hi = int(max(min(1 + STEPS_OVER_FIXED * t1 / per_step, 1 + (target_s / repeats - 2 * t1) / per_step,
                             50), 2))
            if hi > 2:
                timed(hi, k)  # the long call once, unmeasured: the allocator grows to its size before the pairs
            pair = 2 * t1 + (hi - 1) * per_step
            reps = repeats if pair <= target_s / 2 else max(1, min(repeats, int(target_s / pair)))
            rates.append(_pair_rate(lambda steps, k=k: timed(steps, k), k, hi, reps, more=reps == repeats))
    finally:
        engine.progress = progress
    return Calibration(engine.device, str(engine.pipe.unet.dtype).removeprefix("torch."), engine.size,
                       rates[0], rates[1], clock() - start, compile_s=warm if getattr(engine, "compiled", False)
                       else 0.0, compiled=bool(getattr(engine, "compiled", False)),
                       channels_last=bool(getattr(engine, "channels_last", False)),
                       lanes=min(lanes, n), max_batch=int(getattr(engine, "max_batch", 0) or 0),
                       overhead=overhead)


def planned_seconds(calibration: Calibration, images: int, evaluations: float, times: int = 1,
                    guided: bool = True) -> float:
    """The seconds of a planned generation of `images` seeds (run `times` times) and its evaluations (all of
    them, over the `times`)."""
    calls = evaluations / (images * times * (2 if guided else 1) or 1)  # times may be a fraction (with_partial)
    return calibration.generation_seconds(images, calls, guided, times)


# ------------------------------------------------------------------------------------ the time left
@dataclass
class Tally:
    """U-Net evaluations and images the engine has generated (cache hits excluded), by shape: seeds per generation
    and whether guided (two samples per call). The engine adds every generation it runs; the run's clock reads the
    difference, each shape priced by the calibration's per-call model."""

    #: (images, guided) -> [evaluations, generations]
    shapes: dict[tuple[int, bool], list[int]] = field(default_factory=dict)

    def add(self, images: int, evaluations: int, guided: bool = True) -> None:
        entry = self.shapes.setdefault((images, guided), [0, 0])
        entry[0] += evaluations
        entry[1] += 1

    @property
    def evaluations(self) -> int:
        return sum(e for e, _ in self.shapes.values())

    @property
    def single_evals(self) -> int:
        return sum(e for (n, _), (e, _) in self.shapes.items() if n == 1)

    @property
    def roster_evals(self) -> int:
        return sum(e for (n, _), (e, _) in self.shapes.items() if n != 1)

    @property
    def single_images(self) -> int:
        return sum(c for (n, _), (_, c) in self.shapes.items() if n == 1)

    @property
    def roster_images(self) -> int:
        return sum(n * c for (n, _), (_, c) in self.shapes.items() if n != 1)

    def copy(self) -> Tally:
        return Tally({k: list(v) for k, v in self.shapes.items()})

    def with_partial(self, images: int, guided: bool, calls: int, fraction: float) -> Tally:
        """A copy with `fraction` of one more generation (a generation in progress) counted as done: its share of
        the evaluations and of one generation, so the calibration prices it at its share of the whole."""
        out = self.copy()
        entry = out.shapes.setdefault((images, guided), [0, 0])
        entry[0] += fraction * images * calls * (2 if guided else 1)
        entry[1] += fraction
        return out

    def since(self, base: Tally) -> Tally:
        out = Tally()
        for k, (e, c) in self.shapes.items():
            be, bc = base.shapes.get(k, (0, 0))
            if e - be or c - bc:
                out.shapes[k] = [e - be, c - bc]
        return out

    def planned_seconds(self, calibration: Calibration | None) -> float:
        """What the calibration says this work costs (evaluations if there is no calibration)."""
        if calibration is None:
            return float(self.evaluations)
        return sum(planned_seconds(calibration, n, e, c if c > 0 else 1, guided)
                   for (n, guided), (e, c) in self.shapes.items() if e > 0)


@dataclass
class RunClock:
    """The run's time left: the plan's remaining work at the rate this run has measured so far.

    Work is counted in planned seconds (each evaluation at its shape's calibrated cost) or, without a
    calibration, in evaluations; `rate` = work done / seconds spent; time left = (planned work - work done) /
    rate. Before the first generation finishes, the plan's own estimate less the time spent (at least the
    planned work's share still ahead: never 0 s)."""

    planned_s: float | None
    planned_evals: int
    calibration: Calibration | None = None
    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    base: Tally = field(default_factory=Tally)
    #: Planned work credited beyond the evaluations counted (see `credit`).
    credited: float = 0.0
    #: Planned evaluations credited beyond those made (see `credit`): the timing rounds' repetitions, negative.
    credited_evals: int = 0

    def start(self, tally: Tally | None = None) -> None:
        self.started = self.clock()
        self.base = tally.copy() if tally is not None else Tally()

    def credit(self, work: float, evaluations: int = 0) -> None:
        """Count `work` (planned seconds; may be negative) and `evaluations` as done beyond the evaluations made:
        the timing rounds repeat a short configuration until a measurement lasts min_time, so they make more or
        fewer evaluations than the plan counts (one call per configuration and round), yet once they end they
        count as planned, in seconds and in evaluations."""
        self.credited += work
        self.credited_evals += evaluations

    @property
    def planned_work(self) -> float:
        if self.calibration is not None and self.planned_s is not None:
            return self.planned_s
        return float(self.planned_evals)

    def left(self, tally: Tally) -> tuple[float | None, str]:
        """(seconds left or None when not known, a note): seconds > 0 while planned work remains."""
        done = tally.since(self.base)
        spent = max(self.clock() - self.started, 1e-9)
        work = done.planned_seconds(self.calibration) + self.credited
        total = self.planned_work
        if done.evaluations <= 0 or work <= 0:
            if self.planned_s is None:
                return None, "no generation finished yet"
            return max(self.planned_s - spent, self.planned_s * 0.01, 1.0), "as planned"
        rate = work / spent
        remaining = total - work
        if remaining <= 0:
            over = int(done.evaluations + self.credited_evals - self.planned_evals)
            if over <= 0:
                return None, "the planned evaluations are done"
            return None, (f"past the planned evaluations ({over:+,} against the plan's {self.planned_evals:,}); "
                          "time left unknown")
        return remaining / rate, "at this run's rate"

    def text(self, tally: Tally) -> str:
        from .plan import fmt_time

        seconds, note = self.left(tally)
        planned = f"~{fmt_time(self.planned_s)} planned" if self.planned_s is not None else ""
        if seconds is None:
            return note + (f"; {planned}" if planned else "")
        return f"~{fmt_time(seconds)} left" + (f" of {planned}" if planned else "")


def timing_planned(calibration: Calibration | None, rounds: int, model_source: str) -> tuple[float, int]:
    """The seconds and the U-Net evaluations the plan gives the timing rounds (sampler_claims.plan's timing
    generations and its formula: each measurement lasts at least min_time; one call per configuration and round
    counted); seconds 0 without a calibration."""
    from .plan import calls_per_image, stock_scheduler_config, timing_runs, timing_settings
    from .runs import ROUNDS

    rounds, min_time = timing_settings(rounds)
    stock = stock_scheduler_config(model_source)
    seconds, evaluations = 0.0, 0
    for run in timing_runs():
        times, calls = run.times(rounds), calls_per_image(run, stock)
        evaluations += calls * (2 if run.guidance > 1 else 1) * times
        if calibration is None:
            continue
        secs = calibration.generation_seconds(1, calls, run.guidance > 1, times)
        if run.repeat == ROUNDS and min_time:
            secs = max(secs, min_time * times) + secs / times
        seconds += secs
    return seconds, evaluations


# ------------------------------------------------------------------------------------ cost in units
@dataclass
class Cost:
    """The run's wall time in units of one DDPM@1000 image with guidance on one thread."""

    seconds: float
    unit_s: float | None
    #: Where the unit came from: "timing rounds" (median over rounds of DDPM@1000), "calibration" (its one-seed
    #: rate), or None: not measured.
    unit_source: str | None

    @property
    def units(self) -> float | None:
        return self.seconds / self.unit_s if self.unit_s else None

    def line(self, what: str = "claims cost") -> str:
        if self.units is None:
            return f"{what}: {self.seconds:.0f} s (units not measured: no DDPM@1000 timing and no calibration)"
        how = "" if self.unit_source == "timing rounds" else f", estimated from the {self.unit_source}"
        units = f"{self.units:.0f}" if self.units >= 10 else f"{self.units:.2g}"
        return (f"{what}: {self.seconds:.0f} s = {units} units (1 unit = {UNIT_TEXT} = "
                f"{self.unit_s:.1f} s here{how})")

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "units": None if self.units is None else round(self.units, 1),
                "unit_s": None if self.unit_s is None else round(self.unit_s, 3), "unit_source": self.unit_source,
                "unit": UNIT_TEXT}


def unit_from(rounds: Any = None, calibration: Calibration | None = None) -> tuple[float | None, str | None]:
    """The unit's seconds: the median over the timing rounds of DDPM@1000's wall time (the rounds run one seed
    with guidance on one thread), else the calibration's one-seed estimate, else (None, None)."""
    if rounds is not None and UNIT_TIMED in getattr(rounds, "wall", {}) and rounds.wall[UNIT_TIMED]:
        return float(statistics.median(rounds.wall[UNIT_TIMED])), "timing rounds"
    if calibration is not None:
        return calibration.unit_s, "calibration"
    return None, None
