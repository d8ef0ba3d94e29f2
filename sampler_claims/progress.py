"""One line per generation while the claims run: which claim and configuration, step k of N, the seeds, the
time spent and the time left.

The pipeline's own progress bar is off (one bar per chunk, printed from whatever process runs it, would
interleave with pytest's output and with other xdist workers). Instead the engine tells a `Progress` of every
step, and the line goes through pytest's terminal reporter on the process that owns the terminal:
- without xdist, a line that updates in place on a terminal (at most every `interval` seconds), and one
  finished line per generation elsewhere (a CI log);
- on an xdist worker nothing is printed: the finished lines ride on the test's report (as the claim records
  do) and the controller prints them as the reports arrive;
- under `-q -q` nothing is printed at all.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Seconds between two updates of the in-place line on a terminal.
INTERVAL = 0.5


def seeds_text(seeds: tuple[int, ...]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{len(seeds)} seeds {seeds[0]}-{seeds[-1]}"
    return f"{len(seeds)} seeds"


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Progress:
    """Told of every generation and step by the engine; writes through `sink(text, final)`."""

    def __init__(self, sink: Callable[[str, bool], None], *, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.perf_counter, run_left: Callable[[], str | None] | None = None,
                 live: bool = True) -> None:
        self.sink = sink
        self.interval = interval
        self.clock = clock
        #: Whether to send updates within a generation (a terminal), or only each finished line.
        self.live = live
        #: The claim whose test is running (set by the plugin before each test).
        self.context = ""
        #: The run's time left from the cost plan, appended to each finished line (None: not known).
        self.run_left = run_left

    def begin(self, request: Any, model_key: str = "") -> Line:
        return Line(self, request)


class Line:
    """The progress of one generation (all its chunks)."""

    def __init__(self, progress: Progress, request: Any) -> None:
        self.p = progress
        self.req = request
        self.start = progress.clock()
        self.last = -1e9
        self.total_steps = request.steps
        self.done_chunks = 0  # image-steps of the chunks already finished
        self.step_no = 0
        #: Image-steps done per chunk (by its first seed): chunks may run one after another or at once (CPU lanes).
        self.chunk_done: dict[int, int] = {}

    def _head(self) -> str:
        who = f"{self.p.context}: " if self.p.context else ""
        return f"{who}{self.req.label}, {seeds_text(self.req.seeds)}"

    def step(self, start: int, count: int, k: int, steps: int | None) -> None:
        """Step k (1-based) of `steps` done for the chunk of `count` seeds starting at seed index `start`."""
        if steps:
            self.total_steps = steps
        self.step_no = k
        n = len(self.req.seeds)
        self.chunk_done[start] = count * k
        done = sum(self.chunk_done.values())
        if k == self.total_steps:
            self.done_chunks = start + count
        if not self.p.live:
            return
        now = self.p.clock()
        if now - self.last < self.p.interval:
            return
        self.last = now
        spent = now - self.start
        left = spent * (n * self.total_steps - done) / done if done else 0.0
        chunk = f" (seeds {start + 1}-{start + count} of {n})" if count < n else ""
        self.p.sink(f"{self._head()}{chunk}: step {k}/{self.total_steps}, {duration(spent)} spent, "
                    f"~{duration(left)} left", False)

    def end(self, generation: Any) -> None:
        spent = self.p.clock() - self.start
        chunks = generation.chunks
        split = f" in {len(chunks)} chunks of up to {max(chunks)}" if len(chunks) > 1 else ""
        run = self.p.run_left() if self.p.run_left is not None else None
        self.p.sink(f"{self._head()}{split}: {self.total_steps}/{self.total_steps} steps, {duration(spent)}"
                    + (f"; run: {run}" if run else ""), True)

    def abort(self) -> None:
        spent = self.p.clock() - self.start
        self.p.sink(f"{self._head()}: stopped at step {self.step_no}/{self.total_steps} after {duration(spent)}",
                    True)


class TerminalSink:
    """Writes through pytest's terminal reporter, outside pytest's output capture (as live logging does):
    an in-place line on a terminal, finished lines only elsewhere."""

    def __init__(self, reporter: Any, capture: Any = None) -> None:
        self.reporter = reporter
        self.capture = capture
        self.tty = bool(getattr(reporter, "isatty", False))
        self._open = False

    def __call__(self, text: str, final: bool) -> None:
        from contextlib import nullcontext

        ctx = self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()
        with ctx:
            if self.tty:
                if not self._open:
                    self.reporter.ensure_newline()
                    self._open = True
                self.reporter.rewrite(text, erase=True)
                if final:
                    self.reporter.write("\n")
                    self._open = False
            elif final:
                self.reporter.write_line(text)


class ReportSink:
    """On an xdist worker: keeps the finished lines for the test's report; prints nothing."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str, final: bool) -> None:
        if final:
            self.lines.append(text)

    def drain(self) -> list[str]:
        out, self.lines = self.lines, []
        return out
