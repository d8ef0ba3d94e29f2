"""Diffusers schedulers by short name, always made from the pipeline's *stock* config plus explicit overrides.

The lesson swaps schedulers with `XScheduler.from_config(pipe.scheduler.config)`; doing the same here,
and recording the exact config used, is what lets a claim say which config a verdict holds for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    DPMSolverSinglestepScheduler,
    EDMEulerScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import logging as diffusers_logging

from .names import LABELS, STOCHASTIC  # noqa: F401 - re-exported: the names live without diffusers


class DDIMNextStepScheduler(DDIMScheduler):
    """DDIM whose step goes to the schedule's own next timestep: the corrected step that
    `ddim-step-lands-on-schedule` compares the stock one with.

    `DDIMScheduler.step` takes the previous timestep as `t - num_train_timesteps // num_inference_steps` whatever
    the `timestep_spacing` (diffusers #12633, #11347). This class changes only that: for the duration of one stock
    `step` call, the alpha the stock step reads at `t - T // N` (or the final alpha, when that is negative) is the
    alpha of the next timestep in `self.timesteps` (or the final alpha after the last one). Every other line of the
    update, the variance with eta > 0 included, is diffusers' own. Where the stock step lands on the schedule the
    two are the same computation.
    """

    def step(self, model_output: Any, timestep: Any, sample: Any, eta: float = 0.0,
             use_clipped_model_output: bool = False, generator: Any = None, variance_noise: Any = None,
             return_dict: bool = True) -> Any:
        # The signature is the stock one: the pipeline reads it to decide whether to pass eta and generator.
        t = int(timestep)
        schedule = [int(x) for x in self.timesteps]
        i = schedule.index(t)
        following = schedule[i + 1] if i + 1 < len(schedule) else -1
        target = self.alphas_cumprod[following] if following >= 0 else self.final_alpha_cumprod
        stock_prev = t - self.config.num_train_timesteps // self.num_inference_steps
        saved = self.alphas_cumprod, self.final_alpha_cumprod
        try:
            if stock_prev >= 0:
                alphas = saved[0].clone()
                alphas[stock_prev] = target
                self.alphas_cumprod = alphas
            else:
                self.final_alpha_cumprod = target
            return super().step(model_output, timestep, sample, eta, use_clipped_model_output, generator,
                                variance_noise, return_dict)
        finally:
            self.alphas_cumprod, self.final_alpha_cumprod = saved


SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpm-solver": DPMSolverMultistepScheduler,
    "dpm-solver-single": DPMSolverSinglestepScheduler,
    "heun": HeunDiscreteScheduler,
    "euler": EulerDiscreteScheduler,
    "euler-a": EulerAncestralDiscreteScheduler,
    "lms": LMSDiscreteScheduler,
    "pndm": PNDMScheduler,
    "unipc": UniPCMultistepScheduler,
    "deis": DEISMultistepScheduler,
    "kdpm2": KDPM2DiscreteScheduler,
    "kdpm2-a": KDPM2AncestralDiscreteScheduler,
    "dpm-sde": DPMSolverSDEScheduler,
    "edm-euler": EDMEulerScheduler,
    #: Not a diffusers scheduler: DDIM with the step to the schedule's next timestep (ddim-step-lands-on-schedule).
    "ddim-next": DDIMNextStepScheduler,
}
def short_name(cls: type) -> str | None:
    """The short name of a diffusers scheduler class, None for one this suite does not know."""
    for name, known in SCHEDULERS.items():
        if known.__name__ == cls.__name__:
            return name
    return None


def compatible_names(scheduler: Any) -> list[str]:
    """Short names (class names for schedulers this suite does not know) of a scheduler's `compatibles`, in
    diffusers' order, each once: what the atlas and steps-are-calls run, and what the cost plan counts."""
    names = [short_name(c) or c.__name__ for c in scheduler.compatibles]
    return sorted(set(names), key=names.index)


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler by short name with explicit config overrides; hashable, so it can key the cache."""

    name: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, **overrides: Any) -> "SchedulerSpec":
        if name not in SCHEDULERS:
            raise KeyError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
        return cls(name, tuple(sorted(overrides.items())))

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.overrides)
        return LABELS[self.name] + (f" ({extra})" if extra else "")


#: The schedulers the lesson's claims name, defined once (claims that vary a setting build their own spec).
DDPM = SchedulerSpec.of("ddpm")
#: DDPM at 1000 steps needs trailing spacing with SD 1.5's stock config (diffusers #10003, lesson-code-runs).
DDPM_TRAILING = SchedulerSpec.of("ddpm", timestep_spacing="trailing")
DDIM = SchedulerSpec.of("ddim")
DPM = SchedulerSpec.of("dpm-solver")


def make_scheduler(spec: SchedulerSpec, stock_config: Any) -> tuple[SchedulerMixin, dict[str, Any]]:
    """The scheduler and the exact config it was made from (stock values plus the overrides)."""
    cls = SCHEDULERS[spec.name]
    # from_config ignores the stock keys a class does not take, and logs a warning each time it does
    # (EDMEuler on SD's config would log hundreds in the atlas): quiet it for this call only.
    log = diffusers_logging.get_logger("diffusers.configuration_utils")
    level = log.level
    log.setLevel(diffusers_logging.ERROR)
    try:
        scheduler = cls.from_config(stock_config, **dict(spec.overrides))
    finally:
        log.setLevel(level)
    used = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    used["_class_name"] = cls.__name__
    return scheduler, used


def canonical(spec: SchedulerSpec, stock_config: Any, _memo: dict[Any, SchedulerSpec] = {}) -> SchedulerSpec:  # noqa: B006
    """`spec` without the overrides the stock config already gives: the same scheduler class and config, so the
    same images. A claim may spell out a default to say what it compares (DPM-Solver with final_sigmas_type="zero"
    beside "sigma_min", timestep_spacing="leading" beside "trailing"); the engine's cache and the plan key a
    generation by this form, so the stock run another claim makes is computed once, not twice. An override is
    dropped only if the config made without it is the config made with it; a spec that cannot be made stays as
    it is (its own error comes when it runs)."""
    if not spec.overrides:
        return spec
    key = (spec, config_key(stock_config))
    if key not in _memo:
        try:
            _, used = make_scheduler(spec, stock_config)
            kept = tuple(o for o in spec.overrides
                         if make_scheduler(SchedulerSpec(spec.name, tuple(x for x in spec.overrides if x != o)),
                                           stock_config)[1] != used)
            out = SchedulerSpec(spec.name, kept)
            _memo[key] = out if make_scheduler(out, stock_config)[1] == used else spec
        except Exception:  # noqa: BLE001 - a spec that cannot be made is keyed as written
            _memo[key] = spec
    return _memo[key]


def config_key(config: Any) -> tuple[tuple[str, str], ...]:
    """A hashable form of a scheduler config by its content (a memo keyed by a dict's id could meet another dict
    at the same address once the first is gone)."""
    return tuple(sorted((str(k), repr(v)) for k, v in dict(config).items()))
