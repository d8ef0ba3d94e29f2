"""The registry is what runs: change a claim's quality control, convergence reference or timing grid in its
registry entry, and what the session generates and times changes with it (no constant elsewhere repeats them)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from sampler_claims import paths, registry
from sampler_claims.quality import Quality, Roster
from sampler_claims.registry import Control, Run, Threshold
from sampler_claims.session import ClaimsSession
from sampler_claims.timing import timed_configs
from sampler_claims.verdict import POWER, REFUTED, t_interval


class RecordingEngine:
    """Records (scheduler, steps) of every generation it is asked for; latents shrink with the step count."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def generate(self, request, cached: bool = True):  # noqa: ANN001, ANN201
        self.asked.append((request.scheduler.name, request.steps))
        n = len(request.seeds)
        latents = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 4, 2, 2) / request.steps
        return SimpleNamespace(request=request, latents=latents, images=None)


ROSTER = Roster(("a red circle",) * 4, (0, 1, 2, 3))


def _session(monkeypatch: pytest.MonkeyPatch, mode: str) -> ClaimsSession:
    session = ClaimsSession(SimpleNamespace(model_kind="tiny", device="cpu"), quality_arg=mode)  # type: ignore[arg-type]
    session._quality = Quality(True, mode, clip_error="no CLIP in this test") if mode == "clip" else Quality(True)
    # Scores that rise with the step count, so that any good/bad pair separates.
    monkeypatch.setattr(Quality, "scores", lambda self, gen: [gen.request.steps + 0.1 * k for k in range(4)])
    return session


def _set(monkeypatch: pytest.MonkeyPatch, claim_id: str, name: str, value: object) -> None:
    monkeypatch.setitem(registry.get(claim_id).thresholds, name, Threshold(value, "changed by the test"))


def test_the_quality_control_that_runs_is_the_claims_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    claim = registry.get("no-gain-past-25")
    session, engine = _session(monkeypatch, "checker"), RecordingEngine()
    control, good, bad = session.quality_control(claim, engine, ROSTER)
    assert engine.asked == [("dpm-solver", 200), ("dpm-solver", 5)]
    assert (control.good, control.bad) == ("DPM-Solver@200", "DPM-Solver@5")

    _set(monkeypatch, claim.id, "quality_control", Control("ddim", 40, 3))
    engine.asked.clear()
    control, good, bad = session.quality_control(claim, engine, ROSTER)
    assert engine.asked == [("ddim", 40), ("ddim", 3)]
    assert (control.good, control.bad) == ("DDIM@40", "DDIM@3") and good.request.steps == 40


def test_the_convergence_reference_that_runs_is_the_claims_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    claim = registry.get("sweet-spot")
    session, engine = _session(monkeypatch, "clip"), RecordingEngine()
    basis = session.convergence(claim, engine, ROSTER)
    assert basis.reference_label == "DPM-Solver@200"
    assert set(engine.asked) == {("dpm-solver", s) for s in (200, 100, 5, 20)}

    _set(monkeypatch, claim.id, "convergence_reference", Run("dpm-solver", 150))
    _set(monkeypatch, claim.id, "reference_check", Control("dpm-solver", 75, 10))
    engine.asked.clear()
    basis = session.convergence(claim, engine, ROSTER)
    assert basis.reference_label == "DPM-Solver@150" and basis.reference.request.steps == 150
    assert (basis.check.coarser, basis.check.bad) == ("DPM-Solver@75", "DPM-Solver@10")
    assert set(engine.asked) == {("dpm-solver", s) for s in (150, 75, 10, 20, 5)}
    # A claim whose entry names no reference gets none.
    assert session.convergence(registry.get("ddpm-10-worse"), engine, ROSTER) is None


def test_the_timing_grid_that_runs_is_the_catalogue_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rounds time the runs the timing claims declare (repeat = "rounds"), each once: changing linear-time's
    declared runs changes what is timed."""
    from dataclasses import replace as _replace

    from sampler_claims.runs import ROUNDS

    assert sorted(int(n[4:]) for n in timed_configs("p", 0) if n.startswith("dpm@")) == [5, 10, 20, 25, 50, 100, 200]
    lt = registry.get("linear-time")
    template = lt.run("timed-dpm-solver-5")
    runs = {f"timed-dpm-solver-{s}": _replace(template, name=f"timed-dpm-solver-{s}", steps=s) for s in (4, 8, 16, 32)}
    monkeypatch.setitem(registry.CLAIMS, "linear-time", _replace(lt, runs=runs))
    configs = timed_configs("p", 0)
    assert sorted(int(n[4:]) for n in configs if n.startswith("dpm@")) == [4, 8, 16, 20, 25, 32]
    assert {"ddim@50", "ddim@50 guidance 1", "ddpm@1000"} <= set(configs)
    assert all(r.repeat == ROUNDS for r in runs.values())


def test_an_unknown_threshold_name_lists_the_names_that_exist() -> None:
    with pytest.raises(KeyError, match="has no threshold 'min_r'; it has: min_r2, max_overhead_share"):
        registry.get("linear-time").t("min_r")
    with pytest.raises(TypeError, match="not a Control"):
        registry.get("linear-time").t("min_r2", Control)


def test_the_claims_that_pair_with_ddpm_run_on_the_longer_roster() -> None:
    """DDPM_SEEDS decides the roster of exactly the claims whose comparison pairs with stochastic DDPM; the
    --seeds that settles one of them is the seeds it needs over the factor."""
    factor = registry.DDPM_SEEDS.value
    longer = {cid for cid, c in registry.CLAIMS.items() if registry.claim_seeds(c, 32) == 32 * factor}
    assert longer == {"comparable-quality", "different-paths", "ddpm-50-step-count", "ddpm-10-worse",
                      "ddpm-intermediates-noisier"}
    assert registry.seeds_option(registry.get("comparable-quality"), 101) == -(-101 // factor)
    # sweet-spot's scored statements run on SCORE_SEEDS x the roster; a claim with neither stays on the roster.
    sweet = registry.get("sweet-spot")
    assert registry.claim_seeds(sweet, 32) == 32 * registry.SCORE_SEEDS.value
    assert registry.seeds_option(sweet, 101) == -(-101 // registry.SCORE_SEEDS.value)
    assert registry.claim_seeds(registry.get("no-gain-past-25"), 32) == 32
    assert not any(all(k in c.thresholds for k in registry.LONGER_ROSTER) for c in registry.CLAIMS.values())


def _held_out(*files: str) -> list[dict]:
    """quality.json-shaped files of the embedded model's held-out prompt-seed pairs (never the roster)."""
    return [json.loads((paths.TINY_MODEL / f).read_text()) for f in files]


def _resampled(diffs, n: int, draws: int = 4000):  # noqa: ANN001, ANN202
    """Mean and 95% t half-width of `draws` resamples of n pairs, for each row of paired differences [k, pairs]."""
    x = diffs[:, np.random.default_rng(0).integers(0, diffs.shape[1], size=(draws, n))]  # [k, draws, n]
    return x.mean(-1), stats.t.ppf(0.975, n - 1) * x.std(-1, ddof=1) / np.sqrt(n)


def test_the_ddpm_roster_argument_holds_on_the_held_out_pairs() -> None:
    """DDPM_SEEDS's argument, recomputed from the embedded model's held-out pairs (quality.json's and the stage-5
    gate's, never the roster): at DDPM_SEEDS x 32 seeds, 4,000 resampled draws decide comparable-quality (each
    paired difference's 95% interval inside the comparable margin, or one wholly outside it) at least 95% of the
    time; at 32 and at 1.5 x 32 they do not, so the factor is the fewest that reaches the target."""
    names = ("DDPM@1000 (trailing)", "DDIM@50", "DPMSolverMultistep@20")
    held_out = [d["configs"] for d in _held_out("quality.json", "history/stage5_gate.json")]
    ddpm, ddim, dpm = (np.concatenate([np.asarray(c[k]["per_pair_score"]) for c in held_out]) for k in names)
    assert ddpm.size == 384
    diffs = np.stack([ddpm - ddim, ddpm - dpm, ddim - dpm])
    margin = registry.COMPARABLE.value

    def decided(n: int) -> float:
        mean, half = _resampled(diffs, n)
        inside = ((mean - half > -margin) & (mean + half < margin)).all(0)
        outside = ((mean + half < -margin) | (mean - half > margin)).any(0)
        return float((inside | outside).mean())

    assert decided(32 * registry.DDPM_SEEDS.value) >= 0.95
    assert decided(48) < 0.95 and decided(32) < 0.95


def test_sweet_spots_expected_verdict_follows_the_held_out_pairs() -> None:
    """sweet-spot's expected verdict and reason, recomputed from held-out pairs (quality.json's and
    history/stage5_dpm5_heldout.json's, never the roster): the "5 steps garbled" gap score@200 - score@5 lies wholly
    under the much-worse margin, so the part, and with it the claim, is expected refuted; 32 seeds decide it in well
    under half of resampled draws, and SCORE_SEEDS is the fewest multiple of them that decides it with POWER."""

    claim = registry.get("sweet-spot")
    gap = np.concatenate([np.asarray(d["reference"]["per_pair_score"])
                          - np.asarray(d["configs"]["DPMSolverMultistep@5"]["per_pair_score"])
                          for d in _held_out("quality.json", "history/stage5_dpm5_heldout.json")])
    assert gap.size == 384
    margin = claim.t("garbled_margin")
    assert t_interval(gap).high < margin and claim.expected["tiny"] == REFUTED

    def decided(n: int) -> float:
        mean, half = _resampled(gap[None], n)
        return float(((mean - half > margin) | (mean + half < margin)).mean())

    assert decided(32) < 0.5
    # SCORE_SEEDS is the fewest multiple of the default roster that decides the part with the suite's power.
    factor = claim.t("score_seeds", int)
    assert decided(32 * factor) >= POWER > decided(32 * (factor - 1))
