"""One line per generation while the claims run: which claim and configuration, step k of N, the seeds, the
time spent and the time left.

The pipeline's own progress bar is off (one bar per chunk, printed from whatever process runs it, would
interleave with pytest's output and with other xdist workers). Instead the engine tells a `Progress` of every
step, and the line goes through pytest's terminal reporter on the process that owns the terminal:
- without xdist, on a terminal, one live line: the text is drawn after whatever pytest's current line holds
  (its outcome letters, or the test's name under -v), updated in place at most every `interval` seconds, and
  erased when the generation ends, so pytest's own output is never overwritten and never interleaved;
- elsewhere (a CI log) one finished line per generation, always on a line of its own (after a newline when
  pytest's line holds outcome letters);
- on an xdist worker nothing is printed: the finished lines ride on the test's report (as the claim records
  do) and the controller prints them as the reports arrive;
- under `-q -q` nothing is printed at all.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

#: Seconds between two updates of the in-place line on a terminal.
INTERVAL = 0.5
#: Seconds between two lines of one long generation in a log (no terminal): DDPM@1000 on the longer roster runs
#: for minutes, and without them a log would say nothing, and its last time left would be minutes old, for all
#: that while (halfway through one default run on a slowing machine the last line was 158 s old and 22% short).
LOG_INTERVAL = 60.0


def plural(n: int, word: str) -> str:
    """"1 seed", "2 seeds": the counts the terminal shows go through here."""
    return f"{n} {word}" + ("" if n == 1 else "s")


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
                 clock: Callable[[], float] = time.perf_counter,
                 run_left: Callable[..., str | None] | None = None, live: bool = True,
                 log_interval: float = LOG_INTERVAL) -> None:
        self.sink = sink
        self.interval = interval
        #: Without a terminal: a line every this many seconds of one generation, with the run's time left.
        self.log_interval = log_interval
        self.clock = clock
        #: Whether to send updates within a generation (a terminal), or only each finished line.
        self.live = live
        #: The claim whose test is running (set by the plugin before each test).
        self.context = ""
        #: The run's time left from the cost plan, appended to each finished line (None: not known); called with
        #: the generation in progress as (images, guided, calls, fraction done), or with nothing.
        self.run_left = run_left
        #: Why the generations now running are expected to fail, and with what (expecting_failure), or None.
        self.expected_failure: tuple[str, tuple[type[BaseException], ...]] | None = None
        #: The group the generations now running are folded into (folded), or None.
        self.fold: Fold | None = None

    def begin(self, request: Any, model_key: str = "") -> Line:
        return Line(self, request)

    def who(self) -> str:
        return f"{self.context}: " if self.context else ""

    def run_text(self, partial: tuple[int, bool, int, float] | None = None) -> str:
        """"; run: ~X left of ~Y planned", counting `partial` (the generation in progress) as done so far."""
        if self.run_left is None:
            return ""
        try:
            run = self.run_left(partial) if partial is not None else self.run_left()
        except Exception:  # noqa: BLE001 - a progress line never stops a generation (it runs in the step callback)
            return ""
        return f"; run: {run}" if run else ""

    @contextmanager
    def expecting_failure(self, why: str, *kinds: type[BaseException]) -> Iterator[None]:
        """The generations inside are expected to fail with one of `kinds` (a claim that measures an error): such
        a stop is told as the expected outcome, not as a crash."""
        old, self.expected_failure = self.expected_failure, (why, kinds or (Exception,))
        try:
            yield
        finally:
            self.expected_failure = old

    @contextmanager
    def folded(self, label: str) -> Iterator[None]:
        """The generations inside are one unit (e.g. "timing round 2/5": dozens of identical timed calls): live
        updates name the unit, and one finished line tells how many generations it ran and how long it took."""
        fold = Fold(label, self.clock())
        old, self.fold = self.fold, fold
        try:
            yield
        finally:
            self.fold = old
            self.sink(f"{self.who()}{label}: {plural(fold.count, 'generation')}, "
                      f"{duration(self.clock() - fold.start)}{self.run_text()}", True)


def folded(progress: Progress | None, label: str) -> Any:
    """Progress.folded, or nothing where no progress is shown (the harness's engines)."""
    return progress.folded(label) if progress is not None else nullcontext()


def expecting_failure(progress: Progress | None, why: str, *kinds: type[BaseException]) -> Any:
    """Progress.expecting_failure, or nothing where no progress is shown."""
    return progress.expecting_failure(why, *kinds) if progress is not None else nullcontext()


class Fold:
    """A unit of generations told as one line (Progress.folded)."""

    def __init__(self, label: str, start: float) -> None:
        self.label = label
        self.start = start
        self.count = 0


class Line:
    """The progress of one generation (all its chunks)."""

    def __init__(self, progress: Progress, request: Any) -> None:
        self.p = progress
        self.req = request
        self.start = progress.clock()
        self.last = -1e9
        self.logged = self.start  # the last line this generation wrote to a log
        #: CPU lanes report their steps from their own threads: one at a time.
        self.lock = threading.Lock()
        self.total_steps = request.steps
        self.done_chunks = 0  # image-steps of the chunks already finished
        self.step_no = 0
        #: Image-steps done per chunk (by its first seed): chunks may run one after another or at once (CPU lanes).
        self.chunk_done: dict[int, int] = {}

    def _head(self) -> str:
        fold = f"{self.p.fold.label}: " if self.p.fold is not None else ""
        return f"{self.p.who()}{fold}{self.req.label}, {seeds_text(self.req.seeds)}"

    def step(self, start: int, count: int, k: int, steps: int | None) -> None:
        """Step k (1-based) of `steps` done for the chunk of `count` seeds starting at seed index `start`."""
        with self.lock:
            self._step(start, count, k, steps)

    def _step(self, start: int, count: int, k: int, steps: int | None) -> None:
        if steps:
            self.total_steps = steps
        self.step_no = k
        n = len(self.req.seeds)
        self.chunk_done[start] = count * k
        done = sum(self.chunk_done.values())
        if k == self.total_steps:
            self.done_chunks = start + count
        if not self.p.live:
            if self.p.run_left is not None and self.p.fold is None:
                now = self.p.clock()
                if now - self.logged >= self.p.log_interval:  # a long generation in a log: a line now and then
                    self.logged = now
                    self.p.sink(f"{self._head()}: step {k}/{self.total_steps}, {duration(now - self.start)} "
                                f"spent{self.p.run_text(self._partial(done))}", True)
            return
        now = self.p.clock()
        if now - self.last < self.p.interval:
            return
        self.last = now
        spent = now - self.start
        left = spent * (n * self.total_steps - done) / done if done else 0.0
        chunk = f" (seeds {start + 1}-{start + count} of {n})" if count < n else ""
        self.p.sink(f"{self._head()}{chunk}: step {k}/{self.total_steps}, {duration(spent)} spent, "
                    f"~{duration(left)} left{self.p.run_text(self._partial(done))}", False)

    def _partial(self, done: int) -> tuple[int, bool, int, float]:
        """This generation so far, for the run's time left: (images, guided, calls, fraction of its image-steps)."""
        n = len(self.req.seeds)
        whole = n * max(self.total_steps, 1)
        return n, self.req.guidance > 1, self.total_steps, min(done / whole, 1.0)

    def end(self, generation: Any) -> None:
        if self.p.fold is not None:  # one line for the whole unit, when it ends
            self.p.fold.count += 1
            return
        spent = self.p.clock() - self.start
        chunks = generation.chunks
        split = f" in {len(chunks)} chunks of up to {max(chunks)}" if len(chunks) > 1 else ""
        self.p.sink(f"{self._head()}{split}: {self.total_steps}/{self.total_steps} steps, {duration(spent)}"
                    + self.p.run_text(), True)

    def abort(self, error: BaseException | None = None) -> None:
        spent = self.p.clock() - self.start
        at = f"step {self.step_no}/{self.total_steps}"
        expected = self.p.expected_failure
        if expected is not None and isinstance(error, expected[1]):
            self.p.sink(f"{self._head()}: failed at {at} with {type(error).__name__}, as expected ({expected[0]})",
                        True)
            return
        what = f" ({type(error).__name__})" if isinstance(error, Exception) else ""
        self.p.sink(f"{self._head()}: stopped at {at} after {duration(spent)}{what}", True)


class TerminalSink:
    """Writes through pytest's terminal reporter, outside pytest's output capture (as live logging does).

    On a terminal: one live text after pytest's current line (its outcome letters, or the test's name under -v),
    cut to the width left, drawn and erased with backspaces (no cursor escapes, so any terminal shows it), and
    erased for good when the generation ends: pytest's own output is never overwritten. The terminal writer's
    record of its current line is kept as pytest left it, so its "[ 42%]" column stays right.
    Elsewhere: the finished lines only, each on a line of its own (finished_line)."""

    #: Fewer columns than this left on pytest's current line: no live text (it would say nothing).
    MIN_ROOM = 16

    def __init__(self, reporter: Any, capture: Any = None) -> None:
        self.reporter = reporter
        self.capture = capture
        self.tty = bool(getattr(reporter, "isatty", False))
        self._live = 0  # columns of live text now on the screen

    def __call__(self, text: str, final: bool) -> None:
        with self._uncaptured():
            if self.tty:
                self._erase()
                if not final:
                    self._draw(text)
            elif final:
                finished_line(self.reporter, text)

    def clear(self) -> None:
        """Erase the live text now (before pytest writes: a safety net; a generation's end erases it too)."""
        if self._live:
            with self._uncaptured():
                self._erase()

    def _uncaptured(self) -> Any:
        return self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()

    def _write_aside(self, raw: str) -> None:
        """Write without changing what the terminal writer believes its current line holds."""
        tw = self.reporter._tw
        kept = getattr(tw, "_current_line", None)
        tw.write(raw, flush=True)
        if kept is not None:
            tw._current_line = kept

    def _draw(self, text: str) -> None:
        tw = self.reporter._tw
        room = tw.fullwidth - tw.width_of_current_line - 2
        if room < self.MIN_ROOM:
            return
        shown = " " + (text if len(text) <= room else text[:room - 1] + "…")
        self._write_aside(shown)
        self._live = len(shown)

    def _erase(self) -> None:
        if self._live:
            n, self._live = self._live, 0
            self._write_aside("\b" * n + " " * n + "\b" * n)


def finished_line(reporter: Any, text: str) -> None:
    """One finished progress line on a line of its own: after pytest's current line is ended (its outcome
    letters under -q, the file's name otherwise), so neither sticks to the other."""
    reporter.ensure_newline()
    if reporter._tw.width_of_current_line:
        reporter.write("\n")
    reporter.write_line(text)


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
