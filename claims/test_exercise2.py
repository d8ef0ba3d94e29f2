"""Exercise 2: DDIM determinism against DDPM stochasticity, at the lesson's steps and runs (each claim's declared
runs: sampler, steps, `repeat` runs, and a `mode` saying how the generators are driven between them), the lesson's
note that DDPM@50's lower quality is about step count, and interpolation in z_T space.

Every identity run here is a real, uncached pipeline call (explicit generators bypass the cache):
identity between runs is the measurement, so a cache hit would prove nothing. Each claim measures the runs it
declares, so what it makes is what the plan counts for it (uncached runs are not shared between claims).
"""
from __future__ import annotations

import pytest

from sampler_claims.quality import match_rates
from sampler_claims.rules.exercise2 import (
    INTERPOLATION_COLUMNS,
    MODES,
    TABLE_COLUMNS,
    Runs,
    decide_zt_interpolation,
    ddim_deterministic,
    ddim_depends_only_on_zT,
    ddim_eta,
    ddpm_noise_draws,
    ddpm_reproducible_when_reseeded,
    ddpm_stochastic,
    judge_step_count,
    last_step_variance,
    measure_interpolation,
    measure_run,
    noise_draws,
    sampler_label,
    seed_pairs,
    step_label,
)
from sampler_claims.verdict import inconclusive
from sampler_claims.session import determinism_state

pytestmark = pytest.mark.exercise2


def measured(engine, runs, name: str) -> Runs:
    """The claim's run `name`, measured: its `repeat` uncached runs on the exercise's one prompt and seed, the
    generators driven as its `mode` says (z_T fixed from the seed for "fixed-zt")."""
    run = runs[name]
    _, (seed,) = runs.inputs(name)
    request = runs.request(name, latents_seed=seed) if run.mode == "fixed-zt" else runs.request(name)
    return measure_run(engine, run, request)


def show(claim, r: Runs) -> None:
    """The runs in a row, and their pairwise identity and difference."""
    claim.images(f"{r.label}: {MODES[r.mode]}", [x.image for x in r.runs],
                 [f"run {i + 1}: {x.draws} random draws, {x.unet_calls} U-Net calls" for i, x in enumerate(r.runs)])
    claim.table(f"{r.label}: run against run", TABLE_COLUMNS, r.table())


def record(claim, *runs: Runs) -> None:
    claim.metric(**{r.label: r for r in runs}, steps=runs[0].request.steps, runs=len(runs[0].runs))
    for r in runs:
        show(claim, r)


def mean_diff(r: Runs) -> str:
    pairs = r.pairs()
    same = sum(d.identical for _, _, d, _ in pairs)
    return f"{same}/{len(pairs)} identical, mean |diff| {min(d.mean_abs for _, _, d, _ in pairs):.2f}/255"


# ------------------------------------------------------------------------------------ the claims
@pytest.mark.claim("ddim-deterministic")
def test_ddim_deterministic(claim, engine, runs, settings):
    ddim_reseeded = measured(engine, runs, "reseeded")
    v = ddim_deterministic(ddim_reseeded)
    record(claim, ddim_reseeded)
    claim.metric(device=settings.device, dtype=settings.dtype_name, determinism=determinism_state())
    claim.key(f"DDIM re-seeded: {mean_diff(ddim_reseeded)} (on {settings.device}, {settings.dtype_name})")
    on = determinism_state()["deterministic_algorithms"]
    claim.decide(v.on(f"device {settings.device}, dtype {settings.dtype_name}, deterministic algorithms on: {on}"))


@pytest.mark.claim("ddpm-stochastic")
def test_ddpm_stochastic(claim, engine, runs):
    ddpm_shared = measured(engine, runs, "stochastic")
    record(claim, ddpm_shared)
    claim.key(f"DDPM, one generator: {mean_diff(ddpm_shared)}")
    claim.decide(ddpm_stochastic(ddpm_shared, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


@pytest.mark.claim("ddim-depends-only-on-zT")
def test_ddim_depends_only_on_zT(claim, engine, runs):
    ddim_fixed_zT, ddpm_fixed_zT = measured(engine, runs, "deterministic"), measured(engine, runs, "stochastic")
    record(claim, ddim_fixed_zT, ddpm_fixed_zT)
    claim.key(f"same z_T: DDIM {mean_diff(ddim_fixed_zT)}; DDPM {mean_diff(ddpm_fixed_zT)}")
    claim.decide(ddim_depends_only_on_zT(ddim_fixed_zT, ddpm_fixed_zT, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


@pytest.mark.claim("ddpm-noise-draws")
def test_ddpm_noise_draws(claim, engine, runs):
    ddpm_shared, ddim_reseeded = measured(engine, runs, "stochastic"), measured(engine, runs, "deterministic")
    ddpm, ddim = runs["stochastic"], runs["deterministic"]
    t_last, var = last_step_variance(engine, ddpm.spec(), ddpm.steps)
    m = noise_draws(ddpm_shared.runs[0], ddim_reseeded.runs[0], var)
    claim.metric(draws=m, per_run_ddpm=[r.draws for r in ddpm_shared.runs],
                 per_run_ddim=[r.draws for r in ddim_reseeded.runs])
    claim.table(f"Random draws (diffusers randn_tensor calls) per pipeline call, {ddpm.steps} steps",
                ["sampler", "per call", "z_T", "per-step total", "steps drawing", "last step draws"],
                [[sampler_label(ddpm), m.ddpm_draws, m.ddpm_zT, sum(m.ddpm_step_draws), f"{m.steps_drawing}/{m.steps}",
                  m.last_step_draws],
                 [sampler_label(ddim), m.ddim_draws, m.ddim_zT, sum(m.ddim_step_draws),
                  f"{sum(1 for d in m.ddim_step_draws if d)}/{len(m.ddim_step_draws)}",
                  bool(m.ddim_step_draws and m.ddim_step_draws[-1])]])
    claim.series("Random draws per step", list(range(1, m.steps + 1)),
                 {sampler_label(ddpm): m.ddpm_step_draws, sampler_label(ddim): m.ddim_step_draws}, xlabel="step",
                 ylabel="draws")
    variance = "0" if var <= 1e-12 else f"{var:.2g}"
    claim.key(f"DDPM {m.ddpm_draws} draws/call ({m.ddpm_zT} z_T + {sum(m.ddpm_step_draws)} per-step; the last step "
              f"{'draws' if m.last_step_draws else 'does not draw'}, at variance {variance}); DDIM(eta=0) "
              f"{m.ddim_draws}")
    claim.decide(ddpm_noise_draws(m, min_draws=claim.t("min_draws")))


@pytest.mark.claim("ddpm-reproducible-when-reseeded")
def test_ddpm_reproducible_when_reseeded(claim, engine, runs):
    ddpm_reseeded = measured(engine, runs, "reseeded")
    record(claim, ddpm_reseeded)
    claim.key(f"DDPM re-seeded: {mean_diff(ddpm_reseeded)}")
    claim.decide(ddpm_reproducible_when_reseeded(ddpm_reseeded))


@pytest.mark.claim("ddim-eta")
def test_ddim_eta(claim, engine, runs):
    ddim_eta1_fixed_zT, ddim_fixed_zT = measured(engine, runs, "with-noise"), measured(engine, runs, "deterministic")
    record(claim, ddim_fixed_zT, ddim_eta1_fixed_zT)
    claim.key(f"same z_T, advancing generator: eta=0 {mean_diff(ddim_fixed_zT)}; eta=1 {mean_diff(ddim_eta1_fixed_zT)}")
    claim.decide(ddim_eta(ddim_eta1_fixed_zT, ddim_fixed_zT, min_mean_abs_diff=claim.t("min_mean_abs_diff")))


# ------------------------------------------------------------------------------------ ddpm-50-step-count
@pytest.mark.claim("ddpm-50-step-count")
def test_ddpm_50_step_count(claim, runs, claim_roster, quality_claim):
    q = quality_claim
    by_run = {name: runs.generate(name) for name in runs.names()}
    gens = {step_label(runs[name]): g for name, g in by_run.items()}  # as the report names them, e.g. DDPM@50
    margin = q.margin("comparable_margin")
    shown = min(3, len(claim_roster))
    claim.images(f"Same seeds: {', '.join(gens)}", [g.image(k) for k in range(shown) for g in gens.values()],
                 [f"{n}, seed {claim_roster.seeds[k]}" for k in range(shown) for n in gens])

    def rule(judge):
        return judge_step_count(judge, by_run, runs)

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
def test_zt_interpolation(claim, engine, runs):
    texts, seeds = runs.inputs("deterministic")
    pairs, texts = seed_pairs(seeds, texts)
    if not pairs:
        claim.decide(inconclusive("zt-interpolation needs at least 2 roster seeds (--seeds 2 or more)"))
    frames = claim.t("frames", int)
    ddim = measure_interpolation(engine, runs["deterministic"], pairs, texts, frames=frames)
    ddpm = measure_interpolation(engine, runs["stochastic"], pairs, texts, frames=frames)
    limit = claim.t("max_jump_ratio", float)
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
    claim.decide(decide_zt_interpolation(claim.t, ddim, ddpm))
