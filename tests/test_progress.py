"""Progress lines: one per generation with claim, configuration, step k of N, seeds, time spent and left; through
the terminal reporter, from the controller under xdist, and none under -q -q."""
from __future__ import annotations

import pytest
import torch

from sampler_claims.engine import Engine, Request
from sampler_claims.progress import Progress, ReportSink
from sampler_claims.schedulers import DDIM


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0  # every reading is one second later
        return self.t


def test_a_generation_reports_each_step_and_one_finished_line(dummy_pipe) -> None:
    # One torch thread: the engine runs the chunks in one lane, in order (on more, their lines interleave).
    torch.set_num_threads(1)
    seen: list[tuple[str, bool]] = []
    progress = Progress(lambda text, final: seen.append((text, final)), interval=0.0, clock=Clock())
    progress.context = "sweet-spot"
    engine = Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", max_batch=2, progress=progress)
    engine.generate(Request(DDIM, 3, (0, 1, 2, 3), "p"))
    updates = [t for t, final in seen if not final]
    finished = [t for t, final in seen if final]
    assert len(finished) == 1 and len(updates) == 6  # 3 steps x 2 chunks
    assert updates[0].startswith("sweet-spot: DDIM @ 3 steps, 4 seeds 0-3 (seeds 1-2 of 4): step 1/3")
    assert "spent" in updates[0] and "left" in updates[0]
    assert "step 3/3" in updates[-1] and "~0.0 s left" in updates[-1]
    assert finished[0].startswith("sweet-spot: DDIM @ 3 steps, 4 seeds 0-3 in 2 chunks of up to 2: 3/3 steps")


def test_a_worker_keeps_finished_lines_for_its_report(dummy_pipe) -> None:
    sink = ReportSink()
    engine = Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", progress=Progress(sink, live=False))
    engine.generate(Request(DDIM, 2, (5,), "p"))
    assert len(sink.drain()) == 1
    engine.generate(Request(DDIM, 2, (6,), "p"))
    lines = sink.drain()
    assert len(lines) == 1 and "seed 6" in lines[0] and sink.lines == []


TEST_FILE = """
from sampler_claims.engine import Request
from sampler_claims.schedulers import DDIM

def test_gen(engine):
    engine.generate(Request(DDIM, 3, (0, 1, 2), "a red circle"))
"""


@pytest.mark.parametrize("args,shown", [((), True), (("-q", "-q"), False), (("-n", "1"), True)],
                         ids=["terminal", "quiet", "xdist controller"])
def test_a_run_shows_its_progress_lines(pytester: pytest.Pytester, dummy_folder, args, shown) -> None:
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder),
                                           "--device", "cpu", "--claims-report",
                                           str(pytester.path / "r" / "index.html"), *args)
    assert result.ret == 0
    lines = [ln for ln in result.stdout.lines if "DDIM @ 3 steps, 3 seeds 0-2" in ln]
    assert bool(lines) == shown
    if shown:
        assert "test_gen: " in lines[0] and "3/3 steps" in lines[0]
    if "-n" in args:
        assert "[gw0]" in lines[0]  # printed by the controller, from the worker's report


def test_a_long_generation_in_a_log_says_the_run_time_left_now_and_then(dummy_pipe) -> None:
    """Without a terminal a generation writes one finished line, and a long one also a line every log_interval
    seconds with the run's time left, counting its own steps so far (the run_left callable gets them)."""
    torch.set_num_threads(1)
    seen: list[tuple[str, bool]] = []
    partials: list = []

    def run_left(partial=None):  # noqa: ANN001, ANN202
        partials.append(partial)
        return "~1 min left of ~2 min planned"

    progress = Progress(lambda text, final: seen.append((text, final)), clock=Clock(), live=False,
                        run_left=run_left, log_interval=3.0)
    engine = Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", progress=progress)
    engine.generate(Request(DDIM, 8, (0, 1), "p"))
    lines = [t for t, final in seen]
    assert all(final for _, final in seen) and len(lines) >= 3
    assert "step " in lines[0] and "spent; run: ~1 min left of ~2 min planned" in lines[0]
    assert "8/8 steps" in lines[-1] and "step " not in lines[-1].split(": ", 1)[1].split(",")[0]
    now_and_then = [p for p in partials if p is not None]
    assert now_and_then and now_and_then[0][:3] == (2, True, 8) and 0 < now_and_then[0][3] < 1

    quiet: list[tuple[str, bool]] = []
    engine.progress = Progress(lambda text, final: quiet.append((text, final)), clock=Clock(), live=False,
                               run_left=run_left, log_interval=1e9)
    engine.generate(Request(DDIM, 8, (2, 3), "p"))
    assert len(quiet) == 1, "a short generation: its finished line only"


def test_the_run_clock_counts_a_generation_in_progress() -> None:
    """The time left read during a long generation counts its steps so far: half of a generation is half its
    planned seconds done."""
    from sampler_claims.calibration import Calibration, Rate, RunClock, Tally

    cal = Calibration("cpu", "float32", 32, Rate(0.001, 0.0, 4), Rate(0.004, 0.0, 1), 1.0, lanes=2)
    whole = Tally()
    whole.add(4, 4 * 100 * 2)
    half = Tally().with_partial(4, True, 100, 0.5)
    assert half.planned_seconds(cal) == pytest.approx(whole.planned_seconds(cal) / 2)
    for guided in (True, False):  # one seed a quarter done: a quarter of its price, guided or not
        whole_one = Tally()
        whole_one.add(1, 1000 * (2 if guided else 1), guided=guided)
        quarter = Tally().with_partial(1, guided, 1000, 0.25)
        assert quarter.planned_seconds(cal) == pytest.approx(whole_one.planned_seconds(cal) / 4)
