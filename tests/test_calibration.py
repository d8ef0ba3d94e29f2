"""The cost of a run (sampler_claims.calibration): the calibration measures the shapes the run uses, the time
left follows this run's measured rate and never says 0 s while evaluations remain, and the cost reads in units
of one DDPM@1000 image."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import torch

from sampler_claims.calibration import (
    REPEATS,
    UNIT_TEXT,
    Calibration,
    Cost,
    Rate,
    RunClock,
    Tally,
    calibrate,
    unit_from,
)


@dataclass
class FakeEngine:
    """An engine whose generations cost `per_eval` s per U-Net evaluation and `per_image` s per image on a fake
    clock; it records every request it was given."""

    per_eval: float = 0.002
    per_image: float = 0.01
    device: str = "cpu"
    max_batch: int | None = None
    compiled: bool = False
    compile_first_s: float = 0.0
    size: int = 32
    progress: object = None
    now: float = 0.0
    requests: list = field(default_factory=list)
    seen: set = field(default_factory=set)

    @property
    def pipe(self):  # noqa: ANN201
        return SimpleNamespace(unet=SimpleNamespace(dtype=torch.float32))

    def clock(self) -> float:
        return self.now

    def generate(self, req, cached=True):  # noqa: ANN001, ANN201
        assert cached is False, "the calibration never reads the cache"
        n = len(req.seeds)
        batch = n * (2 if req.guidance > 1 else 1)
        self.requests.append((n, req.steps, req.guidance))
        shape = (n, req.guidance > 1)
        self.now += req.steps * batch * self.per_eval + n * self.per_image
        if shape not in self.seen:  # the first call of a shape: allocator growth, or the compilation
            self.seen.add(shape)
            self.now += self.compile_first_s
        return SimpleNamespace(unet_batch_sizes=[batch] * req.steps)


def test_the_calibration_measures_the_roster_as_run_and_one_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured at the --seeds roster (the engine splits it into lanes as in the run) and at one seed, in
    interleaved pairs of 1 step and N steps, repeated: it recovers the per-evaluation and per-image costs."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    eng = FakeEngine()
    cal = calibrate(eng, 32, clock=eng.clock)
    shapes = {n for n, _, _ in eng.requests}
    assert shapes == {32, 1}
    assert cal.roster.batch == 32 and cal.single.batch == 1 and cal.lanes == 2
    assert cal.roster.per_eval == pytest.approx(0.002) and cal.single.per_eval == pytest.approx(0.002)
    assert cal.roster.per_image == pytest.approx(0.01) and cal.single.per_image == pytest.approx(0.01)
    assert cal.roster.repeats == REPEATS and cal.roster.spread == pytest.approx(0.0, abs=1e-9)
    roster_steps = [s for n, s, _ in eng.requests if n == 32][4:]  # after the warm-ups, the sizing call and the unmeasured long call
    assert roster_steps == [1, cal.roster.steps] * REPEATS and cal.roster.steps >= 2, "interleaved pairs"
    assert cal.compile_s == 0.0 and not cal.compiled
    assert cal.seconds == pytest.approx(eng.now)


def test_the_calibration_pays_and_measures_the_compilation(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --compile every shape the run compiles is warmed up in the calibration (one seed with and without
    guidance, the roster), and the excess of the first calls is the compilation it reports."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    eng = FakeEngine(compiled=True, compile_first_s=40.0)
    cal = calibrate(eng, 32, clock=eng.clock)
    assert (1, 1, 1.0) in eng.requests, "the batch of one (no guidance) is compiled apart"
    assert cal.compiled and cal.compile_s == pytest.approx(120.0)
    assert cal.roster.per_eval == pytest.approx(0.002)
    assert "torch.compile on: 120 s of compilation" in cal.describe()


def test_a_slow_model_calibrates_on_fewer_seeds_and_few_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """SD 1.5 on a CPU (here 1 s per evaluation): fewer seeds per lane, two steps, one repeat."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    eng = FakeEngine(per_eval=1.0, per_image=0.5)
    cal = calibrate(eng, 32, clock=eng.clock)
    assert cal.roster.batch == 2 and cal.roster.steps == 2 and cal.roster.repeats == 1
    assert cal.single.steps == 2 and cal.single.repeats == 1
    assert cal.roster.per_eval == pytest.approx(1.0)
    assert len(eng.requests) <= 12


def cal_of(per_eval_single: float = 0.004, per_eval_roster: float = 0.002) -> Calibration:
    return Calibration("cpu", "float32", 32, roster=Rate(per_eval_roster, 0.0, 32),
                       single=Rate(per_eval_single, 0.0, 1), seconds=3.0)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_time_left_is_the_remaining_evaluations_at_this_runs_rate() -> None:
    """One shape: time left = remaining evaluations / (evaluations done / seconds spent), whatever the plan said."""
    clock = Clock()
    cal = cal_of()
    run = RunClock(planned_s=20_000 * 0.002, planned_evals=20_000, calibration=cal, clock=clock)
    run.start(Tally())
    tally = Tally()
    tally.add(32, 5_000)
    clock.t += 30.0  # this machine is 3x slower than the calibration said
    seconds, note = run.left(tally)
    assert seconds == pytest.approx((20_000 - 5_000) / (5_000 / 30.0))
    assert note == "at this run's rate"
    assert run.text(tally) == "~1.5 min left of ~40 s planned"


def test_time_left_weights_each_shape_by_its_calibrated_cost() -> None:
    """The one-seed evaluations (timing rounds, one thread) cost twice a lane's here: the clock counts them so."""
    clock = Clock()
    cal = cal_of(per_eval_single=0.004, per_eval_roster=0.002)
    planned = 10_000 * 0.004 + 10_000 * 0.002
    run = RunClock(planned_s=planned, planned_evals=20_000, calibration=cal, clock=clock)
    run.start(Tally())
    tally = Tally()
    tally.add(1, 10_000)  # the single-seed half, at the calibrated speed
    clock.t += 40.0
    seconds, _ = run.left(tally)
    assert seconds == pytest.approx(20.0)


def test_time_left_is_never_zero_while_evaluations_remain() -> None:
    """The old clock said "~0 s left" for six minutes once the plan's seconds had passed; this one follows the
    work: 1 evaluation left of 20,000 after an hour is still more than 0 s."""
    clock = Clock()
    run = RunClock(planned_s=40.0, planned_evals=20_000, calibration=cal_of(0.002), clock=clock)
    run.start(Tally())
    assert run.left(Tally())[0] > 0, "before the first generation: the plan's estimate"
    clock.t += 3600.0
    assert run.left(Tally())[0] > 0, "long past the plan's seconds, nothing done yet: still not 0"
    tally = Tally()
    tally.add(32, 19_999)
    seconds, _ = run.left(tally)
    assert seconds is not None and seconds > 0
    tally.add(32, 1)
    assert run.left(tally) == (None, "the planned evaluations are done")
    tally.add(32, 500)  # more than the plan counted: says so, never 0 s
    seconds, note = run.left(tally)
    assert seconds is None and "past the planned evaluations" in note
    assert "0 s left" not in run.text(tally)


def test_the_clock_counts_from_its_start() -> None:
    """Generations before the first claim test (the calibration, tests/) are not the claims' work."""
    clock = Clock()
    before = Tally()
    before.add(32, 1_000)
    run = RunClock(planned_s=None, planned_evals=4_000, clock=clock)
    run.start(before)
    after = before.copy()
    after.add(32, 1_000)
    clock.t += 10.0
    assert run.left(after)[0] == pytest.approx(30.0)


def test_the_engine_tallies_what_it_generates(dummy_engine) -> None:
    from sampler_claims.engine import Request
    from sampler_claims.schedulers import DPM

    dummy_engine.generate(Request(DPM, 2, (0, 1, 2), "a red circle"))
    dummy_engine.generate(Request(DPM, 2, (0, 1, 2), "a red circle"))  # a cache hit: nothing evaluated
    dummy_engine.generate(Request(DPM, 3, (0,), "a red circle", guidance=1.0))
    t = dummy_engine.tally
    assert (t.roster_evals, t.roster_images, t.single_evals, t.single_images) == (12, 3, 3, 1)


def test_the_cost_line_is_in_units_of_one_ddpm_image() -> None:
    assert Cost(612.0, 12.0, "timing rounds").line() == (
        f"claims cost: 612 s = 51 units (1 unit = {UNIT_TEXT} = 12.0 s here)")
    assert "estimated from the calibration" in Cost(612.0, 12.0, "calibration").line()
    assert "units not measured" in Cost(612.0, None, None).line()
    assert Cost(34.0, 12.0, "timing rounds").line().startswith("claims cost: 34 s = 2.8 units")
    assert Cost(612.0, 12.0, "timing rounds").as_dict()["units"] == 51.0


def test_the_unit_is_the_timing_rounds_ddpm_1000_else_the_calibration() -> None:
    rounds = SimpleNamespace(wall={"ddpm@1000": [12.5, 11.8, 13.6], "dpm@20": [0.3]})
    assert unit_from(rounds, cal_of()) == (12.5, "timing rounds")
    cal = cal_of(per_eval_single=0.006)
    assert unit_from(None, cal) == (pytest.approx(2000 * 0.006), "calibration")
    assert unit_from(None, None) == (None, None)


def test_the_compilation_is_estimated_where_it_was_measured() -> None:
    from sampler_claims.calibration import COMPILE_GRAPHS, COMPILE_S_PER_GRAPH, compile_estimate

    assert compile_estimate("tiny", "cpu") == COMPILE_S_PER_GRAPH[("tiny", "cpu")] * COMPILE_GRAPHS
    assert compile_estimate("hub", "mps") is None


def test_finished_timing_rounds_count_as_planned() -> None:
    """On a machine slower than the calibration the timing rounds repeat short configurations fewer times than
    planned (each measurement lasts min_time): credited once they end, they leave no phantom work behind."""
    clock = Clock()
    cal = cal_of(per_eval_single=0.004)
    run = RunClock(planned_s=100.0, planned_evals=20_000, calibration=cal, clock=clock)
    run.start(Tally())
    tally = Tally()
    tally.add(1, 5_000)  # 20 s of planned work counted, but the plan gave the rounds 60 s
    run.credit(60.0 - tally.planned_seconds(cal))
    clock.t += 120.0
    seconds, _ = run.left(tally)
    assert seconds == pytest.approx(40.0 / (60.0 / 120.0))


def test_timing_repetitions_are_not_work_past_the_plan() -> None:
    """On a machine faster than the calibration the rounds repeat short configurations more often than the plan
    counts (one call per configuration and round): a run that made exactly its planned work plus those
    repetitions is done, not "past the planned evaluations" (a run's last line said +550 for its repetitions)."""
    clock = Clock()
    run = RunClock(planned_s=None, planned_evals=20_000, calibration=None, clock=clock)
    run.start(Tally())
    tally = Tally()
    tally.add(1, 5_550)  # the rounds: 5,000 planned evaluations and 550 repetitions
    run.credit(-550.0, -550)
    clock.t += 60.0
    tally.add(32, 15_000)  # the rest of the plan
    assert run.left(tally) == (None, "the planned evaluations are done")


def test_the_timing_rounds_planned_seconds_follow_the_plan() -> None:
    from sampler_claims import paths
    from sampler_claims.calibration import timing_planned
    from sampler_claims.plan import make_plan

    cal = cal_of(per_eval_single=0.004)
    plan = make_plan(["speedup"], seeds=4, model_source=str(paths.SD15_RANDOM), quality="checker", rounds=3,
                     calibration=cal)
    seconds, evaluations = timing_planned(cal, 3, str(paths.SD15_RANDOM))
    assert seconds == pytest.approx(plan.seconds)
    assert evaluations == plan.evaluations


def test_a_small_request_costs_what_its_batch_does() -> None:
    """The per-call model passes through both measured points (one seed on one thread, the roster in two lanes) and
    prices a request of 8 seeds (two lanes of 4) above the roster's rate per evaluation, as the run measured:
    a roster rate alone under-priced such requests by up to 40%."""
    cal = Calibration("cpu", "float32", 32, roster=Rate(0.0015, 0.0, 32), single=Rate(0.007, 0.0, 1),
                      seconds=3.0, lanes=2)
    assert cal.generation_seconds(32, 100) == pytest.approx(100 * 32 * 2 * 0.0015)
    assert cal.generation_seconds(1, 100) == pytest.approx(100 * 2 * 0.007)
    per_eval_8 = cal.generation_seconds(8, 100) / (100 * 8 * 2)
    assert 0.0015 < per_eval_8 < 0.007
    assert cal.generation_seconds(1, 100, guided=False) > 100 * 0.007, "guidance 1: half the batch, same fixed cost"
    over = Calibration("cpu", "float32", 32, roster=Rate(0.0015, 0.0, 32), single=Rate(0.007, 0.0, 1),
                       seconds=3.0, lanes=2, overhead=1.25)
    assert over.generation_seconds(32, 100) == pytest.approx(1.25 * cal.generation_seconds(32, 100))


def test_noisy_pairs_get_as_many_again_and_the_median_is_over_all():
    """A calibration in a slow minute: pairs that spread more than SPREAD_MORE are measured again (as many
    pairs), and the rate is the median of all of them; steady pairs are not."""
    from sampler_claims.calibration import SPREAD_MORE, _pair_rate

    def run(slow_pairs: set[int]) -> tuple[Rate, int]:
        calls = []

        def timed(steps: int) -> tuple[float, int]:
            calls.append(steps)
            pair = (len(calls) - 1) // 2
            factor = 2.0 if pair in slow_pairs else 1.0
            return steps * 0.01 * factor, steps * 10
        return _pair_rate(timed, 4, 20, REPEATS, more=True), len(calls) // 2

    steady, pairs = run(set())
    assert pairs == REPEATS and steady.repeats == REPEATS and steady.spread <= SPREAD_MORE
    noisy, pairs = run({0, 1})  # two slow pairs of five: a spread of 100%
    assert pairs == 2 * REPEATS and noisy.repeats == 2 * REPEATS
    assert noisy.per_eval == pytest.approx(0.001), "the median of ten pairs, eight of them steady"


OTHER_THEN_CLAIM = """
import time
import pytest

def test_harness_first():
    time.sleep(4)

@pytest.mark.claim("same-weights")
def test_claim():
    pytest.skip("nothing to measure here")
"""


def test_the_claims_cost_leaves_out_other_tests_of_the_session(pytester: pytest.Pytester, dummy_folder) -> None:
    """CI runs tests/ and claims/ in one session: the claims' cost counts the claims' part only (a harness test of
    4 s before them is not in it)."""
    pytester.makepyfile(OTHER_THEN_CLAIM)
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder), "--device",
                                           "cpu", "--seeds", "2", "--claims-report",
                                           str(pytester.path / "r" / "index.html"))
    import json

    env = json.loads((pytester.path / "r" / "claims.json").read_text())["environment"]
    left_out = env["duration_s"] - env["cost"]["run"]["seconds"]
    assert 3.9 <= left_out < 6.0, (left_out, result.stdout.str()[-2000:])
