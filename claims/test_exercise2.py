"""Exercise 2: DDIM determinism against DDPM stochasticity, at the lesson's 50 steps and 3 runs, the
lesson's note that DDPM@50's lower quality is about step count, and interpolation in z_T space.

Every identity run here is a real, uncached pipeline call (explicit generators bypass the cache):
identity between runs is the measurement, so a cache hit would prove nothing. Each configuration runs
once per session through a module-scoped fixture and is shared by every claim that reads it.
"""
from __future__ import annotations

import pytest

from sampler_claims import registry
from sampler_claims.engine import Request
from sampler_claims.quality import match_rates
from sampler_claims.rules.exercise2 import (
    INTERPOLATION_COLUMNS,
    MODES,
    STEP_COUNT_CONFIGS,
    TABLE_COLUMNS,
    Runs,
    ddim_deterministic,
    ddim_depends_only_on_zT,
    ddim_eta,
    ddpm_50_step_count,
    ddpm_noise_draws,
    ddpm_reproducible_when_reseeded,
    ddpm_stochastic,
    last_step_variance,
    measure_interpolation,
    measure_runs,
    noise_draws,
    seed_pairs,
    zt_interpolation,
)
from sampler_claims.verdict import inconclusive
from sampler_claims.session import determinism_state
from sampler_claims.schedulers import DDIM, DDPM, SchedulerSpec

pytestmark = pytest.mark.exercise2

#: The lesson's Exercise 2 setting: DDIM and DDPM straight from the stock config, 50 steps, 3 runs.
STEPS = 50
RUNS: int = registry.get("ddim-deterministic").t("runs")


def _request(prompts, spec: SchedulerSpec, *, eta: float = 0.0, fixed_zT: bool = False) -> Request:
    prompt, seed = prompts.single("exercise2")
    return Request(spec, STEPS, (seed,), prompt, eta=eta, latents_seed=seed if fixed_zT else None)


@pytest.fixture(scope="module")
def ddim_reseeded(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDIM), RUNS, "reseed", "DDIM (eta=0), re-seeded")


@pytest.fixture(scope="module")
def ddpm_shared(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDPM), RUNS, "shared", "DDPM, one generator seeded once")


@pytest.fixture(scope="module")
def ddpm_reseeded(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDPM), RUNS, "reseed", "DDPM, re-seeded")


@pytest.fixture(scope="module")
def ddim_fixed_zT(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDIM, fixed_zT=True), RUNS, "shared",
                        "DDIM (eta=0), same z_T, generator advancing")


@pytest.fixture(scope="module")
def ddpm_fixed_zT(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDPM, fixed_zT=True), RUNS, "shared",
                        "DDPM, same z_T, generator advancing")


@pytest.fixture(scope="module")
def ddim_eta1_fixed_zT(engine, prompts) -> Runs:
    return measure_runs(engine, _request(prompts, DDIM, eta=1.0, fixed_zT=True), RUNS, "shared",
                        "DDIM (eta=1), same z_T, generator advancing")


def show(claim, r: Runs) -> None:
    """The runs in a row, and their pairwise identity and difference."""
    claim.images(f"{r.label}: {MODES[r.mode]}", [x.image for x in r.runs],
                 [f"run {i + 1}: {x.draws} random draws, {x.unet_calls} U-Net calls" for i, x in enumerate(r.runs)])
    claim.table(f"{r.label}: run against run", TABLE_COLUMNS, r.table())


def record(claim, *runs: Runs) -> None:
    claim.metric(**{r.label: r for r in runs}, steps=STEPS, runs=RUNS)
    for r in runs:
        show(claim, r)


def mean_diff(r: Runs) -> str:
    pairs = r.pairs()
    same = sum(d.identical for _, _, d, _ in pairs)
    return f"{same}/{len(pairs)} identical, mean |diff| {min(d.mean_abs for _, _, d, _ in pairs):.2f}/255"


# ------------------------------------------------------------------------------------ the claims
@pytest.mark.claim("ddim-deterministic")
def test_ddim_deterministic(claim, ddim_reseeded, settings):
    v = ddim_deterministic(ddim_reseeded)
    record(claim, ddim_reseeded)
    claim.metric(device=settings.device, dtype=settings.dtype_name, determinism=determinism_state())
    claim.key(f"DDIM re-seeded: {mean_diff(ddim_reseeded)} (on {settings.device}, {settings.dtype_name})")
    on = determinism_state()["deterministic_algorithms"]
    claim.decide(v.on(f"device {settings.device}, dtype {settings.dtype_name}, deterministic algorithms on: {on}"))


@pytest.mark.claim("ddpm-stochastic")
def test_ddpm_stochastic(claim, ddpm_shared):
    record(claim, ddpm_shared)
    claim.key(f"DDPM, one generator: {mean_diff(ddpm_shared)}")
    claim.decide(ddpm_stochastic(ddpm_shared, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


@pytest.mark.claim("ddim-depends-only-on-zT")
def test_ddim_depends_only_on_zT(claim, ddim_fixed_zT, ddpm_fixed_zT):
    record(claim, ddim_fixed_zT, ddpm_fixed_zT)
    claim.key(f"same z_T: DDIM {mean_diff(ddim_fixed_zT)}; DDPM {mean_diff(ddpm_fixed_zT)}")
    claim.decide(ddim_depends_only_on_zT(ddim_fixed_zT, ddpm_fixed_zT, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


@pytest.mark.claim("ddpm-noise-draws")
def test_ddpm_noise_draws(claim, engine, ddpm_shared, ddim_reseeded):
    t_last, var = last_step_variance(engine, DDPM, STEPS)
    m = noise_draws(ddpm_shared.runs[0], ddim_reseeded.runs[0], var)
    claim.metric(draws=m, per_run_ddpm=[r.draws for r in ddpm_shared.runs],
                 per_run_ddim=[r.draws for r in ddim_reseeded.runs])
    claim.table("Random draws (diffusers randn_tensor calls) per pipeline call, 50 steps",
                ["sampler", "per call", "z_T", "per-step total", "steps drawing", "last step draws"],
                [["DDPM", m.ddpm_draws, m.ddpm_zT, sum(m.ddpm_step_draws), f"{m.steps_drawing}/{m.steps}",
                  m.last_step_draws],
                 ["DDIM (eta=0)", m.ddim_draws, m.ddim_zT, sum(m.ddim_step_draws),
                  f"{sum(1 for d in m.ddim_step_draws if d)}/{len(m.ddim_step_draws)}",
                  bool(m.ddim_step_draws and m.ddim_step_draws[-1])]])
    claim.series("Random draws per step", list(range(1, m.steps + 1)),
                 {"DDPM": m.ddpm_step_draws, "DDIM (eta=0)": m.ddim_step_draws}, xlabel="step", ylabel="draws")
    variance = "0" if var <= 1e-12 else f"{var:.2g}"
    claim.key(f"DDPM {m.ddpm_draws} draws/call ({m.ddpm_zT} z_T + {sum(m.ddpm_step_draws)} per-step; the last step "
              f"{'draws' if m.last_step_draws else 'does not draw'}, at variance {variance}); DDIM(eta=0) "
              f"{m.ddim_draws}")
    claim.decide(ddpm_noise_draws(m, min_draws=claim.t("min_draws")))


@pytest.mark.claim("ddpm-reproducible-when-reseeded")
def test_ddpm_reproducible_when_reseeded(claim, ddpm_reseeded):
    record(claim, ddpm_reseeded)
    claim.key(f"DDPM re-seeded: {mean_diff(ddpm_reseeded)}")
    claim.decide(ddpm_reproducible_when_reseeded(ddpm_reseeded))


@pytest.mark.claim("ddim-eta")
def test_ddim_eta(claim, ddim_eta1_fixed_zT, ddim_fixed_zT):
    record(claim, ddim_fixed_zT, ddim_eta1_fixed_zT)
    claim.key(f"same z_T, advancing generator: eta=0 {mean_diff(ddim_fixed_zT)}; eta=1 {mean_diff(ddim_eta1_fixed_zT)}")
    claim.decide(ddim_eta(ddim_eta1_fixed_zT, ddim_fixed_zT, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


# ------------------------------------------------------------------------------------ ddpm-50-step-count
@pytest.mark.claim("ddpm-50-step-count")
def test_ddpm_50_step_count(claim, engine, claim_roster, quality_claim):
    q = quality_claim
    gens = {name: engine.generate(claim_roster.request(spec, steps)) for name, (spec, steps) in STEP_COUNT_CONFIGS.items()}
    margin = q.margin("comparable_margin")
    shown = min(3, len(claim_roster))
    claim.images(f"Same seeds: {', '.join(gens)}", [g.image(k) for k in range(shown) for g in gens.values()],
                 [f"{n}, seed {claim_roster.seeds[k]}" for k in range(shown) for n in gens])

    def rule(judge):
        return ddpm_50_step_count({n: judge.scores(g) for n, g in gens.items()}, judge.control,
                                  margin=judge.margin("comparable_margin"),
                                  step_effect_margin=judge.t("step_effect_margin"), missing=judge.missing)

    q.decide_if_no_metric(rule)
    scores = {name: q.scores(g) for name, g in gens.items()}
    means = {n: sum(v) / len(v) for n, v in scores.items()}
    rates = match_rates(q.quality, gens)
    claim.metric(seeds=len(claim_roster), scores=scores, mean_score=means, control=q.control, metric=q.metric,
                 margin=margin, match_rate=rates)
    claim.table(f"Mean {q.metric} over {len(claim_roster)} seeds", ["sampler", "mean score", "match rate"],
                [[n, round(means[n], 4), "n/a" if rates is None else round(rates[n], 3)] for n in gens])
    claim.key(" / ".join(f"{n} {m:.3f}" for n, m in means.items()))
    q.decide(rule, {"comparable": "comparable_margin"})


# ------------------------------------------------------------------------------------ zt-interpolation
@pytest.mark.claim("zt-interpolation")
def test_zt_interpolation(claim, engine, roster):
    pairs, texts = seed_pairs(roster.seeds, roster.prompts)
    if not pairs:
        claim.decide(inconclusive("zt-interpolation needs at least 2 roster seeds (--seeds 2 or more)"))
    kw = {"frames": claim.t("frames", int), "steps": claim.t("steps", int)}
    ddim = measure_interpolation(engine, DDIM, pairs, texts, label="DDIM (eta=0)", **kw)
    ddpm = measure_interpolation(engine, DDPM, pairs, texts, label="DDPM", **kw)
    limit = claim.t("max_jump_ratio", float)
    frames = len(ddim.frames)
    for p in range(min(2, len(pairs))):
        a, b = pairs[p]
        for row in (ddim, ddpm):
            claim.images(f"{row.label}: seed {a} -> seed {b}, {texts[p]!r} (largest step {row.jump_ratio(p):.2f}x "
                         f"the median; end frames = own images: {row.ends_equal(p)})",
                         [row.own_first[p], *(f[p] for f in row.frames), row.own_second[p]],
                         [f"seed {a}'s own image", *(f"t={k / (frames - 1):.3g}" for k in range(frames)),
                          f"seed {b}'s own image"], per_row=frames + 2)
        claim.series(f"Consecutive-frame distance, seeds {a} -> {b}", list(range(1, frames)),
                     {ddim.label: ddim.steps(p), ddpm.label: ddpm.steps(p)}, xlabel="step along the path",
                     ylabel="mean |diff| /255")
    for row in (ddim, ddpm):
        claim.table(f"{row.label}: every path", INTERPOLATION_COLUMNS, row.table(limit))
    claim.metric(ddim=ddim.as_dict(), ddpm=ddpm.as_dict(), pairs=len(pairs), frames=frames)
    n = len(pairs)
    claim.key(f"DDIM: {sum(ddim.smooth(p, limit) for p in range(n))}/{n} paths smooth (largest step "
              f"≤ {max(ddim.jump_ratio(p) for p in range(n)):.2f}x median), ends = own images "
              f"{sum(ddim.ends_equal(p) for p in range(n))}/{n}; DDPM: {sum(ddpm.intact(p, limit) for p in range(n))}"
              f"/{n} intact (ends {sum(ddpm.ends_equal(p) for p in range(n))}/{n}, smooth "
              f"{sum(ddpm.smooth(p, limit) for p in range(n))}/{n})")
    claim.decide(zt_interpolation(ddim, ddpm, max_jump_ratio=limit, typical_share=claim.t("typical_share", float)))
