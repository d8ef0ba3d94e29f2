"""The cost of a claims run, before the first generation: planned U-Net evaluations per claim group, and the
time they take on this device, dtype and size from a short calibration.

Counted in U-Net evaluations, images x calls with CFG counted (a guided call evaluates two samples per image).
The generations each claim makes are listed here from the same registry entries and scheduler names the claim
tests read; a generation that several claims share is computed once (the engine's cache) and counted once,
in the first group that needs it. The number of calls of a configuration is the scheduler's own: its
`timesteps` after `set_timesteps` on the model's stock config (Heun makes 2N-1). Under xdist each worker
computes what its groups share again, so the plan is the serial cost.

The estimate: seconds = evaluations x seconds per evaluation + images x seconds per image (text encoding,
decoding), both measured by sampler_claims.calibration at the run's roster as the engine runs it (roster
generations) and at one seed (the single-seed and timing generations). It leaves out the metrics (checker,
SSIM, CLIP); on the embedded model they are a small share, and the README gives measured against planned.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths, registry
from .calibration import Calibration, Rate, calibrate  # noqa: F401 - the calibration lives there now

#: Seeds the power calculation (registry.SEEDS_POWER) needs for an equivalence to be decided with 80% power:
#: paired differences between deterministic samplers (sd 0.058) and pairs with stochastic DDPM (sd 0.22).
POWER_SEEDS = {kind: registry.power_seeds(kind) for kind in registry.SEEDS_PILOT}
#: Statistical claims whose deciding comparison pairs a sampler with DDPM (its independent noise barely pairs):
#: those that run on registry.DDPM_SEEDS times the roster.
DDPM_PAIRED = {cid for cid, c in registry.CLAIMS.items() if "ddpm_seeds" in c.thresholds}


@dataclass(frozen=True)
class Gen:
    """One planned pipeline configuration: `images` seeds ("roster" = the --seeds roster), `times` calls."""

    sampler: str
    steps: int
    images: int | str = "roster"
    overrides: tuple[tuple[str, Any], ...] = ()
    guidance: float = 7.5
    capture: bool = False
    cached: bool = True
    times: int = 1
    latent: bool = False

    def n_images(self, seeds: int) -> int:
        if self.images == "roster":
            return seeds
        if isinstance(self.images, str) and self.images.startswith("roster x "):  # a claim's longer roster
            return seeds * int(self.images.removeprefix("roster x "))
        if isinstance(self.images, str) and self.images.startswith("pairs x "):  # per pair of roster seeds
            return (seeds // 2) * int(self.images.removeprefix("pairs x "))
        return int(self.images)


def _g(sampler: str, steps: int, images: int | str = "roster", **kw: Any) -> Gen:
    overrides = tuple(sorted(kw.pop("overrides", {}).items()))
    return Gen(sampler, steps, images, overrides, **kw)


def _control(claim: registry.Claim, quality: str) -> list[Gen]:
    out = []
    if "quality_control" in claim.thresholds:
        c = claim.t("quality_control")
        out += [_g(c.sampler, c.good), _g(c.sampler, c.bad)]
        if quality == "clip":
            c = claim.t("clip_control")
            out += [_g(c.sampler, c.good), _g(c.sampler, c.bad)]
    if quality == "clip" and "convergence_reference" in claim.thresholds:
        ref, check, pair = (claim.t("convergence_reference"), claim.t("reference_check"),
                            claim.t("convergence_control"))
        out += [_g(ref.sampler, ref.steps)] + [_g(r.sampler, r.steps) for r in
                                               (check.good_run, check.bad_run, pair.good_run, pair.bad_run)]
    return out


def timing_gens(rounds: int) -> list[Gen]:
    """The interleaved timing rounds: every timed configuration once per round on one seed, uncached, plus
    the warm-up call."""
    from .timing import timed_configs

    configs = timed_configs("p", 0)
    out = [_g(r.scheduler.name, r.steps, 1, overrides=dict(r.scheduler.overrides), guidance=r.guidance,
              cached=False, times=rounds) for r in configs.values()]
    first = next(r for r in configs.values() if r.steps <= 200)
    return out + [_g(first.scheduler.name, first.steps, 1, cached=False)]


def claim_gens(cid: str, *, quality: str, rounds: int, atlas: bool, model_source: str = "",
               trained: bool = True) -> list[Gen]:
    """The generations claim `cid`'s test makes (with its fixtures), from the registry and the claims' modules."""
    c = registry.get(cid)

    def t(other: str, name: str) -> Any:
        return registry.get(other).t(name)

    trailing = {"timestep_spacing": "trailing"}
    ex1 = [_g("ddpm", 1000, overrides=trailing), _g("ddim", 50), _g("dpm-solver", 20)]
    single50 = lambda s, **kw: _g(s, 50, 1, cached=False, times=3, **kw)  # noqa: E731 - exercise 2's 3 runs
    traces = [_g("ddim", 10, 1, capture=True, cached=False), _g("ddpm", 10, 1, capture=True, cached=False)]
    roster_traces = [_g("ddim", 10, capture=True), _g("ddpm", 10, capture=True)]
    timing = timing_gens(rounds)
    table: dict[str, list[Gen]] = {
        "same-weights": [_g(s, 2, 1, cached=False) for s in ("ddpm", "ddim", "dpm-solver")],
        "lesson-code-runs": [_g("ddpm", 1000, 1, overrides=trailing)],
        "comparable-quality": ex1,
        "different-paths": ex1,
        "speedup": timing,
        "cfg-two-passes": timing + [_g("ddim", 50, 1), _g("ddim", 50, 1, guidance=1.0)],
        "ddim-deterministic": [single50("ddim")],
        "ddpm-stochastic": [single50("ddpm")],
        "ddim-depends-only-on-zT": [single50("ddim", overrides={"z": 1}), single50("ddpm", overrides={"z": 1})],
        "ddpm-noise-draws": [single50("ddpm"), single50("ddim")],
        "ddpm-reproducible-when-reseeded": [single50("ddpm", overrides={"reseed": 1})],
        "ddim-eta": [single50("ddim", overrides={"eta": 1}), single50("ddim", overrides={"z": 1})],
        "ddpm-50-step-count": [_g("ddpm", 1000, overrides=trailing), _g("ddpm", 50), _g("ddim", 50)],
        "sweet-spot": [_g("dpm-solver", s, f"roster x {t('sweet-spot', 'score_seeds')}")  # scored on its longer roster
                       if s in t("sweet-spot", "scored_steps") else _g("dpm-solver", s)
                       for s in t("sweet-spot", "step_counts")],
        "linear-time": timing,
        "no-gain-past-25": [_g("dpm-solver", 25), _g("dpm-solver", 200)],
        "callback-after-step": traces + [_g("ddim", 10, 1, latent=True), _g("ddpm", 10, 1, latent=True)],
        "clone-needed": traces,
        "coarse-to-fine": traces + roster_traces,
        "ddpm-10-worse": roster_traces,
        "ddpm-formula-adjacent": [],
        "dpm-multi-point": [_g(s, 10, 1) for s in ("dpm-solver", "dpm-solver-single", "heun")],
        "ddpm-intermediates-noisier": roster_traces,
        "recommended-default": timing + [_g("dpm-solver", s) for s in t("recommended-default", "steps")],
        "final-sigma-zero": [_g("dpm-solver", t("final-sigma-zero", "steps"), overrides={"final_sigmas_type": k})
                             for k in ("sigma_min", "zero")] + [roster_traces[0]],
        "karras-sigmas-few-steps": [_g("dpm-solver", s, overrides={"use_karras_sigmas": v})
                                    for s in t("karras-sigmas-few-steps", "steps") for v in (True, False)],
        "lower-order-final": [_g("dpm-solver", s, overrides={"lower_order_final": v, "final_sigmas_type": "sigma_min"})
                              for s in t("lower-order-final", "steps") for v in (True, False)],
        "zt-interpolation": [_g(s, t("zt-interpolation", "steps"), f"pairs x {t('zt-interpolation', 'frames') + 2}",
                                 overrides={"interpolation": 1}) for s in ("ddim", "ddpm")],
        "sweet-spot-guidance": [_g("dpm-solver", s, t("sweet-spot-guidance", "seeds"), guidance=g)
                                for g in t("sweet-spot-guidance", "guidances") if g != 7.5
                                for s in (*t("sweet-spot-guidance", "step_counts"),
                                          t("sweet-spot-guidance", "reference").steps)]
                               + [_g("dpm-solver", s) for s in (*t("sweet-spot-guidance", "step_counts"),
                                                                t("sweet-spot-guidance", "reference").steps)],
        "steps-are-calls": [_g(n, s, 1, guidance=t("steps-are-calls", "guidance"))
                            for n in compatible_names(model_source) for s in t("steps-are-calls", "steps")],
        "ddim-step-lands-on-schedule": [_g(n, t("ddim-step-lands-on-schedule", "effect_steps"),
                                           t("ddim-step-lands-on-schedule", "effect_seeds"),
                                           overrides={"timestep_spacing": sp})
                                        for sp in ("trailing", "linspace") for n in ("ddim", "ddim-next")]
                                       if trained else [],  # the effect on the image needs a trained model
        "default-on-front": [_g(s, n) for s in ("ddim", "dpm-solver", "euler", "unipc", "deis", "heun", "pndm",
                                                "lms") for n in (5, 10, 20, 50)] if atlas else [],
    }
    gens = list(table.get(cid, []))
    if cid in DDPM_PAIRED:  # the claim's own generations on its longer roster; the control stays on the roster
        gens = [replace(g, images=f"roster x {registry.claim_seeds(c, 1)}") if g.images == "roster" else g
                for g in gens]
    if c.needs_trained_model and (cid != "default-on-front" or atlas):
        gens += _control(c, quality)
    return gens


#: The claims `claim_gens` lists (those with no generation list [] explicitly).
PLANNED = {"same-weights", "lesson-code-runs", "comparable-quality", "different-paths", "speedup", "cfg-two-passes",
           "ddim-deterministic", "ddpm-stochastic", "ddim-depends-only-on-zT", "ddpm-noise-draws",
           "ddpm-reproducible-when-reseeded", "ddim-eta", "ddpm-50-step-count", "sweet-spot", "linear-time",
           "no-gain-past-25", "callback-after-step", "clone-needed", "coarse-to-fine", "ddpm-10-worse",
           "ddpm-formula-adjacent", "dpm-multi-point", "ddpm-intermediates-noisier", "recommended-default",
           "final-sigma-zero", "karras-sigmas-few-steps", "lower-order-final", "default-on-front", "zt-interpolation",
           "sweet-spot-guidance", "steps-are-calls", "ddim-step-lands-on-schedule"}


def compatible_names(model_source: str) -> list[str]:
    """Short names of the stock scheduler's compatibles, as steps-are-calls runs them (sampler_claims.atlas)."""
    import diffusers

    from .schedulers import compatible_names as names_of

    stock = getattr(diffusers, stock_scheduler_config(model_source).get("_class_name", "PNDMScheduler"))
    return names_of(stock())


# ------------------------------------------------------------------------------------ counting
def stock_scheduler_config(model_source: str) -> dict[str, Any]:
    """The model's stock scheduler config, read from its folder (SD 1.5's for a hub id not on disk)."""
    from diffusers import DDPMScheduler

    folder = Path(model_source) / "scheduler"
    if not (folder / "scheduler_config.json").is_file():
        folder = paths.SD15_RANDOM / "scheduler"
    return dict(DDPMScheduler.load_config(folder))


def calls_per_image(gen: Gen, stock: dict[str, Any], _memo: dict[Any, int] = {}) -> int:  # noqa: B006
    """U-Net calls of one generation: the scheduler's timesteps after set_timesteps (a step that fails at the
    first call, like the stock DDPM@1000 of lesson-code-runs, is not listed)."""
    from .schedulers import SchedulerSpec, make_scheduler

    real = {k: v for k, v in gen.overrides if k in ("timestep_spacing", "final_sigmas_type", "use_karras_sigmas",
                                                      "lower_order_final")}
    key = (gen.sampler, gen.steps, tuple(sorted(real.items())), id(stock))
    if key not in _memo:
        from diffusers.utils import logging as diffusers_logging

        log = diffusers_logging.get_logger("diffusers.schedulers")
        level = log.level
        log.setLevel(diffusers_logging.ERROR)  # e.g. lower_order_final's notice: the count is all we want
        try:
            sched, _ = make_scheduler(SchedulerSpec.of(gen.sampler, **real), stock)
            sched.set_timesteps(gen.steps)
            _memo[key] = len(sched.timesteps)
        except Exception:  # noqa: BLE001 - a scheduler that cannot be made counts its steps
            _memo[key] = gen.steps
        finally:
            log.setLevel(level)
    return _memo[key]


@dataclass
class GroupPlan:
    group: str
    claims: list[str]
    evaluations: int = 0
    images: int = 0
    seconds: float | None = None


@dataclass
class Plan:
    seeds: int
    groups: dict[str, GroupPlan] = field(default_factory=dict)
    calibration: Calibration | None = None
    timing_min_s: float = 0.0
    #: Selected claims this module lists no generations for (a claim added to the registry since).
    unplanned: list[str] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return sum(g.evaluations for g in self.groups.values())

    @property
    def seconds(self) -> float | None:
        if self.calibration is None:
            return None
        return sum(g.seconds or 0.0 for g in self.groups.values())

    def lines(self) -> list[str]:
        out = [f"claims plan: {self.seeds} seeds; U-Net evaluations per claim group (images x calls, CFG counted, "
               "shared generations once)" + ("; estimated time" if self.calibration else "")]
        for g in sorted(self.groups.values(), key=lambda g: -g.evaluations):
            t = f", ~{fmt_time(g.seconds)}" if g.seconds is not None else ""
            out.append(f"claims plan:   {g.group:<12} {g.evaluations:>12,} evaluations, {g.images:>6,} images{t}  "
                       f"({', '.join(g.claims)})")
        total = f", ~{fmt_time(self.seconds)} estimated" if self.seconds is not None else ""
        out.append(f"claims plan:   {'total':<12} {self.evaluations:>12,} evaluations{total} (serial; xdist "
                   "workers recompute what their groups share)")
        if self.calibration is not None:
            out.append(f"claims plan: {self.calibration.describe()}")
        if self.unplanned:
            out.append(f"claims plan: not counted (no entry in sampler_claims/plan.py): {', '.join(self.unplanned)}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "evaluations": self.evaluations,
                "estimated_s": None if self.seconds is None else round(self.seconds, 1),
                "groups": {g.group: {"claims": g.claims, "evaluations": g.evaluations, "images": g.images,
                                     "estimated_s": None if g.seconds is None else round(g.seconds, 1)}
                           for g in self.groups.values()},
                "calibration": None if self.calibration is None else self.calibration.describe()}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def timing_settings(rounds: int) -> tuple[int, float]:
    """Rounds and the least seconds of one timed measurement (repetitions), where the timing module has them."""
    from . import timing

    if hasattr(timing, "timing_plan"):
        tp = timing.timing_plan()
        return rounds or tp["rounds"], float(tp.get("min_time_s", 0.0))
    return rounds, 0.0


def make_plan(claim_ids: Iterable[str], *, seeds: int, model_source: str, quality: str, rounds: int,
              atlas: bool = False, calibration: Calibration | None = None, trained: bool = True) -> Plan:
    """The plan of the selected claims, in the order the registry lists them. On random weights (`trained`
    False) the quality claims are skipped before they generate, so they plan nothing."""
    stock = stock_scheduler_config(model_source)
    rounds, min_time = timing_settings(rounds)
    plan = Plan(seeds, calibration=calibration, timing_min_s=min_time)
    seen: set[Gen] = set()
    #: Images already planned per roster generation (any roster length): a longer roster of the same
    #: configuration costs only its extra seeds (the engine reuses the cached first ones).
    on_roster: dict[Gen, int] = {}
    wanted = set(claim_ids)
    for cid, claim in registry.CLAIMS.items():
        if cid not in wanted:
            continue
        g = plan.groups.setdefault(claim.group, GroupPlan(claim.group, []))
        g.claims.append(cid)
        if cid not in PLANNED:
            plan.unplanned.append(cid)
        gens = claim_gens(cid, quality=quality, rounds=rounds, atlas=atlas, model_source=model_source,
                          trained=trained)
        if claim.needs_trained_model and not trained:
            gens = []
        for gen in gens:
            key = gen if gen.cached else (gen, cid if gen.times != rounds else "timing")
            if key in seen:
                continue
            seen.add(key)  # type: ignore[arg-type]
            n = gen.n_images(seeds)
            if gen.cached and isinstance(gen.images, str) and gen.images.startswith("roster"):
                shared = replace(gen, images="roster")
                n, on_roster[shared] = max(n - on_roster.get(shared, 0), 0), max(n, on_roster.get(shared, 0))
                if not n:
                    continue
            evals = n * calls_per_image(gen, stock) * (2 if gen.guidance > 1 else 1) * gen.times
            g.evaluations += evals
            g.images += n * gen.times
            if calibration is not None:
                r = calibration.rate(n)
                secs = evals * r.per_eval + n * gen.times * r.per_image
                if gen.times == rounds and not gen.cached and min_time:
                    secs = max(secs, min_time * gen.times) + secs / gen.times  # repeated to min_time, calibrated
                g.seconds = (g.seconds or 0.0) + secs
    return plan


def budget_seeds(fits: Any, requested: int) -> int | None:
    """The largest seed count up to `requested` whose plan fits (`fits(n)` -> bool); None if not even one."""
    lo, hi = 0, requested
    if fits(requested):
        return requested
    while hi - lo > 1:  # fits(lo) or lo == 0; not fits(hi)
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo or None


def likely_inconclusive(claim_ids: Iterable[str], seeds: int) -> dict[str, int]:
    """Statistical claims the power calculation says `seeds` will likely leave undecided: id -> the --seeds that
    would give them the seeds it needs (a claim on a longer roster, registry.DDPM_SEEDS, needs a smaller one)."""
    out = {}
    for cid in claim_ids:
        c = registry.get(cid)
        if c.kind != "statistical":
            continue
        need = POWER_SEEDS["ddpm" if cid in DDPM_PAIRED else "deterministic"]
        if registry.claim_seeds(c, seeds) < need:
            out[cid] = registry.seeds_option(c, need)
    return out


