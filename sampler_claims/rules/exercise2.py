"""Rules of Exercise 2 (DDIM determinism against DDPM stochasticity): measurements and verdicts.

Identity claims are exact (the runs are the population: no interval). `ddpm-50-step-count` is
statistical: checker scores paired by seed, decided by intervals against the comparable margin.
`zt-interpolation` walks slerp paths between seed pairs' z_T and decides from shares of smooth paths (Wilson
intervals) and the exact identity of the end frames with the seeds' own images.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..counters import count_random_draws
from ..engine import Engine, Request, cpu_generators
from ..metrics import Difference, difference
from ..names import LABELS, STOCHASTIC
from ..runs import RunSpec
from ..schedulers import SchedulerSpec, make_scheduler
from ..verdict import (
    Interval,
    Separation,
    Verdict,
    all_of,
    at_least,
    at_most,
    equivalent,
    exact,
    gated,
    inconclusive,
    paired,
    wilson,
)
from ..verdict import _need_text  # noqa: PLC2701 - the same words for pairs as verdict uses for seeds

@dataclass
class Run:
    """One pipeline call: its uint8 image, final latents and what it drew from the random generator."""

    image: np.ndarray
    latents: torch.Tensor
    draws: int
    zT_draws: int
    step_draws: list[int]
    generator_advanced: bool
    unet_calls: int
    seconds: float
    timesteps: list[int] = field(default_factory=list)


@dataclass
class Runs:
    """Several runs of one configuration, and how the generators were handled between them."""

    label: str
    mode: str  # reseed | shared | distinct
    request: Request
    runs: list[Run]

    def pairs(self) -> list[tuple[int, int, Difference, bool]]:
        """(i, j, pixel difference, latents equal) for every pair of runs."""
        out = []
        for i in range(len(self.runs)):
            for j in range(i + 1, len(self.runs)):
                a, b = self.runs[i], self.runs[j]
                out.append((i, j, difference(a.image, b.image), bool(torch.equal(a.latents, b.latents))))
        return out

    def all_identical(self) -> bool:
        return all(d.identical and lat for _, _, d, lat in self.pairs())

    def table(self) -> list[list[Any]]:
        return [[f"run {i + 1} vs run {j + 1}", d.identical, lat, round(d.mean_abs, 3), d.max_abs]
                for i, j, d, lat in self.pairs()]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "mode": self.mode, "runs": len(self.runs),
                "draws_per_call": [r.draws for r in self.runs],
                "pairs": [{"runs": [i + 1, j + 1], **d.as_dict(), "latents_equal": lat}
                          for i, j, d, lat in self.pairs()]}


TABLE_COLUMNS = ["pair", "pixel-identical (uint8)", "latents equal", "mean |diff| /255", "max |diff| /255"]

MODES = {
    "reseed": "a fresh generator seeded with the same seed before every run",
    "shared": "one generator seeded once and shared by all runs",
    "distinct": "a different seed's generator for every run",
}


def run_once(engine: Engine, request: Request, generators: list[torch.Generator]) -> Run:
    """One uncached generation with the given generators, counting diffusers' random draws per phase.

    z_T draws are those before the first U-Net call; step i's draws fall between its U-Net call and its
    step-end callback.
    """
    before = [g.get_state().clone() for g in generators]
    marks: list[int] = []
    first: list[int] = []
    with count_random_draws() as draws:
        def pre(_m: Any, _a: Any) -> None:
            if not first:
                first.append(draws.count)

        def on_step(_p: Any, _i: int, _t: Any, _kw: dict) -> dict:
            marks.append(draws.count)
            return {}

        handle = engine.pipe.unet.register_forward_pre_hook(pre)
        try:
            gen = engine.generate(request, generators=generators, callback=on_step)
        finally:
            handle.remove()
    zT = first[0] if first else draws.count
    steps = list(np.diff([zT, *marks]).astype(int)) if marks else []
    advanced = any(not torch.equal(b, g.get_state()) for b, g in zip(before, generators))
    return Run(image=gen.image(0), latents=gen.latents, draws=draws.count, zT_draws=int(zT),
               step_draws=[int(s) for s in steps], generator_advanced=advanced, unet_calls=gen.unet_calls,
               seconds=gen.seconds, timesteps=gen.timesteps)


#: How a declared run's `mode` drives the generators between its repetitions (Runs.mode): re-seeded before every
#: run, or one generator seeded once and shared (with z_T fixed by `latents=` for "fixed-zt").
GENERATORS = {"reseeded": "reseed", "shared-generator": "shared", "fixed-zt": "shared"}
#: How the report names each mode, after the sampler.
MODE_WORDS = {"reseeded": "re-seeded", "shared-generator": "one generator seeded once",
              "fixed-zt": "same z_T, generator advancing"}


def sampler_label(run: RunSpec) -> str:
    """The sampler of a run as the report names it in Exercise 2: a deterministic sampler with its eta (the
    lesson's sigma), e.g. 'DDIM (eta=0)'; a stochastic one bare, e.g. 'DDPM'."""
    name = LABELS.get(run.sampler, run.sampler)
    return name if run.sampler in STOCHASTIC else f"{name} (eta={run.eta:g})"


def run_label(run: RunSpec) -> str:
    """A repeated run's label: its sampler and how its generators are handled, e.g. 'DDPM, re-seeded'."""
    return f"{sampler_label(run)}, {MODE_WORDS[run.mode]}" if run.mode in MODE_WORDS else sampler_label(run)


def measure_run(engine: Engine, run: RunSpec, request: Request) -> Runs:
    """A declared run's repetitions (`repeat`), its generators handled as its `mode` says; `request` is the run's
    request over its one seed, with z_T fixed for a "fixed-zt" run (the test makes it: it knows the seed)."""
    if run.mode not in GENERATORS:
        raise ValueError(f"run {run.name!r}: mode {run.mode!r} does not say how to drive its generators; use one "
                         f"of {', '.join(GENERATORS)}")
    if (run.mode == "fixed-zt") != (request.latents_seed is not None):
        raise ValueError(f"run {run.name!r}: a fixed-zt run needs latents_seed in its request, and only it")
    return measure_runs(engine, request, int(run.repeat), GENERATORS[run.mode], run_label(run))


def measure_runs(engine: Engine, request: Request, runs: int, mode: str, label: str = "") -> Runs:
    """`runs` uncached runs of one single-seed request with generators handled as `mode` says."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if len(request.seeds) != 1:
        raise ValueError("Exercise 2 runs one image per call, as the lesson does")
    seed = request.seeds[0]
    shared = [torch.Generator("cpu").manual_seed(seed)]
    out = []
    for i in range(runs):
        if mode == "shared":
            gens = shared
        else:
            gens = [torch.Generator("cpu").manual_seed(seed if mode == "reseed" else seed + i)]
        out.append(run_once(engine, request, gens))
    return Runs(label or request.label, mode, request, out)


def _diff_summary(r: Runs) -> str:
    pairs = r.pairs()
    same = sum(d.identical for _, _, d, _ in pairs)
    mean = min(d.mean_abs for _, _, d, _ in pairs)
    mx = max(d.max_abs for _, _, d, _ in pairs)
    return (f"{same}/{len(pairs)} pairs pixel-identical, smallest mean |diff| {mean:.2f}/255, "
            f"largest max |diff| {mx}/255")


def _all_differ(r: Runs, min_mean_abs_diff: float) -> bool:
    return all(not d.identical and d.mean_abs >= min_mean_abs_diff for _, _, d, _ in r.pairs())


def ddim_deterministic(r: Runs) -> Verdict:
    """Every pair of re-seeded runs is pixel-identical (uint8) and has equal latents."""
    lat = all(l for *_, l in r.pairs())
    text = f"{len(r.runs)} runs, {MODES[r.mode]}: {_diff_summary(r)}; latents equal: {lat}"
    return exact(r.all_identical(), text)


def ddpm_stochastic(r: Runs, *, min_mean_abs_diff: float) -> Verdict:
    """Every pair of runs sharing one generator differs, by more than rounding."""
    adv = all(x.generator_advanced for x in r.runs)
    return exact(_all_differ(r, min_mean_abs_diff), f"{len(r.runs)} runs, {MODES[r.mode]} (advanced by every run: "
                                                    f"{adv}): {_diff_summary(r)}")


def ddim_depends_only_on_zT(ddim: Runs, ddpm: Runs, *, min_mean_abs_diff: float) -> Verdict:
    """With z_T fixed and the generators varied, DDIM is identical and DDPM is not."""
    d_ok, p_ok = ddim.all_identical(), _all_differ(ddpm, min_mean_abs_diff)
    text = (f"same z_T, {MODES[ddim.mode]}: DDIM {_diff_summary(ddim)}; DDPM {_diff_summary(ddpm)}")
    if not d_ok:
        text = "DDIM changed with the generator although z_T was fixed: " + text
    elif not p_ok:
        text = "DDPM did not change with the generator: " + text
    return exact(d_ok and p_ok, text)


def ddim_eta(eta1: Runs, eta0: Runs, *, min_mean_abs_diff: float) -> Verdict:
    """With z_T fixed: DDIM eta=0 identical whatever the generator, eta=1 different; sigma is the cause."""
    z_ok, o_ok = eta0.all_identical(), _all_differ(eta1, min_mean_abs_diff)
    text = (f"same z_T: eta=0 ({MODES[eta0.mode]}) {_diff_summary(eta0)}; eta=1 ({MODES[eta1.mode]}) "
            f"{_diff_summary(eta1)}")
    return exact(z_ok and o_ok, text)


def ddpm_reproducible_when_reseeded(r: Runs) -> Verdict:
    """The lesson's takeaway ('non-reproducible') holds iff re-seeded DDPM runs are NOT all identical."""
    identical = r.all_identical()
    text = f"{len(r.runs)} DDPM runs, {MODES[r.mode]}: {_diff_summary(r)}"
    if identical:
        return exact(False, "re-seeded DDPM is pixel-identical: stochastic is not irreproducible — the per-step "
                            "noise comes from the seeded generator. " + text)
    return exact(True, "re-seeded DDPM differs between runs: " + text)


@dataclass(frozen=True)
class NoiseDraws:
    steps: int
    ddpm_draws: int
    ddpm_zT: int
    ddpm_step_draws: list[int]
    ddim_draws: int
    ddim_zT: int
    ddim_step_draws: list[int]
    last_timestep: int | None = None
    last_step_variance: float | None = None

    @property
    def steps_drawing(self) -> int:
        return sum(1 for d in self.ddpm_step_draws if d > 0)

    @property
    def last_step_draws(self) -> bool:
        return bool(self.ddpm_step_draws) and self.ddpm_step_draws[-1] > 0

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "ddpm_draws_per_call": self.ddpm_draws, "ddpm_zT_draws": self.ddpm_zT,
                "ddpm_steps_drawing": self.steps_drawing, "ddpm_last_step_draws": self.last_step_draws,
                "ddpm_last_timestep": self.last_timestep, "ddpm_last_step_variance": self.last_step_variance,
                "ddim_draws_per_call": self.ddim_draws, "ddim_zT_draws": self.ddim_zT,
                "ddim_step_draws": sum(self.ddim_step_draws)}


def noise_draws(ddpm: Run, ddim: Run, last_step_variance: float | None = None) -> NoiseDraws:
    return NoiseDraws(len(ddpm.step_draws), ddpm.draws, ddpm.zT_draws, ddpm.step_draws, ddim.draws, ddim.zT_draws,
                      ddim.step_draws, ddpm.timesteps[-1] if ddpm.timesteps else None, last_step_variance)


def last_step_variance(engine: Engine, spec: SchedulerSpec, steps: int) -> tuple[int, float]:
    """DDPM's posterior variance at its last timestep (0 when it steps to t<0), from the scheduler itself."""
    scheduler, _ = make_scheduler(spec, engine.stock_config)
    scheduler.set_timesteps(steps)
    t = int(scheduler.timesteps[-1])
    return t, float(scheduler._get_variance(t))  # noqa: SLF001 - the value step() scales its draw by


def ddpm_noise_draws(m: NoiseDraws, *, min_draws: int) -> Verdict:
    """DDPM draws at every step (the last may be spared: its variance is 0) and dozens of draws per call."""
    every = m.steps_drawing >= m.steps - 1
    dozens = m.ddpm_draws >= min_draws
    last = "draws" if m.last_step_draws else "does not draw"
    var = ""
    if m.last_step_variance is not None:
        v = "0 (diffusers clamps it to 1e-20)" if m.last_step_variance <= 1e-12 else f"{m.last_step_variance:.3g}"
        var = f" (t={m.last_timestep}, variance {v})"
    text = (f"DDPM@{m.steps}: {m.ddpm_draws} draws per call = {m.ddpm_zT} for z_T + {sum(m.ddpm_step_draws)} "
            f"over {m.steps_drawing}/{m.steps} steps; the last step {last}{var}; DDIM(eta=0): {m.ddim_draws} "
            f"per call ({m.ddim_zT} for z_T, {sum(m.ddim_step_draws)} per-step)")
    if not every:
        return exact(False, f"DDPM drew noise on only {m.steps_drawing} of {m.steps} steps: " + text)
    if not dozens:
        return exact(False, f"{m.ddpm_draws} draws per call is not dozens (< {min_draws}): " + text)
    return exact(True, text)


# ============================================================================ ddpm-50-step-count
#: The claim's runs by the part each plays: the stochastic sampler at many steps, at the lesson's steps, and the
#: deterministic sampler at those same steps.
STEP_COUNT_RUNS = ("more-steps", "stochastic", "deterministic")


def step_label(run: RunSpec) -> str:
    """A run as the lesson names a configuration, sampler at steps: 'DDPM@1000' (its scheduler overrides, which
    make it runnable rather than different, left out)."""
    return f"{LABELS.get(run.sampler, run.sampler)}@{run.steps}"


def ddpm_50_step_count(scores: Mapping[str, Sequence[float]], control: Separation | None, *,
                       roles: tuple[str, str, str], margin: float, step_effect_margin: float = 0.0,
                       missing: str = "", at_steps: int | str = "equal") -> Verdict:
    """'About step count, not stochastic vs deterministic': the stochastic sampler at more steps scores above it at
    the lesson's steps (the interval of the paired gap above step_effect_margin), and the deterministic sampler at
    equal steps is within the comparable margin of it (stochasticity at equal steps makes no real difference).
    `roles` names the keys of `scores` in that order, e.g. ('DDPM@1000', 'DDPM@50', 'DDIM@50'); `at_steps` is the
    step count the last two share, for the words."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    long, short, det = roles
    steps = at_least(paired(scores[long], scores[short], f"{long} - {short}"), step_effect_margin,
                     f"step-count effect: score {long} - {short}")
    stoch = equivalent(paired(scores[det], scores[short], f"{det} - {short}"), margin,
                       f"stochastic-vs-deterministic effect at {at_steps} steps: score {det} - {short}")
    return gated(control, all_of([steps.named(f"{short} is worse than {long}"),
                                  stoch.named("and not because it is stochastic")], "ddpm-50-step-count"), missing)


def judge_step_count(judge: Any, gens: Mapping[str, Any], runs: Mapping[str, RunSpec] | Any) -> Verdict:
    """ddpm-50-step-count decided by one metric (sampler_claims.quality_claim.Judge) from its runs' generations by
    run name (STEP_COUNT_RUNS): the wiring its test and its negative controls share."""
    labels = tuple(step_label(runs[name]) for name in STEP_COUNT_RUNS)
    scores = {label: judge.scores(gens[name]) for label, name in zip(labels, STEP_COUNT_RUNS)}
    return ddpm_50_step_count(scores, judge.control, roles=labels, margin=judge.margin("comparable_margin"),  # type: ignore[arg-type]
                              step_effect_margin=judge.t("step_effect_margin"), missing=judge.missing,
                              at_steps=runs[STEP_COUNT_RUNS[1]].steps)


# ============================================================================ zt-interpolation
def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two batches of z_T, per image (the usual choice for Gaussian latents: a
    straight line through z_T space passes through low-norm latents the model never saw). Computed in float64;
    t=0 and t=1 return z0 and z1 exactly, so the end frames start from the seeds' own z_T."""
    a, b = z0.double().flatten(1), z1.double().flatten(1)
    cos = ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)[:, None]
    sin = torch.sin(theta)
    w0, w1 = torch.sin((1 - t) * theta) / sin, torch.sin(t * theta) / sin
    return (w0 * a + w1 * b).view_as(z0).to(z0.dtype)


@contextmanager
def given_zT(engine: Engine, zT: torch.Tensor) -> Iterator[None]:
    """Make the engine's `latents_seed` path hand the pipeline these z_T (its `latents=` argument), so frames run
    through the same engine (scheduler swap, U-Net count, guard) as every other claim."""
    def initial_latents(_seed: int, batch: int) -> torch.Tensor:
        if batch != len(zT):
            raise RuntimeError(f"the engine asked for {batch} z_T, the interpolation holds {len(zT)}: "
                               "zt-interpolation hands over the z_T of a whole request (the engine slices them per chunk)")
        return zT.clone()

    engine.initial_latents = initial_latents  # type: ignore[method-assign]
    try:
        yield
    finally:
        del engine.initial_latents


@dataclass
class Interpolation:
    """One sampler's frames along slerp paths, one path per seed pair, and the seeds' own images."""

    label: str
    pairs: list[tuple[int, int]]
    prompts: list[str]
    #: [frame][pair] uint8 images, frame 0 at the first seed's z_T.
    frames: list[np.ndarray]
    #: The seeds' own images (z_T drawn by the pipeline from the seed's generator), [pair] for each end.
    own_first: np.ndarray
    own_second: np.ndarray

    def steps(self, p: int) -> list[float]:
        """Consecutive-frame distances of pair p's path: mean |diff| /255 of the uint8 images."""
        return [float(np.abs(self.frames[k][p].astype(np.int16) - self.frames[k + 1][p]).mean())
                for k in range(len(self.frames) - 1)]

    def jump_ratio(self, p: int) -> float:
        """Largest step over the median step (1 for a path of equal steps; inf for a cut with still frames)."""
        s = self.steps(p)
        med, top = float(np.median(s)), max(s)
        if med > 0:
            return top / med
        return 1.0 if top == 0 else math.inf

    def ends_equal(self, p: int) -> bool:
        return bool(np.array_equal(self.frames[0][p], self.own_first[p])
                    and np.array_equal(self.frames[-1][p], self.own_second[p]))

    def smooth(self, p: int, max_jump_ratio: float) -> bool:
        return self.jump_ratio(p) <= max_jump_ratio

    def intact(self, p: int, max_jump_ratio: float) -> bool:
        return self.ends_equal(p) and self.smooth(p, max_jump_ratio)

    def table(self, max_jump_ratio: float) -> list[list[Any]]:
        return [[f"{a} -> {b}", self.prompts[p], round(self.jump_ratio(p), 2), round(float(np.median(self.steps(p))), 2),
                 round(max(self.steps(p)), 2), self.smooth(p, max_jump_ratio), self.ends_equal(p)]
                for p, (a, b) in enumerate(self.pairs)]

    def as_dict(self, max_jump_ratio: float = math.inf) -> dict[str, Any]:
        return {"label": self.label, "pairs": [list(x) for x in self.pairs], "frames": len(self.frames),
                "steps": [[round(s, 3) for s in self.steps(p)] for p in range(len(self.pairs))],
                "jump_ratio": [round(self.jump_ratio(p), 3) for p in range(len(self.pairs))],
                "ends_equal": [self.ends_equal(p) for p in range(len(self.pairs))]}


INTERPOLATION_COLUMNS = ["seeds", "prompt", "largest / median step", "median step /255", "largest step /255",
                         "smooth", "end frames = own images"]


def seed_pairs(seeds: Sequence[int], prompts: Sequence[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """The roster's seeds taken two by two, each pair with the roster prompt of its first seed: --seeds N gives
    N // 2 pairs, so the seeds a verdict asks for are the seeds that settle it."""
    k = len(seeds) // 2
    return [(int(seeds[2 * i]), int(seeds[2 * i + 1])) for i in range(k)], [prompts[2 * i] for i in range(k)]


def measure_interpolation(engine: Engine, run: RunSpec, pairs: Sequence[tuple[int, int]],
                          prompts: Sequence[str], *, frames: int, label: str = "") -> Interpolation:
    """The declared run `run` (sampler, steps, eta, guidance) along slerp paths: frames along the slerp path between each pair's z_T, one batch per frame (every pair), with one CPU
    generator per image re-seeded with the pair's first seed for every frame, so a sampler that draws per-step
    noise gets the same stream on every frame; and each seed's own image, generated the ordinary way (z_T drawn
    from its generator) in the same batch shape, so identity is compared like for like (diffusers #2659)."""
    if frames < 3:
        raise ValueError(f"an interpolation path needs at least 3 frames, got {frames}")
    if not pairs:
        raise ValueError("no seed pairs: zt-interpolation needs at least 2 roster seeds")
    first, second = tuple(a for a, _ in pairs), tuple(b for _, b in pairs)
    prompt = tuple(prompts)

    def own(seeds: tuple[int, ...]) -> np.ndarray:
        g = engine.generate(run.request(seeds, prompt), generators=cpu_generators(seeds))
        return np.asarray(g.images)

    z0 = torch.cat([engine.initial_latents(s, 1) for s in first])
    z1 = torch.cat([engine.initial_latents(s, 1) for s in second])
    out = []
    for k in range(frames):
        z = slerp(z0, z1, k / (frames - 1))
        with given_zT(engine, z):
            g = engine.generate(run.request(first, prompt, latents_seed=first[0]), generators=cpu_generators(first))
        out.append(np.asarray(g.images))
    return Interpolation(label or sampler_label(run), list(pairs), list(prompts), out, own(first), own(second))


def _in_seeds(iv: Interval, v: Verdict) -> Verdict:
    """A share over seed pairs, undecided: the pairs that would decide it, said as the --seeds that give them."""
    if v.seeds_needed is None:
        return v
    pairs = v.seeds_needed
    reason = v.reason.replace(_need_text(iv, pairs), f"{_need_text(iv, pairs, 'pairs')} (--seeds {2 * pairs})")
    return Verdict(v.verdict, reason, v.numbers, 2 * pairs)


def zt_interpolation(ddim: Interpolation, ddpm: Interpolation, *, max_jump_ratio: float,
                     typical_share: float) -> Verdict:
    """'DDIM's determinism makes it valuable for interpolation in z_T space': DDIM's end frames are the seeds' own
    images on every pair (exact), most DDIM paths are smooth (the Wilson interval of the share above
    typical_share), and DDPM, the same path with fresh per-step noise, breaks it (the share of intact DDPM paths,
    smooth with both ends equal, below typical_share). If DDPM interpolated as well, determinism would not be
    what makes DDIM valuable here."""
    n = len(ddim.pairs)
    ends = [ddim.ends_equal(p) for p in range(n)]
    ratios = [ddim.jump_ratio(p) for p in range(n)]
    k_smooth = sum(r <= max_jump_ratio for r in ratios)
    ends_v = exact(all(ends), f"{sum(ends)}/{n} {ddim.label} paths start and end on the seeds' own images",
                   ends_equal=sum(ends), pairs=n)
    share = wilson(k_smooth, n, f"share of {ddim.label} paths with no step over {max_jump_ratio:g}x the median step")
    smooth_v = _in_seeds(share, at_least(share, typical_share, f"{k_smooth}/{n} {ddim.label} paths smooth (largest "
                                                               f"step / median step {min(ratios):.2f}-{max(ratios):.2f}, "
                                                               f"limit {max_jump_ratio:g}): share"))
    d_ends = sum(ddpm.ends_equal(p) for p in range(n))
    d_smooth = sum(ddpm.smooth(p, max_jump_ratio) for p in range(n))
    d_intact = sum(ddpm.intact(p, max_jump_ratio) for p in range(n))
    d_ratios = [ddpm.jump_ratio(p) for p in range(n)]
    intact = wilson(d_intact, n, f"share of intact {ddpm.label} paths")
    breaks_v = _in_seeds(intact, at_most(intact, typical_share,
                                         f"{d_intact}/{n} {ddpm.label} paths intact ({d_ends}/{n} end on the seeds' "
                                         f"own images, {d_smooth}/{n} smooth, largest step / median step "
                                         f"{min(d_ratios):.2f}-{max(d_ratios):.2f}): share"))
    v = all_of([ends_v.named(f"{ddim.label} ends on the seeds' images"), smooth_v.named(f"{ddim.label} path smooth"),
                breaks_v.named(f"{ddpm.label} breaks the path")], "interpolation in z_T")
    return Verdict(v.verdict, v.reason, {**v.numbers, "deterministic": ddim.as_dict(), "stochastic": ddpm.as_dict()}, v.seeds_needed)


def decide_zt_interpolation(t: Any, ddim: Interpolation, ddpm: Interpolation) -> Verdict:
    """zt-interpolation decided with its entry's thresholds (`t`: the claim's threshold accessor): the wiring its
    test and its negative controls share."""
    return zt_interpolation(ddim, ddpm, max_jump_ratio=float(t("max_jump_ratio")),
                            typical_share=float(t("typical_share")))
