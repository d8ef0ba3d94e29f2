"""Timing that noise cannot flip: every timed configuration of the run, measured once, in interleaved
rounds, with CPU time beside wall time.

Why this shape:
- one session of rounds serves every timing claim (speedup, cfg-two-passes, linear-time,
  recommended-default), so DDPM@1000 is timed once, not once per claim;
- each round runs every configuration once, in an order rotated from round to round, so that a busy
  neighbour or thermal drift hits all configurations alike and ratios within a round stay fair;
- on the CPU the process's CPU time decides (a neighbour taking a core stretches wall time, not the
  CPU time of the work), and wall time is kept beside it; on CUDA wall time with synchronisation decides;
- the claims put intervals over rounds on every ratio and fit, so a noisy round widens an interval
  (inconclusive) rather than moving a point estimate across a threshold.

pytest-benchmark drives the rounds (`benchmark.pedantic`, one interleaved round per benchmark round)
and stores them in benchmarks.json; the per-configuration times come from the engine's own timer
around each pipeline call.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .engine import Engine, Request
from .schedulers import DPM, LESSON_SAMPLERS

DEFAULT_ROUNDS = 4
#: The guidance of the second DDIM@50 configuration, against the lesson's 7.5 (cfg-two-passes).
NO_GUIDANCE = 1.0


def timed_name(sampler: str, steps: int, guidance: float | None = None) -> str:
    """The name a timed configuration has in the rounds and in benchmarks.json, e.g. 'dpm@20', 'ddim@50 guidance 1'."""
    short = {"dpm-solver": "dpm"}.get(sampler, sampler)
    return f"{short}@{steps}" + ("" if guidance is None else f" guidance {guidance:g}")


def timed_configs(prompt: str, seed: int) -> dict[str, Request]:
    """Every configuration any timing claim reads, one seed each, by name: DPM-Solver over linear-time's
    `step_counts` and recommended-default's `steps`, and the lesson's three samplers of Exercise 1 (DDIM@50 also
    without guidance). Read from the registry when called, so the rounds time what the registry says."""
    from .registry import get

    grid = get("linear-time").t("step_counts", tuple)
    dpm_steps = (*grid, *(s for s in get("recommended-default").t("steps", tuple) if s not in grid))
    out = {timed_name(DPM.name, s): Request(DPM, s, (seed,), prompt) for s in dpm_steps}
    ddim, ddim_steps = LESSON_SAMPLERS["ddim"]
    out[timed_name(ddim.name, ddim_steps)] = Request(ddim, ddim_steps, (seed,), prompt)
    out[timed_name(ddim.name, ddim_steps, NO_GUIDANCE)] = Request(ddim, ddim_steps, (seed,), prompt,
                                                                  guidance=NO_GUIDANCE)
    for spec, steps in (LESSON_SAMPLERS["ddpm"], LESSON_SAMPLERS["dpm-solver"]):
        out.setdefault(timed_name(spec.name, steps), Request(spec, steps, (seed,), prompt))
    return out


#: The timed configuration of each lesson sampler, by the lesson's short name (speedup reads these).
LESSON_TIMED = {n: timed_name(spec.name, steps) for n, (spec, steps) in LESSON_SAMPLERS.items()}


@dataclass
class Rounds:
    """Per configuration, the wall and CPU seconds of each round, and what each call did."""

    device: str
    names: list[str]
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    unet_calls: dict[str, int] = field(default_factory=dict)
    unet_batch_sizes: dict[str, list[int]] = field(default_factory=dict)
    order: list[list[str]] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        return len(self.order)

    @property
    def clock(self) -> str:
        """Which clock decides: CPU time on the CPU, wall time (synchronised) elsewhere."""
        return "cpu" if self.device == "cpu" else "wall"

    def seconds(self, name: str, clock: str | None = None) -> list[float]:
        return (self.cpu if (clock or self.clock) == "cpu" else self.wall)[name]

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "deciding_clock": self.clock, "rounds": self.rounds,
                "wall_s": {k: [round(x, 5) for x in v] for k, v in self.wall.items()},
                "cpu_s": {k: [round(x, 5) for x in v] for k, v in self.cpu.items()},
                "unet_calls": self.unet_calls}


def run_rounds(engine: Engine, configs: dict[str, Request], rounds: int,
               driver: Callable[[Callable[[], None], int], None] | None = None) -> Rounds:
    """`rounds` interleaved rounds over `configs` (uncached), after one warm-up of the short ones.

    `driver(fn, rounds)` runs `fn` once per round; pytest-benchmark's pedantic is the driver in a run.
    """
    names = list(configs)
    out = Rounds(engine.device, names, {n: [] for n in names}, {n: [] for n in names})
    # Warm-up: first calls pay for allocator growth and kernel selection. DDPM@1000 needs none of its own:
    # the short configs warm the same U-Net at the same batch, and 1000 steps dilute a first step anyway.
    for n in names:
        if configs[n].steps <= 200:
            engine.generate(configs[n], cached=False)
            break

    def one_round() -> None:
        _one_round(engine, configs, out)

    if driver is None:
        for _ in range(rounds):
            one_round()
    else:
        driver(one_round, rounds)
    return out


TIMING_KEY = pytest.StashKey[Rounds]()


def session_rounds(request: pytest.FixtureRequest, engine: Engine, prompt: str, seed: int, rounds: int) -> Rounds:
    """The run's one set of timing rounds: measured by the first timing claim that asks, shared after.

    The first asker's pytest-benchmark fixture drives the rounds, so they land in benchmarks.json under
    that test's name.
    """
    config = request.config
    if TIMING_KEY not in config.stash:
        benchmark = request.getfixturevalue("benchmark")
        benchmark.group = "interleaved timing rounds"
        configs = timed_configs(prompt, seed)

        def driver(fn: Callable[[], None], n: int) -> None:
            benchmark.pedantic(fn, rounds=n, iterations=1, warmup_rounds=0)

        result = run_rounds(engine, configs, rounds, driver)
        if len(result.order) < rounds:  # --benchmark-disable runs the function once: finish the rounds
            for _ in range(rounds - len(result.order)):
                _one_round(engine, configs, result)
        benchmark.extra_info.update({"configs": list(configs), "deciding_clock": result.clock,
                                     "median_s": {n: sorted(v)[len(v) // 2] for n, v in
                                                  (result.cpu if result.clock == "cpu" else result.wall).items()}})
        config.stash[TIMING_KEY] = result
    return config.stash[TIMING_KEY]


def _one_round(engine: Engine, configs: dict[str, Request], out: Rounds) -> None:
    """Every configuration once, starting one further along the list than the round before."""
    names = out.names
    k = len(out.order)
    order = names[k % len(names):] + names[:k % len(names)]
    out.order.append(order)
    for n in order:
        gen = engine.generate(configs[n], cached=False)
        out.wall[n].append(gen.seconds)
        out.cpu[n].append(gen.cpu_seconds)
        out.unet_calls[n] = gen.unet_calls
        out.unet_batch_sizes[n] = list(gen.unet_batch_sizes)
