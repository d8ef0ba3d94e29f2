"""The timing rounds' machinery (sampler_claims.timing): calibrated repetitions, the per-round statistic,
interleaving, and the registry argument that sizes rounds and repetitions. A fake engine with known per-call
times stands in for the pipeline, so every check is exact and fast."""
from __future__ import annotations

import math
import numpy as np
import pytest
from scipy import stats

from negative_support import TimedEngine

from sampler_claims import registry
from sampler_claims.verdict import rounds_needed
from sampler_claims.timing import (
    LESSON_TIMED,
    Rounds,
    repetitions,
    round_statistic,
    run_rounds,
    timed_configs,
    timing_plan,
    unet_samples,
)


CONFIGS = timed_configs("a red circle", 0)


def test_repetitions_are_pytest_benchmarks_estimate():
    assert repetitions(0.1, 1.0) == 10 and repetitions(0.3, 1.0) == 4 and repetitions(1.2, 1.0) == 1
    assert repetitions(0.0, 1.0) == 1 and repetitions(float("nan"), 1.0) == 1


def test_rounds_needed_is_the_smallest_t_interval_under_the_width():
    n = rounds_needed(0.1, 0.12)
    half = lambda k: stats.t.ppf(0.975, k - 1) * 0.1 / math.sqrt(k)  # noqa: E731
    assert half(n) <= 0.12 < half(n - 1)
    with pytest.raises(ValueError, match="no number of rounds"):
        rounds_needed(1.0, 1e-3)


def test_round_statistic_is_robust_to_one_stretched_call():
    assert round_statistic([0.1, 0.1, 0.1, 0.9]) == pytest.approx(0.1)
    assert round_statistic([0.1, 0.2, 0.3], "min") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="median, min or mean"):
        round_statistic([0.1], "mode")


def test_the_first_call_calibrates_and_counts():
    """Each measurement lasts min_time and no more than needed; calibrating costs no call of its own, and
    DDPM@1000 (longer than min_time in one call) runs exactly once per round."""
    engine = TimedEngine(CONFIGS, per_sample=0.003)  # DPM-Solver@200 alone lasts 1.2 s
    r = run_rounds(engine, CONFIGS, 2, min_time=1.0)
    for n, k in r.reps.items():
        one = engine.overhead + engine.per_sample * unet_samples(CONFIGS[n])
        assert k * one >= 1.0 and (k == 1 or (k - 1) * one < 1.0), n
        assert r.calibration_s[n] == pytest.approx(one)
    assert r.reps["dpm@5"] > 1 and r.reps[LESSON_TIMED["ddpm"]] == 1
    assert engine.calls.count(LESSON_TIMED["ddpm"]) == 2
    assert len(engine.calls) == 1 + 2 * sum(r.reps.values())  # one warm-up call, then the repetitions only


def test_short_configurations_straddle_the_long_ones():
    """Half of a short configuration's calls come before DDPM@1000 in the round, half after."""
    engine = TimedEngine(CONFIGS, per_sample=0.003)
    run_rounds(engine, CONFIGS, 1, min_time=1.0)
    ddpm = engine.calls.index(LESSON_TIMED["ddpm"])
    before, after = engine.calls[1:ddpm].count("dpm@5"), engine.calls[ddpm:].count("dpm@5")
    assert before >= 1 and after >= 1 and abs(before - after) <= 1


def test_rounds_interleave_and_keep_the_median_of_the_repetitions():
    # Every 3rd call of a configuration is stretched 5x: the median must not see it.
    engine = TimedEngine(CONFIGS, noise=lambda name, k: 5.0 if k % 3 == 0 else 1.0)
    r = run_rounds(engine, CONFIGS, 3, min_time=1.0)
    assert r.rounds == 3 and r.order[1][0] == r.names[1] and r.order[2][0] == r.names[2]
    dpm5 = "dpm@5"
    one = engine.overhead + engine.per_sample * unet_samples(CONFIGS[dpm5])
    assert r.reps[dpm5] >= 3 and all(len(calls) == r.reps[dpm5] for calls in r.cpu_calls[dpm5])
    assert r.seconds(dpm5) == pytest.approx([one] * 3)
    d = r.as_dict()
    assert d["statistic"] == "median" and d["repetitions"][dpm5] == r.reps[dpm5] and d["min_time_s"] == 1.0


def test_without_min_time_every_configuration_is_timed_once_per_round():
    engine = TimedEngine(CONFIGS)
    r = run_rounds(engine, CONFIGS, 2)
    assert set(r.reps.values()) == {1} and len(engine.calls) == 1 + 2 * len(CONFIGS)


def test_made_up_rounds_still_build():
    r = Rounds("cpu", ["a"], {"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, {"a": 1}, {"a": [1]}, [["a"], ["a"]])
    assert r.rounds == 2 and r.as_dict()["repetitions"] == {"a": 1}


# ------------------------------------------------------------------------------ the registry's argument
def test_the_plan_is_the_registry_entry_shared_by_every_timing_claim(monkeypatch: pytest.MonkeyPatch):
    timing = [c for c in registry.CLAIMS.values() if c.kind == "timing" or c.group == "timing"]
    assert {c.id for c in timing} == {"speedup", "linear-time", "cfg-two-passes", "recommended-default"}
    for c in timing:
        for name in ("timing_rounds", "min_time_s", "round_statistic"):
            assert c.t(name) == registry.TIMING[name].value, (c.id, name)
    assert timing_plan() == {"rounds": registry.TIMING["timing_rounds"].value,
                             "min_time_s": registry.TIMING["min_time_s"].value,
                             "statistic": registry.TIMING["round_statistic"].value}


def test_the_rounds_follow_from_the_widths_the_margins_need():
    """The registry's rounds are the fewest whose interval is as narrow as each claim needs, at the pilot's
    per-round spread: the argument is executable, so a changed margin or pilot changes the rounds with it."""
    need = registry.TIMING_WIDTHS
    assert registry.TIMING["timing_rounds"].value == max(
        rounds_needed(w["pilot_sd"], w["half_width"]) for w in need.values())
    about = registry.get("speedup").t("about_factor")
    assert need["speedup"]["half_width"] == pytest.approx(math.log(about) / 2, abs=1e-3)
    assert need["linear-time"]["half_width"] == pytest.approx(
        registry.get("linear-time").t("max_overhead_share") / 2)
    assert need["recommended-default"]["half_width"] == pytest.approx(
        registry.get("recommended-default").t("max_time_share") / 2)


def test_the_replication_script_reads_a_runs_verdicts_and_intervals(tmp_path):
    """scripts/timing_replication.py's summary of one run: each timing claim's verdict and the intervals, and the
    time half of recommended-default decided by the claim's own bound."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import timing_replication

    claims = {"claims": [
        {"id": "speedup", "verdict": "confirmed", "metrics": {"speedup": {"ratios": {
            "dpm-solver": {"mean": 47.0, "ci95": [45.0, 49.0]}}}}},
        {"id": "linear-time", "verdict": "confirmed", "metrics": {"fits": {
            "overhead_share": [0.03, 0.05, 0.04, 0.02], "r2": [0.999, 0.9995, 0.9992, 0.9991]}}},
        {"id": "cfg-two-passes", "verdict": "refuted", "metrics": {"cfg": {"cfg_calls": 50, "steps": 50,
                                                                          "time_ratio": 1.3}}},
        {"id": "recommended-default", "verdict": "inconclusive", "metrics": {"time_shares": {
            "20": [0.02, 0.021, 0.022, 0.02], "25": [0.6, 0.7, 0.65, 0.62]}}},
    ]}
    (tmp_path / "claims.json").write_text(json.dumps(claims))
    out = timing_replication.summarise(tmp_path / "claims.json", tmp_path / "benchmarks.json")
    assert out["speedup"] == ("confirmed", "dpm-solver 47.0x [45.0, 49.0]")
    assert out["linear-time"][0] == "confirmed" and "overhead share +0.035" in out["linear-time"][1]
    assert out["recommended-default (time half)"][0] == "refuted"  # 25 steps at 65% of DDPM@1000's time
    assert "rounds" not in out  # no benchmarks.json: no rounds line


def test_on_cuda_synchronised_wall_time_decides_and_calibrates():
    """The same calibration on CUDA, on the clock that decides there: the engine's synchronised wall time (the
    host's CPU time of a GPU call says nothing about the GPU's work)."""
    engine = TimedEngine(CONFIGS)
    engine.device = "cuda"
    generate = engine.generate

    def gpu_generate(req, cached=True):  # noqa: ANN001, ANN202
        gen = generate(req, cached)
        gen.cpu_seconds = 1e-4  # the host only queues kernels
        return gen

    engine.generate = gpu_generate
    r = run_rounds(engine, CONFIGS, 2, min_time=1.0)
    assert r.clock == "wall"
    one = engine.overhead + engine.per_sample * unet_samples(CONFIGS["dpm@5"])
    assert r.reps["dpm@5"] == math.ceil(1.0 / one) and r.seconds("dpm@5") == pytest.approx([one, one])
