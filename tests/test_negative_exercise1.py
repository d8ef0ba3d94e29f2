"""Negative controls of Exercise 1: every rule in sampler_claims.rules.exercise1 turns its verdict when the
property it checks is broken, through the same code path the claim uses, and confirms the known-good case.

Samplers are broken by monkeypatching diffusers on the fast random-weight pipeline; the statistical and
timing rules get synthetic per-seed scores and timing rounds whose truth is known.

The statistical claims' controls sit at their margins: they feed differences at 0.8x and 1.5x of the margin, of
both signs, through the same wiring as the claim's test (`decide_<claim>` in the rules module, with a quality Judge
built on the claim's catalogue entry, so the rule decides with the entry's margin). The differences are scaled from
the margin as the control states it (the named value the entry refers to, or the value it had when the control was
written), never from the entry itself: a control that followed the entry would move with an edited margin. So
halving or doubling a margin in the catalogue, turning an equivalence into a one-sided check or flipping a
difference's sign makes one of them fail.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from negative_support import PROMPT, SEED, STEPS, rounds, scores, shifted
from sampler_claims import registry
from sampler_claims.engine import Request
from sampler_claims.quality_claim import Judge
from sampler_claims.rules.exercise1 import (
    CfgCounts,
    Paths,
    StockRun,
    UnexpectedFailure,
    cfg_compute_doubles,
    cfg_counts,
    cfg_two_passes,
    decide_comparable_quality,
    decide_different_paths,
    decide_speedup,
    labels,
    lesson_code_runs,
    measure_paths,
    measure_stock_ddpm,
    pair_key,
    path_pairs,
    same_weights,
    speedup_analysis,
    speedup_timed,
    state_hash,
    stock_of,
)
from sampler_claims.tinyshapes import dataset
from sampler_claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, separation

T = {cid: registry.get(cid) for cid in registry.CLAIMS}
#: One deterministic sampler of the catalogue (cfg-two-passes' guided run), for the pipeline-level controls.
DDIM = T["cfg-two-passes"].run("guided").spec()


# ------------------------------------------------------------------------------ same-weights
@pytest.mark.negative_of("same-weights")
def test_same_weights_fails_when_sampling_changes_the_unet() -> None:
    """A 'scheduler swap' that nudges one U-Net weight must break the same-weights rule."""
    from sampler_claims.models import dummy_pipeline

    unet = dummy_pipeline().unet
    hashes = {"before": state_hash(unet), "after an honest swap": state_hash(unet)}
    assert same_weights(hashes).verdict == CONFIRMED
    with torch.no_grad():
        next(unet.parameters()).view(-1)[0] += 1e-3
    hashes["after a swap that retrains"] = state_hash(unet)
    v = same_weights(hashes)
    assert v.verdict == REFUTED and "after a swap that retrains" in v.reason


# ------------------------------------------------------------------------------ lesson-code-runs
@pytest.mark.negative_of("lesson-code-runs")
def test_lesson_code_runs_rule_follows_the_run(engine):
    """The claim's own stock run (its fixed run without the override) fails; the same at a few steps runs."""
    stock = stock_of(T["lesson-code-runs"].run("fixed"))
    broken = measure_stock_ddpm(engine, stock, PROMPT, SEED)  # fails at its first step: cheap
    fine = measure_stock_ddpm(engine, replace(stock, steps=STEPS), PROMPT, SEED)
    assert broken.error_type == "IndexError" and broken.first_timestep == 1000 and broken.unet_calls == 1
    assert lesson_code_runs(broken).verdict == REFUTED
    assert fine.ran and lesson_code_runs(fine).verdict == CONFIRMED


@pytest.mark.negative_of("lesson-code-runs")
def test_any_other_failure_is_an_error_not_a_refutation():
    oom = StockRun(1000, {"timestep_spacing": "leading", "steps_offset": 1}, 1000, 1000, "OutOfMemoryError",
                   "CUDA out of memory", 1)
    with pytest.raises(UnexpectedFailure, match="OutOfMemoryError"):
        lesson_code_runs(oom)
    index_inside = StockRun(1000, {}, 999, 1000, "IndexError", "list index out of range", 3)
    with pytest.raises(UnexpectedFailure):
        lesson_code_runs(index_inside)


# ------------------------------------------------------------------------------ comparable-quality
CQ = T["comparable-quality"]
#: The comparable margin as the entry's reference states it (registry.COMPARABLE, from the renderer's unit).
CQ_MARGIN = registry.COMPARABLE.value
#: The claim's samplers as its test names them (from its runs).
CQ_LABELS = list(labels(CQ.runs).values())
CONTROL = separation("score", scores(0.85), scores(0.55, seed=9), "DPM-Solver@200", "DPM-Solver@5")


def judge(claim, control=CONTROL, missing: str = "") -> Judge:
    """The checker's Judge on the claim's catalogue entry, as the quality harness builds it; its 'generations' are
    per-seed score lists here, so scoring one returns it."""
    return Judge("checker score", lambda g: None if g is None else list(g), control, lambda m: m, claim.t, missing)


def _comparable(by: float, control=CONTROL):
    """The first sampler at the base scores, the other two both moved by `by` on the same seeds: every pair with the
    first differs by -by (first minus other), the pair of the other two by about 0."""
    base = scores(0.85)
    first, *others = CQ_LABELS
    gens = {first: base, **{n: shifted(base, by, seed=2 + k) for k, n in enumerate(others)}}
    return decide_comparable_quality(judge(CQ, control), gens)


@pytest.mark.parametrize("sign", [1, -1], ids=["others-better", "others-worse"])
@pytest.mark.parametrize(("factor", "expected"), [(0.8, CONFIRMED), (1.5, REFUTED)], ids=["0.8x", "1.5x"])
@pytest.mark.negative_of("comparable-quality")
def test_comparable_quality_at_its_margin(sign, factor, expected):
    """Differences at 0.8x the catalogue's margin are comparable, at 1.5x not, whichever sampler is the better:
    a halved margin refutes the 0.8x case, a doubled one confirms the 1.5x case, and a one-sided check passes
    the 1.5x case of one sign."""
    v = _comparable(sign * factor * CQ_MARGIN)
    assert v.verdict == expected, v.reason


@pytest.mark.negative_of("comparable-quality")
def test_comparable_quality_is_inconclusive_when_the_metric_fails_its_control():
    base = scores(0.85)
    blind = separation("score", base, shifted(base, 0.0, sd=0.05), "good", "bad")
    v = _comparable(-1.5 * CQ_MARGIN, control=blind)
    assert v.verdict == INCONCLUSIVE and "failed its control" in v.reason


@pytest.mark.negative_of("comparable-quality")
def test_comparable_quality_without_a_checker_is_inconclusive():
    v = decide_comparable_quality(judge(CQ, None, "no checker here"), {n: None for n in CQ_LABELS})
    assert v.verdict == INCONCLUSIVE and "no checker" in v.reason


@pytest.mark.negative_of("comparable-quality")
def test_comparable_quality_on_real_scores_of_rendered_images():
    """The real checker on the world's renderer: correct renders are comparable; renders of the wrong
    prompts (good pictures, wrong content) are not, and the control separates blank images."""
    from sampler_claims.tinyshapes import checker

    batch = dataset.sample(0, 24)
    good = [np.stack([dataset.render(np.random.default_rng(k), a) for a in batch.attributes]) for k in (1, 2, 3)]

    def s(images, prompts=batch.captions):
        return [x.score for x in checker.adherence(list(images), list(prompts))["scores"]]

    control = separation("score", s(good[0]), s(np.full_like(good[0], 128)), "renders", "blank")
    a, b, c = CQ_LABELS
    ok = decide_comparable_quality(judge(CQ, control), {a: s(good[0]), b: s(good[1]), c: s(good[2])})
    assert ok.verdict == CONFIRMED, ok.reason
    wrong = decide_comparable_quality(judge(CQ, control), {a: s(good[0]), b: s(good[1]), c: s(good[2][::-1])})
    assert wrong.verdict == REFUTED, wrong.reason


# ------------------------------------------------------------------------------ different-paths
DP = T["different-paths"]
#: The entry's identity threshold and ordering margin as they were when these controls were written.
DP_IDENTITY_SSIM, DP_ORDERING_MARGIN = 0.999, 0.0
#: The claim's pairs from its runs: the ODE pair first, then the stochastic sampler with each ODE one.
DP_PAIRS = path_pairs(DP.runs)
(ODE_A, ODE_B), (NOISY, _) = DP_PAIRS[:2]


def _images(n: int = 6) -> dict[str, np.ndarray]:
    batch = dataset.sample(0, n)
    return {k: np.stack([dataset.render(np.random.default_rng(i), a) for a in batch.attributes])
            for i, k in enumerate((NOISY, ODE_A, "x"))}


def _paths(ode: list[float], others: list[float], seeds: int = 16) -> Paths:
    """Synthetic per-seed SSIM: the ODE pair at `ode`, the two pairs with the stochastic sampler at `others`."""
    keys = [pair_key(*p) for p in DP_PAIRS]
    return Paths(tuple(range(seeds)), {keys[0]: list(ode), keys[1]: list(others), keys[2]: list(others)})


@pytest.mark.negative_of("different-paths")
def test_different_paths_rule():
    im = _images()
    seeds = list(range(len(im[ODE_A])))
    rng = np.random.default_rng(1)
    near = np.clip(im[ODE_A] + rng.normal(0, 6, im[ODE_A].shape), 0, 255).round().astype(np.uint8)
    good = {ODE_A: im[ODE_A], ODE_B: near, NOISY: im[NOISY]}
    assert decide_different_paths(DP, measure_paths(good, seeds, DP_PAIRS)).verdict == CONFIRMED
    same = {n: im[ODE_A] for n in good}  # one sampler under three names
    v = decide_different_paths(DP, measure_paths(same, seeds, DP_PAIRS))
    assert v.verdict == REFUTED and "identical" in v.reason
    swapped = {ODE_A: im[ODE_A], ODE_B: im[NOISY], NOISY: near}  # the stochastic sampler next to one ODE one
    v = decide_different_paths(DP, measure_paths(swapped, seeds, DP_PAIRS))
    assert v.verdict == REFUTED, v.reason


@pytest.mark.parametrize(("factor", "expected"), [(0.8, REFUTED), (1.5, CONFIRMED)], ids=["0.8x", "1.5x"])
@pytest.mark.negative_of("different-paths")
def test_different_paths_at_its_identity_margin(factor, expected):
    """The ODE pair at 1 - 0.8 x (1 - max_identity_ssim) counts as the same image (refuted); at 1.5 x that distance
    it is a different one (confirmed, the ODE pair still the closer). A halved distance confirms the first case, a
    doubled one refutes the second."""
    gap = 1 - DP_IDENTITY_SSIM
    v = decide_different_paths(DP, _paths([1 - factor * gap] * 16, [0.6] * 16))
    assert v.verdict == expected, v.reason


@pytest.mark.parametrize(("by", "expected"), [(0.05, CONFIRMED), (-0.05, REFUTED), (0.3, CONFIRMED)],
                         ids=["ode-closer", "ode-farther", "ode-much-closer"])
@pytest.mark.negative_of("different-paths")
def test_different_paths_ordering_is_one_sided(by, expected):
    """The ordering is one-sided at the catalogue's ordering margin: the ODE pair closer than the closer pair with
    the stochastic sampler by any amount confirms (a two-sided check would refute 'much closer'), farther refutes
    (a flipped difference would confirm it)."""
    rng = np.random.default_rng(5)
    others = list(0.6 + rng.normal(0, 0.01, 16))
    ode = [o + DP_ORDERING_MARGIN + by + e for o, e in zip(others, rng.normal(0, 0.01, 16))]
    v = decide_different_paths(DP, _paths(ode, others))
    assert v.verdict == expected, v.reason


@pytest.mark.negative_of("different-paths")
def test_different_paths_on_one_sampler_three_times(engine):
    """The real pipeline, one scheduler under all three names: the rule must see identical images."""
    gen = engine.generate(Request(DDIM, STEPS, (SEED, SEED + 1), PROMPT))
    paths = measure_paths({n: gen.images for n in DP.runs}, [SEED, SEED + 1], DP_PAIRS)
    assert decide_different_paths(DP, paths).verdict == REFUTED


# ------------------------------------------------------------------------------ speedup
SP = T["speedup"]
TIMED = speedup_timed(SP)
#: U-Net calls of each timed run, by the name the rounds keep it under.
CALLS = {TIMED.names[n.removeprefix("timed-")]: r.steps for n, r in SP.runs.items()}


def _speedup(per_call: float, overhead: float, *, jitter: float = 0.01, n: int = 4, law=None):
    rng = np.random.default_rng(0)
    law = law or (lambda c: overhead + per_call * c)
    secs = {k: [law(c) * (1 + rng.normal(0, jitter)) for _ in range(n)] for k, c in CALLS.items()}
    return decide_speedup(SP, speedup_analysis(rounds(secs, CALLS), TIMED))


@pytest.mark.negative_of("speedup")
def test_speedup_confirms_time_linear_in_calls_with_small_overhead():
    assert _speedup(0.01, 0.005).verdict == CONFIRMED


@pytest.mark.parametrize("law", ["equal", "quadratic", "overhead-dominated"])
@pytest.mark.negative_of("speedup")
def test_speedup_refutes_time_not_driven_by_calls(law):
    f = {"equal": lambda c: 1.0, "quadratic": lambda c: 1e-5 * c * c,
         "overhead-dominated": lambda c: 5.0 + 0.01 * c}[law]
    v = _speedup(0, 0, law=f)
    assert v.verdict == REFUTED, v.reason


@pytest.mark.negative_of("speedup")
def test_speedup_under_heavy_noise_is_inconclusive_not_refuted():
    v = _speedup(0.01, 0.005, jitter=0.6, n=3)
    assert v.verdict == INCONCLUSIVE, v.reason


@pytest.mark.negative_of("speedup")
def test_speedup_analysis_recovers_the_overhead():
    secs = {k: [0.3 + 0.002 * c] * 3 for k, c in CALLS.items()}
    s = speedup_analysis(rounds(secs, CALLS), TIMED)
    assert s.intercept_s == pytest.approx(0.3) and s.per_call_s == pytest.approx(0.002)
    assert all(s.ratios[n].mean < s.call_ratio[n] for n in s.ratios)


@pytest.mark.negative_of("speedup")
def test_a_sampler_that_secretly_runs_extra_unet_calls_moves_speedup():
    """Through the timing rounds themselves (calibration, repetitions, median): DPM-Solver@20 does twice the U-Net
    work behind the counter's back. The counted call ratio still reads 50; the time ratio must fall out of the
    'about 50x' band, so the claim turns from confirmed to refuted on time alone."""
    from negative_support import TimedEngine

    from sampler_claims.timing import run_rounds, timed_configs

    configs = {n: r for n, r in timed_configs(PROMPT, SEED).items() if n in TIMED.names.values()}
    fastest = max(SP.t("lesson_factor"), key=SP.t("lesson_factor").get)  # DPM-Solver@20, 'about 50x'
    rng = np.random.default_rng(3)

    def measured(extra):
        # honest DPM-Solver@20 at ~45x, inside the 'about 50x' band [31.6, 79] with room for the rounds' interval;
        # with twice the work it falls to ~24x, below it
        engine = TimedEngine(configs, overhead=0.0005, per_sample=0.0001, extra=extra,
                             noise=lambda name, k: 1 + rng.normal(0, 0.02))
        r = run_rounds(engine, configs, SP.t("timing_rounds"), min_time=0.05)
        return speedup_analysis(r, TIMED)

    honest, secret = measured({}), measured({TIMED.names[fastest]: 2})
    assert secret.call_ratio[fastest] == honest.call_ratio[fastest] == SP.t("lesson_factor")[fastest]
    assert secret.ratios[fastest].mean < 0.6 * honest.ratios[fastest].mean
    assert decide_speedup(SP, honest).verdict == CONFIRMED and decide_speedup(SP, secret).verdict == REFUTED


# ------------------------------------------------------------------------------ cfg-two-passes
@pytest.mark.negative_of("cfg-two-passes")
def test_cfg_rule_confirms_two_passes_per_step():
    two = CfgCounts(STEPS, 1, [1] * (2 * STEPS), [1] * STEPS)
    assert cfg_two_passes(two).verdict == CONFIRMED and cfg_compute_doubles(two)


@pytest.mark.negative_of("cfg-two-passes")
def test_cfg_rule_on_the_real_pipeline(engine):
    cfg = engine.generate(Request(DDIM, STEPS, (SEED,), PROMPT, guidance=7.5))
    plain = engine.generate(Request(DDIM, STEPS, (SEED,), PROMPT, guidance=1.0))
    c = cfg_counts(cfg, plain)
    v = cfg_two_passes(c)
    assert v.verdict == REFUTED and c.cfg_calls == STEPS and cfg_compute_doubles(c), v.reason


@pytest.mark.negative_of("cfg-two-passes")
def test_cfg_compute_does_not_double_when_guidance_is_ignored():
    ignored = CfgCounts(STEPS, 1, [1] * STEPS, [1] * STEPS)
    assert not cfg_compute_doubles(ignored) and cfg_two_passes(ignored).verdict == REFUTED
