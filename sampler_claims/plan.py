"""The cost of a claims run, before the first generation: planned U-Net evaluations per claim group, and the
time they take on this device, dtype and size from a short calibration.

Counted in U-Net evaluations, images x calls with CFG counted (a guided call evaluates two samples per image).
The generations are the runs each claim declares in the catalogue (sampler_claims/catalogue/*.toml), the same
entries its test asks for by name; nothing here lists a claim's configurations. A generation that several claims
share is computed once (the engine's cache) and counted once, in the first claim that makes it, in the order the
tests run; claims.json records, per claim, these planned evaluations beside those the run made. The number of calls of a configuration is the scheduler's own: its
`timesteps` after `set_timesteps` on the model's stock config (Heun makes 2N-1). Under xdist each worker
computes what its groups share again, so the plan is the serial cost.

The estimate: each generation's U-Net calls at a per-call cost (a fixed part plus a part per sample in the call's
batch, so a request of 8 seeds in two lanes of 4 costs what it does, not what the roster's rate says) and its images
at a per-image cost (text encoding, decoding), from sampler_claims.calibration, which measures the run's roster as
the engine runs it and one seed on one thread; times a factor for the tests' own work (scoring, SSIM, captures,
bookkeeping) where it was measured for the model and device (calibration.OVERHEAD).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths, registry
from .calibration import Calibration, Rate, calibrate  # noqa: F401 - the calibration lives there now
from .progress import plural
from .runs import DEFAULTS, ROUNDS, RunSpec

#: Seeds the power calculation (registry.SEEDS_POWER) needs for an equivalence to be decided with 80% power:
#: paired differences between deterministic samplers (sd 0.058) and pairs with stochastic DDPM (sd 0.22).
POWER_SEEDS = {kind: registry.power_seeds(kind) for kind in registry.SEEDS_PILOT}
#: What the plan calls the timing rounds: one shared set of generations, paid by the first timing claim that runs.
TIMING_ROUNDS = "the timing rounds"


def ddpm_paired(claim: registry.Claim) -> bool:
    """A statistical claim whose deciding comparison pairs a sampler with DDPM (its independent noise barely
    pairs): it runs on registry.DDPM_SEEDS times the roster."""
    return "ddpm_seeds" in claim.thresholds


def control_runs(claim: registry.Claim, quality: str) -> list[RunSpec]:
    """The runs a quality claim's metric control and (on the CLIP path) its convergence reference make: controls
    and references are runs too, declared by the claim's quality and convergence thresholds (one home for each)."""
    out: list[RunSpec] = []

    def run(name: str, r: registry.Run) -> RunSpec:
        return RunSpec(name, r.sampler, r.steps, guidance=DEFAULTS["guidance"], seeds="roster")

    if "quality_control" in claim.thresholds:
        c = claim.t("quality_control")
        out += [run("control-good", c.good_run), run("control-bad", c.bad_run)]
        if quality == "clip":
            c = claim.t("clip_control")
            out += [run("clip-control-good", c.good_run), run("clip-control-bad", c.bad_run)]
    if quality == "clip" and "convergence_reference" in claim.thresholds:
        check, pair = claim.t("reference_check"), claim.t("convergence_control")
        out += [run("reference", claim.t("convergence_reference"))]
        out += [run(f"reference-{k}", r) for k, r in (("near", check.good_run), ("far", check.bad_run),
                                                        ("good", pair.good_run), ("bad", pair.bad_run))]
    return out


def timing_runs() -> list[RunSpec]:
    """The timing rounds: every run a timing claim declares with repeat = "rounds", once per round on one seed,
    uncached, plus the warm-up call (the smallest configuration, once)."""
    from .timing import timed_runs

    runs = list(timed_runs().values())
    if not runs:
        return []
    smallest = min(runs, key=lambda r: r.steps * (2 if r.guidance > 1 else 1))
    return runs + [replace(smallest, name="warm-up", repeat=1)]


def claim_runs(claim: registry.Claim, *, quality: str, atlas: bool, trained: bool,
               compatibles: list[str]) -> list[RunSpec]:
    """The runs claim `claim` makes in this run, as its catalogue entry declares them: its own (those its
    conditions allow, 'compatibles' expanded), the timing rounds if it reads them, and its quality control."""
    from .catalogue import expand

    if claim.needs_trained_model and not trained:
        return []  # skipped before it generates
    allowed = {"": True, "trained": trained, "atlas": atlas, "clip": quality == "clip"}
    own = [r for run in claim.runs.values() if allowed[run.only] and run.repeat != ROUNDS
           for r in expand(run, compatibles)]
    # In the order the test makes them: its fixtures first (the quality control and convergence reference, the
    # timing rounds), then its own runs.
    out: list[RunSpec] = []
    timed = any(run.repeat == ROUNDS for run in claim.runs.values())
    if claim.needs_trained_model and (not claim.runs or own or timed):
        out += control_runs(claim, quality)
    if timed:
        out += timing_runs()
    return out + own


def canonical_config(run: RunSpec, stock: dict[str, Any]) -> tuple[Any, ...]:
    """The run's config with its scheduler in canonical form (schedulers.canonical), as the engine's cache keys it:
    a run that spells out a stock default is the stock run."""
    from .schedulers import canonical

    if not run.overrides:
        return run.config
    try:
        spec = run.spec()
    except KeyError:  # a scheduler this suite does not know by name: keyed as written
        return run.config
    return replace(run, overrides=canonical(spec, stock).overrides).config


def request_label(run: RunSpec) -> str:
    """The label the engine's request for this run has (sampler_claims.engine.Request.label)."""
    return run.request((0,), "").label


def compatible_names(model_source: str) -> list[str]:
    """Short names of the stock scheduler's compatibles, as steps-are-calls runs them (sampler_claims.atlas)."""
    import diffusers

    from .schedulers import compatible_names as names_of

    config = stock_scheduler_config(model_source)
    stock = getattr(diffusers, config.get("_class_name", "PNDMScheduler"))
    return [name for name in names_of(stock()) if buildable(name, config)]


def buildable(name: str, stock: dict[str, Any]) -> bool:
    """Whether this environment can make the scheduler at all: one whose optional dependency is missing (DPM-Solver
    SDE without torchsde) fails before its first step, so its runs make no generation and plan none."""
    from .schedulers import SCHEDULERS, SchedulerSpec, make_scheduler

    if name not in SCHEDULERS:
        return True  # a scheduler this suite does not know runs (or fails) by its class name
    try:
        make_scheduler(SchedulerSpec.of(name), stock)
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------ counting
def stock_scheduler_config(model_source: str) -> dict[str, Any]:
    """The model's stock scheduler config, read from its folder (SD 1.5's for a hub id not on disk)."""
    from diffusers import DDPMScheduler

    folder = Path(model_source) / "scheduler"
    if not (folder / "scheduler_config.json").is_file():
        folder = paths.SD15_RANDOM / "scheduler"
    return dict(DDPMScheduler.load_config(folder))


def calls_per_image(gen: RunSpec, stock: dict[str, Any], _memo: dict[Any, int] = {},  # noqa: B006
                    _made: dict[Any, Any] = {}) -> int:  # noqa: B006
    """U-Net calls of one generation: the scheduler's timesteps after set_timesteps (a step that fails at the
    first call, like the stock DDPM@1000 of lesson-code-runs, is not listed). One scheduler per configuration
    serves every step count (KDPM2's take a third of a second each to make): every scheduler's set_timesteps sets
    the timesteps from the step count and its config alone, whatever an earlier call left."""
    from .schedulers import SchedulerSpec, config_key, make_scheduler

    real = dict(gen.overrides)
    config = (gen.sampler, tuple(sorted(real.items())), config_key(stock))
    key = (gen.steps, config)
    if key not in _memo:
        from diffusers.utils import logging as diffusers_logging

        log = diffusers_logging.get_logger("diffusers.schedulers")
        level = log.level
        log.setLevel(diffusers_logging.ERROR)  # e.g. lower_order_final's notice: the count is all we want
        try:
            if config not in _made:
                _made[config] = make_scheduler(SchedulerSpec.of(gen.sampler, **real), stock)[0]
            sched = _made[config]
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
    #: U-Net evaluations per claim, each shared generation counted in the first claim that makes it.
    per_claim: dict[str, int] = field(default_factory=dict)
    #: The generations each claim makes, as (the engine request's label, images), one entry per generation.
    per_claim_runs: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        return sum(g.evaluations for g in self.groups.values())

    @property
    def seconds(self) -> float | None:
        if self.calibration is None:
            return None
        return sum(g.seconds or 0.0 for g in self.groups.values())

    def lines(self) -> list[str]:
        out = [f"claims plan: {plural(self.seeds, 'seed')}; U-Net evaluations per claim group (images x calls, CFG "
               "counted, shared generations once)" + ("; estimated time" if self.calibration else "")]
        for g in sorted(self.groups.values(), key=lambda g: -g.evaluations):
            t = f", ~{fmt_time(g.seconds)}" if g.seconds is not None else ""
            images = "image " if g.images == 1 else "images"
            out.append(f"claims plan:   {g.group:<12} {g.evaluations:>12,} evaluations, {g.images:>6,} {images}{t}  "
                       f"({', '.join(g.claims)})")
        total = f", ~{fmt_time(self.seconds)} estimated" if self.seconds is not None else ""
        out.append(f"claims plan:   {'total':<12} {self.evaluations:>12,} evaluations{total} (serial; xdist "
                   "workers recompute what their groups share)")
        if self.calibration is not None:
            out.append(f"claims plan: {self.calibration.describe()}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "evaluations": self.evaluations,
                "estimated_s": None if self.seconds is None else round(self.seconds, 1),
                "groups": {g.group: {"claims": g.claims, "evaluations": g.evaluations, "images": g.images,
                                     "estimated_s": None if g.seconds is None else round(g.seconds, 1)}
                           for g in self.groups.values()},
                "per_claim": dict(self.per_claim),
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
    """The plan of the selected claims, in the order given (the order the tests run in): each claim's declared runs
    (claim_runs), a generation that an earlier claim already made counted once, in the claim that makes it. On
    random weights (`trained` False) the quality claims are skipped before they generate, so they plan nothing."""
    from .timing import TIMING_ROLE

    stock = stock_scheduler_config(model_source)
    rounds, min_time = timing_settings(rounds)
    plan = Plan(seeds, calibration=calibration, timing_min_s=min_time)
    compatibles = compatible_names(model_source)
    seen: set[Any] = set()
    #: Roster lengths already planned per configuration: a longer roster of the same configuration costs only its
    #: extra seeds (the engine reuses the cached first ones).
    on_roster: dict[Any, set[int]] = {}
    for cid in dict.fromkeys(claim_ids):
        claim = registry.get(cid)
        g = plan.groups.setdefault(claim.group, GroupPlan(claim.group, []))
        g.claims.append(cid)
        plan.per_claim[cid] = 0
        plan.per_claim_runs[cid] = []
        frames = claim.t("frames", int) if "frames" in claim.thresholds else 0
        for run in claim_runs(claim, quality=quality, atlas=atlas, trained=trained, compatibles=compatibles):
            timed = run.repeat == ROUNDS or run.name == "warm-up" and any(
                r.repeat == ROUNDS for r in claim.runs.values())
            n = run.images(seeds, registry.claim_seeds(claim, seeds), frames)
            config = canonical_config(run, stock)
            if timed:
                key: Any = (TIMING_ROUNDS, config, run.name == "warm-up")
                if run.name != "warm-up":  # the rounds keep their images for the single-seed runs asked later
                    seen.add((config, "single", TIMING_ROLE))
            elif not run.cached:
                key = (cid, run.name, config)
            elif run.seeds in ("roster", "claim"):
                # As the engine's cache serves it: the same length is a hit, a longer request extends the longest
                # shorter one made (only its extra seeds run), and a shorter one after a longer runs whole.
                key = None
                made = on_roster.setdefault(config, set())
                if n in made:
                    continue
                shorter = max((k for k in made if k < n), default=0)
                made.add(n)
                n -= shorter
            else:
                key = (config, run.seeds, claim.single_role if run.seeds == "single" else "")
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            times = run.times(rounds)
            if run.seeds == "pairs":  # one generation per frame, over one image per pair of roster seeds
                n, times = seeds // 2, times * (frames + 2)
            evals = n * calls_per_image(run, stock) * (2 if run.guidance > 1 else 1) * times
            g.evaluations += evals
            g.images += n * times
            plan.per_claim[cid] += evals
            plan.per_claim_runs[cid] += [(request_label(run), n)] * times
            if calibration is not None:
                secs = calibration.generation_seconds(n, calls_per_image(run, stock), run.guidance > 1, times)
                if run.repeat == ROUNDS and min_time:
                    secs = max(secs, min_time * times) + secs / times  # repeated to min_time, calibrated
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
        need = POWER_SEEDS["stochastic" if ddpm_paired(c) else "deterministic"]
        if registry.claim_seeds(c, seeds) < need:
            out[cid] = registry.seeds_option(c, need)
    return out


