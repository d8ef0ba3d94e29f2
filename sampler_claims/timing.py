"""Timing that noise cannot flip: every timed configuration of the run, in interleaved rounds, each
measurement calibrated to last long enough to be worth reading, with CPU time beside wall time.

Why this shape:
- one session of rounds serves every timing claim (speedup, cfg-two-passes, linear-time,
  recommended-default), so DDPM@1000 is timed once per round, not once per claim;
- each round runs every configuration, in an order rotated from round to round, so that a busy
  neighbour or drift hits all configurations alike and ratios within a round stay fair;
- a short configuration (DPM-Solver@5 is a few hundredths of a second) is repeated until one measurement
  lasts at least `min_time_s` (the claims' registry entry), half of its calls before the long
  configurations of the round and half after, and the round keeps the median of the repetitions: one
  call that a neighbour stretched no longer moves the round, and a load that drifts over the round
  reaches the short configurations and DDPM@1000 alike;
- on the CPU the process's CPU time decides, and wall time is kept beside it; on CUDA wall time with
  synchronisation (the engine's timer) decides; the calibration is the same on both;
- the claims put intervals over rounds on every ratio and fit, so a noisy round widens an interval
  (inconclusive) rather than moving a point estimate across a threshold.

The repetitions are pytest-benchmark's calibration estimate, `loops = ceil(min_time * loops / duration)`,
from the first call of each configuration, which counts as the first repetition (so calibrating costs no
call of its own). Its `_calibrate_timer` itself does not fit: it grows loops tenfold until a run lasts half
of min_time and throws the calibrating runs away, made for microsecond functions; on a 0.05 s pipeline call
it would overshoot to ten times min_time.
pytest-benchmark drives the rounds (`benchmark.pedantic`, one interleaved round per benchmark round),
its `Stats` gives the per-round statistic, and benchmarks.json keeps statistic, repetitions and the
per-round values; the per-call times come from the engine's own timer around each pipeline call.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_benchmark.stats import Stats

from .engine import Engine, Request
from .progress import folded
from .threads import for_timing


def timing_plan() -> dict[str, Any]:
    """Rounds, the least seconds one measurement lasts and the per-round statistic, as the timing claims'
    registry entries state them (they share one entry: the rounds are shared)."""
    from .registry import get

    t = get("linear-time").t
    return {"rounds": t("timing_rounds", int), "min_time_s": float(t("min_time_s", float)),
            "statistic": t("round_statistic", str)}


def repetitions(seconds: float, min_time: float) -> int:
    """How many back-to-back calls make one measurement last at least `min_time`, from one call that took
    `seconds`: pytest-benchmark's estimate `ceil(min_time * loops / duration)` with loops = 1."""
    if seconds <= 0 or not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(min_time / seconds))


def timed_name(sampler: str, steps: int, guidance: float | None = None) -> str:
    """The name a timed configuration has in the rounds and in benchmarks.json, e.g. 'dpm@20', 'ddim@50 guidance 1'."""
    short = {"dpm-solver": "dpm"}.get(sampler, sampler)
    return f"{short}@{steps}" + ("" if guidance is None else f" guidance {guidance:g}")


def timed_runs() -> dict[str, Any]:
    """Every run a claim of the catalogue declares for the timing rounds (`repeat = "rounds"`), by timed name, each
    once: the rounds time the union, so one DDPM@1000 timing per round serves every claim that reads it."""
    from .registry import CLAIMS
    from .runs import ROUNDS

    out: dict[str, Any] = {}
    for claim in CLAIMS.values():
        for run in claim.runs.values():
            if run.repeat == ROUNDS:
                out.setdefault(run_timed_name(run), run)
    # Shortest first: the rounds rotate their start, and with the longest (DDPM@1000) last in the list no round of
    # the default count starts with it, so every round's short configurations straddle it (_one_round).
    return dict(sorted(out.items(), key=lambda kv: kv[1].steps * (2 if kv[1].guidance > 1 else 1)))


def run_timed_name(run: Any) -> str:
    """The timed name of a declared run (sampler_claims.runs.RunSpec)."""
    from .runs import DEFAULTS

    return timed_name(run.sampler, run.steps, None if run.guidance == DEFAULTS["guidance"] else run.guidance)


#: The prompt-table entry (sampler_claims.prompts) the timing rounds take their one prompt and seed from: Exercise
#: 1's, so their images are the single-seed runs of Exercise 1's claims, which reuse them (Engine.keep).
TIMING_ROLE = "exercise1"


def timed_configs(prompt: str, seed: int) -> dict[str, Request]:
    """Every configuration any timing claim reads, one seed each, by name: the runs the catalogue's timing claims
    declare for the rounds (timed_runs). Read when called, so the rounds time what the catalogue says."""
    return {name: run.request((seed,), prompt) for name, run in timed_runs().items()}


def claim_timed(claim_id: str) -> dict[str, str]:
    """A timing claim's timed runs: its run name -> the timed name the rounds keep it under."""
    from .registry import get
    from .runs import ROUNDS

    return {name: run_timed_name(run) for name, run in get(claim_id).runs.items() if run.repeat == ROUNDS}


#: The timed configuration of each of speedup's runs, by the lesson's short name (the speedup rule reads the claim's runs
#: itself, sampler_claims.rules.exercise1.speedup_timed; the timing tests read these).
LESSON_TIMED = {name.removeprefix("timed-"): timed for name, timed in claim_timed("speedup").items()}


def unet_samples(req: Request) -> int:
    """U-Net samples one call of `req` evaluates: steps x images x 2 with classifier-free guidance (one batched
    call of 2B per step), the work its time should follow; the calibration orders configurations by it."""
    return req.steps * len(req.seeds) * (2 if req.guidance > 1 else 1)


@dataclass
class Rounds:
    """Per configuration, the wall and CPU seconds of each round (the round's statistic over its repetitions),
    the repetitions behind them, and what each call did."""

    device: str
    names: list[str]
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    unet_calls: dict[str, int] = field(default_factory=dict)
    unet_batch_sizes: dict[str, list[int]] = field(default_factory=dict)
    order: list[list[str]] = field(default_factory=list)
    #: Calls per measurement, by configuration (1 for made-up rounds and for configurations already long).
    reps: dict[str, int] = field(default_factory=dict)
    #: Per configuration, per round, every call's seconds on each clock.
    wall_calls: dict[str, list[list[float]]] = field(default_factory=dict)
    cpu_calls: dict[str, list[list[float]]] = field(default_factory=dict)
    min_time_s: float = 0.0
    statistic: str = "median"
    #: The calibrating call's seconds per configuration (deciding clock); absent where it was not run.
    calibration_s: dict[str, float] = field(default_factory=dict)
    #: Wall seconds the whole measurement took: warm-up, calibration and rounds (what the run pays for timing).
    elapsed_s: float = 0.0
    #: torch CPU threads the rounds ran on (sampler_claims.threads: one on the CPU).
    threads: int | None = None
    #: The rounds asked for (the progress line says "timing round k/planned").
    planned: int = 0

    @property
    def rounds(self) -> int:
        return len(self.order)

    @property
    def clock(self) -> str:
        """Which clock decides: CPU time on the CPU, wall time (synchronised) elsewhere."""
        return "cpu" if self.device == "cpu" else "wall"

    def seconds(self, name: str, clock: str | None = None) -> list[float]:
        """The per-round statistic of one configuration's call time: what every timing rule reads."""
        return (self.cpu if (clock or self.clock) == "cpu" else self.wall)[name]

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "deciding_clock": self.clock, "rounds": self.rounds,
                "statistic": self.statistic, "min_time_s": self.min_time_s, "elapsed_s": round(self.elapsed_s, 2),
                "threads": self.threads,
                "repetitions": {n: self.reps.get(n, 1) for n in self.names},
                "wall_s": {k: [round(x, 5) for x in v] for k, v in self.wall.items()},
                "cpu_s": {k: [round(x, 5) for x in v] for k, v in self.cpu.items()},
                "unet_calls": self.unet_calls}


def round_statistic(values: list[float], statistic: str = "median") -> float:
    """One round's value from its repetitions, by pytest-benchmark's Stats (median: robust to the one call
    a neighbour stretched; min and mean are there for a registry that argues for them)."""
    s = Stats()
    for v in values:
        s.update(v)
    if statistic not in ("median", "min", "mean"):
        raise ValueError(f"round statistic {statistic!r}: use median, min or mean")
    return float(getattr(s, statistic))


def run_rounds(engine: Engine, configs: dict[str, Request], rounds: int,
               driver: Callable[[Callable[[], None], int], None] | None = None, *,
               min_time: float = 0.0, statistic: str = "median") -> Rounds:
    """`rounds` interleaved rounds over `configs` (uncached), after one warm-up call.

    The calibration costs nothing extra: in the first round each configuration's first call sets its
    repetitions (`repetitions`, pytest-benchmark's estimate) and counts as the first of them; a configuration
    whose one call lasts min_time (DDPM@1000) is simply timed once per round.
    `driver(fn, rounds)` runs `fn` once per round; pytest-benchmark's pedantic is the driver in a run.
    """
    started = time.perf_counter()
    names = list(configs)
    out = Rounds(engine.device, names, {n: [] for n in names}, {n: [] for n in names},
                 min_time_s=min_time, statistic=statistic,
                 wall_calls={n: [] for n in names}, cpu_calls={n: [] for n in names})
    # Warm-up: first calls pay for allocator growth and kernel selection; the smallest configuration warms the
    # same U-Net at the same batch for all, and its time is not kept (it would under-count its repetitions).
    out.planned = rounds
    smallest = min(names, key=lambda k: unet_samples(configs[k]))
    with folded(getattr(engine, "progress", None), "timing warm-up"):
        engine.generate(configs[smallest], cached=False)

    def one_round() -> None:
        _one_round(engine, configs, out)

    if driver is None:
        for _ in range(rounds):
            one_round()
    else:
        driver(one_round, rounds)
    out.elapsed_s = time.perf_counter() - started
    return out


TIMING_KEY = pytest.StashKey[Rounds]()
#: The engine ledger's suffix for the timing rounds' repetitions beyond one call per configuration and round.
REPETITIONS = "(timing repetitions)"


def session_rounds(request: pytest.FixtureRequest, engine: Engine, prompt: str, seed: int,
                   rounds: int | None = None) -> Rounds:
    """The run's one set of timing rounds: measured by the first timing claim that asks, shared after.

    `rounds` (--timing-rounds) overrides the registry's; min_time and the statistic are the registry's.
    The first asker's pytest-benchmark fixture drives the rounds, so they land in benchmarks.json under
    that test's name, with the repetitions and per-round values in its extra_info.
    """
    config = request.config
    if TIMING_KEY not in config.stash:
        plan = timing_plan()
        rounds = rounds or plan["rounds"]
        benchmark = request.getfixturevalue("benchmark")
        benchmark.group = "interleaved timing rounds"
        configs = timed_configs(prompt, seed)

        def driver(fn: Callable[[], None], n: int) -> None:
            benchmark.pedantic(fn, rounds=n, iterations=1, warmup_rounds=0)

        with for_timing(engine.device) as threads:  # one thread: stable beside a busy neighbour
            result = run_rounds(engine, configs, rounds, driver, min_time=plan["min_time_s"],
                                statistic=plan["statistic"])
            if len(result.order) < rounds:  # --benchmark-disable runs the function once: finish the rounds
                started = time.perf_counter()
                for _ in range(rounds - len(result.order)):
                    _one_round(engine, configs, result)
                result.elapsed_s += time.perf_counter() - started
        result.threads = threads
        per_round = result.cpu if result.clock == "cpu" else result.wall
        benchmark.extra_info.update({
            "configs": list(configs), "deciding_clock": result.clock, "statistic": result.statistic,
            "min_time_s": result.min_time_s, "elapsed_s": round(result.elapsed_s, 2), "threads": result.threads,
            "repetitions": {n: result.reps.get(n, 1) for n in configs},
            "calibration_s": {n: round(v, 5) for n, v in result.calibration_s.items()},
            "per_round_s": {n: [round(x, 5) for x in v] for n, v in per_round.items()},
            "median_s": {n: sorted(v)[len(v) // 2] for n, v in per_round.items()}})
        config.stash[TIMING_KEY] = result
    return config.stash[TIMING_KEY]


def _one_round(engine: Engine, configs: dict[str, Request], out: Rounds) -> None:
    """Every configuration, starting one further along the list than the round before, in two passes: the first
    half of each configuration's repetitions (and every call of a configuration timed once, DDPM@1000 among
    them) in the first pass, the rest in the second. A short configuration's calls so straddle the long ones:
    the pilot's rounds on a busy machine showed the load drifting over seconds, and a short measurement taken
    only before DDPM@1000 read the load of another moment than DDPM@1000's own. The round keeps every call and
    its statistic. A configuration not yet calibrated (the first round) gets its repetitions from its first
    call, which counts as one of them."""
    names = out.names
    k = len(out.order)
    # Dozens of timed calls, many of one configuration: one progress line per round, not one per call.
    with folded(getattr(engine, "progress", None), f"timing round {k + 1}/{max(out.planned, k + 1)}"):
        _timed_round(engine, configs, out, names[k % len(names):] + names[:k % len(names)])


def _timed_round(engine: Engine, configs: dict[str, Request], out: Rounds, order: list[str]) -> None:
    out.order.append(order)
    calls: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in order}
    last: dict[str, Any] = {}

    def call(n: str) -> None:
        # The plan counts one call per configuration and round; the repetitions that make a short one last
        # min_time depend on this machine's speed, so the engine's ledger keeps them apart.
        key = getattr(engine, "ledger_key", None)
        if key is not None and calls[n][0]:
            engine.ledger_key = f"{key} {REPETITIONS}"
        try:
            gen = engine.generate(configs[n], cached=False)
        finally:
            if key is not None:
                engine.ledger_key = key
        if hasattr(engine, "keep"):  # the image is the cached request's own: a later claim showing it reuses it
            engine.keep(gen)
        wall, cpu = calls[n]
        wall.append(gen.seconds)
        cpu.append(gen.cpu_seconds)
        last[n] = gen
        if n not in out.reps:
            first = cpu[0] if out.clock == "cpu" else wall[0]
            out.calibration_s[n] = first
            out.reps[n] = repetitions(first, out.min_time_s) if out.min_time_s > 0 else 1

    for n in order:
        call(n)
        while len(calls[n][0]) < (out.reps[n] + 1) // 2:
            call(n)
    for n in order:
        while len(calls[n][0]) < out.reps[n]:
            call(n)
    for n in order:
        wall, cpu = calls[n]
        out.wall_calls.setdefault(n, []).append(wall)
        out.cpu_calls.setdefault(n, []).append(cpu)
        out.wall[n].append(round_statistic(wall, out.statistic))
        out.cpu[n].append(round_statistic(cpu, out.statistic))
        out.unet_calls[n] = last[n].unet_calls
        out.unet_batch_sizes[n] = list(last[n].unet_batch_sizes)
