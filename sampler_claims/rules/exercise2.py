"""Rules of Exercise 2 (DDIM determinism against DDPM stochasticity): measurements and verdicts.

Identity claims are exact (the runs are the population: no interval). `ddpm-50-step-count` is
statistical: checker scores paired by seed, decided by intervals against the comparable margin.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..counters import count_random_draws
from ..engine import Engine, Request
from ..metrics import Difference, difference
from ..schedulers import DDIM, DDPM, DDPM_TRAILING, SchedulerSpec, make_scheduler
from ..verdict import Separation, Verdict, all_of, at_least, equivalent, exact, gated, inconclusive, paired

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
#: The three configurations the claim compares, on the shared roster.
STEP_COUNT_CONFIGS = {"DDPM@1000": (DDPM_TRAILING, 1000), "DDPM@50": (DDPM, 50), "DDIM@50": (DDIM, 50)}


def ddpm_50_step_count(scores: dict[str, Sequence[float]], control: Separation | None, *, margin: float,
                       step_effect_margin: float = 0.0, missing: str = "") -> Verdict:
    """'About step count, not stochastic vs deterministic': DDPM@1000 scores above DDPM@50 (the interval of
    the paired gap above step_effect_margin), and DDIM@50 is within the comparable margin of DDPM@50
    (stochasticity at equal steps makes no real difference)."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    steps = at_least(paired(scores["DDPM@1000"], scores["DDPM@50"], "DDPM@1000 - DDPM@50"), step_effect_margin,
                     "step-count effect: score DDPM@1000 - DDPM@50")
    stoch = equivalent(paired(scores["DDIM@50"], scores["DDPM@50"], "DDIM@50 - DDPM@50"), margin,
                       "stochastic-vs-deterministic effect at 50 steps: score DDIM@50 - DDPM@50")
    return gated(control, all_of([steps.named("DDPM@50 is worse than DDPM@1000"),
                                  stoch.named("and not because it is stochastic")], "ddpm-50-step-count"), missing)
