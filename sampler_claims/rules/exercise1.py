"""Rules of Exercise 1 (same model, different sampler): measurements and the verdicts they decide.

Measurements run the engine and return plain dataclasses; rules take those (or numbers) and return a
`Verdict`. Keeping the two apart is what lets tests/test_negative_exercise1.py feed each rule a broken
sampler or a synthetic measurement and show that the verdict turns.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .. import registry
from ..counters import count_unet_calls
from ..engine import Engine, Generation
from ..metrics import ssim
from ..progress import expecting_failure
from ..names import LABELS as SAMPLER_LABELS
from ..names import STOCHASTIC
from ..runs import ROUNDS, RunSpec
from ..schedulers import make_scheduler
from ..timing import Rounds, run_timed_name
from ..verdict import (
    CONFIRMED,
    REFUTED,
    Interval,
    Separation,
    Verdict,
    all_of,
    at_least,
    equivalent,
    exact,
    gated,
    inconclusive,
    paired,
    t_interval,
    unless_clocks_disagree,
    within,
)

# ---------------------------------------------------------------------------- same-weights

def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes), order-stable."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def same_weights(hashes: dict[str, str]) -> Verdict:
    """Same weights = one U-Net hash at every checkpoint (before, after each swap, after sampling)."""
    distinct = sorted(set(hashes.values()))
    if len(distinct) == 1:
        return exact(True, f"U-Net hash unchanged across {len(hashes)} checkpoints ({distinct[0][:12]}…)",
                     checkpoints=len(hashes))
    changed = [k for k, v in hashes.items() if v != hashes[next(iter(hashes))]]
    return exact(False, f"U-Net weights changed at: {', '.join(changed)}", changed=changed)


# ============================================================================ Exercise 1: the configs
# The configurations are the claims' declared runs (sampler_claims/catalogue/exercise1.toml); what follows names
# them as the lesson does.
def label(run: RunSpec) -> str:
    """A run as the lesson names it, e.g. 'DDPM@1000': its label without the scheduler overrides, which fix a
    config (DDPM's trailing spacing) rather than make another sampler."""
    return replace(run, overrides=()).label


def labels(runs: Mapping[str, RunSpec]) -> dict[str, str]:
    """Run name -> the lesson's name for it (`label`); the full label where two runs would share one."""
    short = {n: label(r) for n, r in runs.items()}
    return {n: s if list(short.values()).count(s) == 1 else runs[n].label for n, s in short.items()}


# ---------------------------------------------------------------------------- lesson-code-runs
@dataclass(frozen=True)
class StockRun:
    """What happens when the lesson's DDPM line runs on the model's stock scheduler config."""

    steps: int
    config: dict[str, Any]  # the settings that decide the timesteps
    first_timestep: int
    num_train_timesteps: int
    error_type: str | None
    error: str | None
    unet_calls: int  # before the error, or in all

    @property
    def ran(self) -> bool:
        return self.error_type is None

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "config": self.config, "first_timestep": self.first_timestep,
                "num_train_timesteps": self.num_train_timesteps, "error_type": self.error_type,
                "error": self.error, "unet_calls": self.unet_calls}


def stock_of(fixed: RunSpec) -> RunSpec:
    """The lesson's literal line for a fixed run: the same sampler and steps from the stock config, no override."""
    return replace(fixed, name="stock", overrides=())


def measure_stock_ddpm(engine: Engine, stock: RunSpec, prompt: str, seed: int) -> StockRun:
    """Run `stock` (stock_of the claim's fixed run) from the stock config and catch what it raises (it fails at
    the first step, so it is cheap; the engine's ledger counts no evaluation of a call that fails)."""
    steps = stock.steps
    scheduler, used = make_scheduler(stock.spec(), engine.stock_config)
    scheduler.set_timesteps(steps)
    keys = ("timestep_spacing", "steps_offset", "num_train_timesteps", "_class_name")
    error_type = error = None
    expected = f"the lesson's line on the stock config meets t={int(scheduler.timesteps[0])}, past the schedule"
    with count_unet_calls(engine.pipe.unet) as calls, expecting_failure(getattr(engine, "progress", None), expected,
                                                                    IndexError):
        try:
            engine.generate(stock.request((seed,), prompt))
        except Exception as exc:  # noqa: BLE001 - the failure is the measurement
            error_type, error = type(exc).__name__, str(exc)
    return StockRun(steps=steps, config={k: used.get(k) for k in keys},
                    first_timestep=int(scheduler.timesteps[0]),
                    num_train_timesteps=int(used["num_train_timesteps"]),
                    error_type=error_type, error=error, unet_calls=calls.calls)


class UnexpectedFailure(RuntimeError):
    """The stock DDPM run failed, but not with the IndexError at t = num_train_timesteps that #10003 is:
    that is an error of the run (out of memory, the guard, a bug), never evidence about the lesson."""


def lesson_code_runs(stock: StockRun, fixed: Generation | None = None) -> Verdict:
    """The lesson's code runs as written iff the stock config completes DDPM at its step count.

    Refuted only by the failure #10003 describes: an IndexError with the first timestep at or past
    num_train_timesteps. Any other exception raises UnexpectedFailure, so the test errors.
    """
    fix = ""
    if fixed is not None:
        spacing = dict(fixed.request.scheduler.overrides).get("timestep_spacing", "stock")
        fix = (f"; with timestep_spacing={spacing!r} it runs ({fixed.unet_calls} U-Net calls, first timestep "
               f"{fixed.timesteps[0]})")
    nums = stock.as_dict()
    if stock.ran:
        return exact(True, f"DDPMScheduler.from_config(stock) ran {stock.steps} steps "
                           f"(first timestep {stock.first_timestep})" + fix, **nums)
    if stock.error_type != "IndexError" or stock.first_timestep < stock.num_train_timesteps:
        raise UnexpectedFailure(
            f"DDPMScheduler.from_config(stock) at {stock.steps} steps failed with {stock.error_type}: {stock.error} "
            f"(first timestep {stock.first_timestep} of {stock.num_train_timesteps}); only an IndexError at "
            "t >= num_train_timesteps is the #10003 finding")
    return exact(False, f"DDPMScheduler.from_config(stock) at {stock.steps} steps raises {stock.error_type} "
                        f"({stock.error}) after {stock.unet_calls} U-Net call(s): spacing "
                        f"{stock.config.get('timestep_spacing')!r} with steps_offset={stock.config.get('steps_offset')} "
                        f"gives first timestep {stock.first_timestep} of {stock.num_train_timesteps} (diffusers #10003)"
                 + fix, **nums)


# ---------------------------------------------------------------------------- comparable-quality
def pairwise_differences(scores: Mapping[str, Sequence[float]]) -> dict[str, Interval]:
    """The paired (same seed) difference of every pair of samplers, a - b, with its 95% interval."""
    names = list(scores)
    return {pair_key(a, b): paired(scores[a], scores[b], f"{a} - {b}")
            for i, a in enumerate(names) for b in names[i + 1:]}


def decide_comparable_quality(judge: Any, gens: Mapping[str, Any], claim_id: str = "comparable-quality") -> Verdict:
    """comparable-quality as its test wires it: one metric's `judge` (sampler_claims.quality_claim.Judge: its scores,
    control, the claim's margin on its scale) over the generations by label, decided by the rule the claim's catalogue
    entry names (comparable_quality, or another quality rule of the same shape). The negative controls call it too."""
    from . import rule_of

    rule = rule_of(registry.get(claim_id))
    return rule({k: judge.scores(g) for k, g in gens.items()}, judge.control,
                margin=judge.margin("comparable_margin"), missing=judge.missing)


def comparable_quality(scores: Mapping[str, Sequence[float]], control: Separation | None, *, margin: float,
                       missing: str = "") -> Verdict:
    """Comparable = every pair's paired score difference lies within +-margin (equivalence, by interval).

    Decides only if the score separated its known-bad control in the same run (`gated`).
    """
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    diffs = pairwise_differences(scores)
    parts = [equivalent(iv, margin, f"score {p.replace('|', ' - ')}") for p, iv in diffs.items()]
    return gated(control, all_of(parts, "comparable quality"), missing)


def not_worse_quality(scores: Mapping[str, Sequence[float]], control: Separation | None, *, margin: float,
                      missing: str = "") -> Verdict:
    """One-sided: no sampler scores below the first one (the reference, listed first) by the margin or more, paired
    by seed; better is allowed. The rule kind of a claim such as "DDIM@25 is no worse than DDIM@50"."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    names = list(scores)
    first = names[0]
    parts = [at_least(paired(scores[n], scores[first], f"{n} - {first}"), -margin, f"score {n} - {first}")
             for n in names[1:]]
    return gated(control, all_of(parts, f"not worse than {first}"), missing)


def margin_position(iv: Interval, margin: float) -> str:
    """Where a paired difference's interval lies against the comparable margin, as `equivalent` decides it:
    inside (confirmed), outside (refuted) or straddles (inconclusive)."""
    return {CONFIRMED: "inside", REFUTED: "outside"}.get(equivalent(iv, margin, "").verdict, "straddles")


# ---------------------------------------------------------------------------- different-paths
@dataclass(frozen=True)
class Paths:
    """Per-seed SSIM of each sampler pair on the same seed, the ODE pair first (`path_pairs`)."""

    seeds: tuple[int, ...]
    ssim: dict[str, list[float]]  # "ddim|dpm-solver" (run names) -> per seed
    #: Run name -> its sampler as the reasons name it ('DDIM'); a name stands for itself where absent.
    samplers: dict[str, str] | None = None

    def sampler(self, name: str) -> str:
        return (self.samplers or {}).get(name, name)

    def mean(self, pair: str) -> float:
        return float(np.mean(self.ssim[pair]))

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "ssim": self.ssim,
                "mean_ssim": {p: round(self.mean(p), 4) for p in self.ssim}}


def pair_key(a: str, b: str) -> str:
    return f"{a}|{b}"


def path_pairs(runs: Mapping[str, RunSpec]) -> tuple[tuple[str, str], ...]:
    """The pairs different-paths compares, from its runs: the two deterministic (ODE) samplers first, then the
    stochastic one with each of them, in declaration order."""
    ode = [n for n, r in runs.items() if r.sampler not in STOCHASTIC]
    noisy = [n for n, r in runs.items() if r.sampler in STOCHASTIC]
    if len(ode) != 2 or len(noisy) != 1:
        raise ValueError(f"different-paths compares two deterministic samplers with one stochastic one "
                         f"({', '.join(sorted(STOCHASTIC))}); its runs are {', '.join(runs) or 'none'}")
    return (ode[0], ode[1]), (noisy[0], ode[0]), (noisy[0], ode[1])


def measure_paths(images: Mapping[str, np.ndarray], seeds: Sequence[int], pairs: Sequence[tuple[str, str]],
                  samplers: Mapping[str, str] | None = None) -> Paths:
    """SSIM (skimage) of every pair of samplers, image by image on the same seed; `pairs` as path_pairs gives
    them (the ODE pair first), `samplers` their names in the reasons."""
    out = {pair_key(a, b): [ssim(images[a][k], images[b][k]) for k in range(len(seeds))] for a, b in pairs}
    return Paths(tuple(seeds), out, dict(samplers) if samplers is not None else None)


def run_samplers(runs: Mapping[str, RunSpec]) -> dict[str, str]:
    """Run name -> its sampler's name ('DDIM'), as Paths names them in the reasons."""
    return {n: SAMPLER_LABELS[r.sampler] for n, r in runs.items()}


def ode_margin_per_seed(paths: Paths) -> list[float]:
    """Per seed: SSIM of the ODE pair (the first) minus the larger SSIM of the two pairs with DDPM (> 0: ODE
    closer)."""
    ode, *others = paths.ssim
    return [paths.ssim[ode][k] - max(paths.ssim[o][k] for o in others) for k in range(len(paths.seeds))]


def decide_different_paths(claim: Any, paths: Paths) -> Verdict:
    """different-paths as its test wires it: the claim's identity threshold and ordering margin (the negative
    controls call it too)."""
    return different_paths(paths, max_identity_ssim=claim.t("max_identity_ssim"),
                           ordering_margin=claim.t("ordering_margin"))


def different_paths(paths: Paths, *, max_identity_ssim: float, ordering_margin: float = 0.0) -> Verdict:
    """Different paths = no pair of samplers gives the same image on any seed (exact), and the two ODE
    samplers (DDIM, DPM-Solver) land closer to each other than either does to stochastic DDPM (the
    interval of the per-seed SSIM margin above `ordering_margin`)."""
    same = {p: sum(v >= max_identity_ssim for v in vals) for p, vals in paths.ssim.items()}
    means = {p: paths.mean(p) for p in paths.ssim}
    text = ", ".join(f"{p.replace('|', ' vs ')} {m:.3f}" for p, m in means.items())
    identical = {p: n for p, n in same.items() if n}
    distinct = exact(not identical, (f"identical images (SSIM >= {max_identity_ssim}) on " + ", ".join(
        f"{n}/{len(paths.seeds)} seeds for {p.replace('|', ' vs ')}" for p, n in identical.items()))
        if identical else f"no pair identical on {len(paths.seeds)} seeds (mean SSIM {text})")
    (a, b), (noisy, _) = (p.split("|") for p in list(paths.ssim)[:2])
    iv = t_interval(ode_margin_per_seed(paths), f"SSIM({paths.sampler(a)}, {paths.sampler(b)}) - max SSIM with "
                                                f"{paths.sampler(noisy)}")
    order = at_least(iv, ordering_margin, "per seed, SSIM of the ODE pair minus the closer pair with DDPM")
    return all_of([distinct, order], "different paths")


# ---------------------------------------------------------------------------- speedup
@dataclass(frozen=True)
class Timed:
    """speedup's timed runs: by the name the lesson's factors use (the run's name without 'timed-'), the timed
    name the rounds keep each under; the baseline (the one run the factors do not name: DDPM@1000) and the
    lesson's name for each."""

    names: dict[str, str]
    base: str
    labels: dict[str, str]


def speedup_timed(claim: Any) -> Timed:
    """The Timed of the speedup claim `claim` (its catalogue entry): its runs with repeat = "rounds", the baseline
    the one its lesson_factor does not name."""
    runs = {n.removeprefix("timed-"): r for n, r in claim.runs.items() if r.repeat == ROUNDS}
    factors = claim.t("lesson_factor")
    base = [n for n in runs if n not in factors]
    unknown = sorted(set(factors) - set(runs))
    if len(base) != 1 or unknown:
        raise ValueError(f"claim {claim.id!r}: lesson_factor names {', '.join(factors)}; its timed runs "
                         f"(timed-<name>) must be those and one baseline, not {', '.join(runs)}")
    return Timed({n: run_timed_name(r) for n, r in runs.items()}, base[0], labels(runs))


def ratio_interval(num: Sequence[float], den: Sequence[float], what: str) -> Interval:
    """Interval of a time ratio over paired rounds, on the log scale (ratios are multiplicative)."""
    iv = t_interval([math.log(a / b) for a, b in zip(num, den)], what)
    return Interval(math.exp(iv.mean), math.exp(iv.low), math.exp(iv.high), iv.n, iv.sd, what, scale="log")


@dataclass(frozen=True)
class Speedup:
    """Per lesson sampler: the time ratio to DDPM@1000 (interval over rounds) and the U-Net call ratio."""

    clock: str
    ratios: dict[str, Interval]
    call_ratio: dict[str, float]
    wall_ratios: dict[str, Interval]
    intercept_s: float  # a of time = a + b * calls, fitted over the three samplers' median times
    per_call_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"clock": self.clock, "ratios": {k: v.as_dict() for k, v in self.ratios.items()},
                "wall_ratios": {k: v.as_dict() for k, v in self.wall_ratios.items()},
                "call_ratio": self.call_ratio, "fixed_overhead_s": self.intercept_s, "per_call_s": self.per_call_s}


def speedup_analysis(rounds: Rounds, timed: Timed) -> Speedup:
    """The time ratio of the baseline to each other timed run, per round, and the fit of time against calls."""
    names = timed.names
    base = names[timed.base]
    others = [n for n in names if n != timed.base]

    def ratios(clock: str) -> dict[str, Interval]:
        return {n: ratio_interval(rounds.seconds(base, clock), rounds.seconds(names[n], clock),
                                  f"time {timed.labels[timed.base]} / {n}") for n in others}

    calls = {n: rounds.unet_calls[names[n]] for n in names}
    med = {n: float(np.median(rounds.seconds(names[n]))) for n in names}
    b, a = np.polyfit([calls[n] for n in names], [med[n] for n in names], 1)
    return Speedup(rounds.clock, ratios(rounds.clock), {n: calls[timed.base] / calls[n] for n in others},
                   ratios("wall"), float(a), float(b))


def decide_speedup(claim: Any, s: Speedup) -> Verdict:
    """speedup as its test wires it: the claim's lesson factors and 'about' band (the negative controls call it
    too)."""
    return speedup(s, claim.t("lesson_factor"), about_factor=claim.t("about_factor"))


def speedup(s: Speedup, lesson_factor: Mapping[str, float], *, about_factor: float) -> Verdict:
    """'About N x faster' = the time ratio's interval lies within [N / f, N * f], f = about_factor, and the
    counted U-Net call ratio is the lesson's N (the speed-up is the one fewer calls explain).

    The deciding clock is CPU time on the CPU; if wall time decides the other way, the verdict is
    inconclusive (a noisy machine may make a claim inconclusive, never its opposite).
    """
    parts = []
    for n, iv in s.ratios.items():
        f = lesson_factor[n]
        calls = exact(math.isclose(s.call_ratio[n], f, rel_tol=0.05),
                      f"{n}: U-Net call ratio {s.call_ratio[n]:.1f} (lesson {f:g})")
        v = within(iv, f / about_factor, f * about_factor, f"{n}: {s.clock}-time ratio")
        w = within(s.wall_ratios[n], f / about_factor, f * about_factor, f"{n}: wall-time ratio")
        v = unless_clocks_disagree(v, w, f"{v.reason}, but {w.reason}: the two clocks disagree (a busy machine)")
        parts.append(all_of([calls, v]))
    overhead = (f"; fit time = {s.intercept_s:.3f} s + {s.per_call_s * 1e3:.2f} ms x U-Net calls over the medians: "
                + ("a positive fixed overhead keeps the ratios under the call ratios" if s.intercept_s > 0 else
                   "no positive fixed overhead"))
    v = all_of(parts, "speed-up")
    return Verdict(v.verdict, v.reason + overhead, {**v.numbers, "speedup": s.as_dict()}, v.seeds_needed)


# ---------------------------------------------------------------------------- cfg-two-passes
@dataclass(frozen=True)
class CfgCounts:
    """U-Net calls and batch sizes of the same config with guidance (CFG) and without."""

    steps: int
    images: int
    cfg_batch_sizes: list[int]
    plain_batch_sizes: list[int]
    cfg_seconds: float | None = None
    plain_seconds: float | None = None

    @property
    def cfg_calls(self) -> int:
        return len(self.cfg_batch_sizes)

    @property
    def plain_calls(self) -> int:
        return len(self.plain_batch_sizes)

    @property
    def sample_ratio(self) -> float:
        return sum(self.cfg_batch_sizes) / max(sum(self.plain_batch_sizes), 1)

    @property
    def time_ratio(self) -> float | None:
        if self.cfg_seconds is None or self.plain_seconds is None:
            return None
        return self.cfg_seconds / self.plain_seconds

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "images": self.images, "cfg_calls": self.cfg_calls,
                "plain_calls": self.plain_calls, "cfg_batch": sorted(set(self.cfg_batch_sizes)),
                "plain_batch": sorted(set(self.plain_batch_sizes)), "sample_ratio": self.sample_ratio,
                "time_ratio": self.time_ratio, "cfg_seconds": self.cfg_seconds, "plain_seconds": self.plain_seconds}


def cfg_counts(cfg: Generation, plain: Generation, cfg_seconds: float | None = None,
               plain_seconds: float | None = None) -> CfgCounts:
    return CfgCounts(cfg.request.steps, len(cfg.request.seeds), list(cfg.unet_batch_sizes),
                     list(plain.unet_batch_sizes), cfg_seconds, plain_seconds)


def cfg_compute_doubles(c: CfgCounts) -> bool:
    """What is true of diffusers' CFG: the U-Net evaluates twice the samples (2B) per step."""
    return math.isclose(c.sample_ratio, 2.0)


def cfg_two_passes(c: CfgCounts) -> Verdict:
    """The lesson's literal form: 2 U-Net forward passes per step, steps x 2 calls in all."""
    time = f"; time ratio 7.5/1.0 = {c.time_ratio:.2f}" if c.time_ratio is not None else ""
    sizes = sorted(set(c.cfg_batch_sizes))
    shape = (f"{c.cfg_calls} U-Net calls for {c.steps} steps with guidance, batch {sizes} for {c.images} "
             f"image(s) (without: {c.plain_calls} calls, batch {sorted(set(c.plain_batch_sizes))}); "
             f"samples evaluated x{c.sample_ratio:.2f}")
    nums = c.as_dict()
    if c.cfg_calls == 2 * c.steps:
        return exact(True, f"two forward passes per step: {shape}{time}", **nums)
    if c.cfg_calls == c.steps and cfg_compute_doubles(c):
        return exact(False, f"one batched forward pass of 2B per step, not two passes: {shape}; the compute "
                            f"doubles but the call count does not{time}", **nums)
    return exact(False, f"neither two passes per step nor one of 2B: {shape}{time}", **nums)


