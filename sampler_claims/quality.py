"""Per-image quality scores and the control that validates them.

Two metrics, one per path (`--quality {auto,checker,clip}`):
- checker: the embedded model's world has an independent checker (sampler_claims.tinyshapes.checker)
  that reads shape and colours from pixels; its continuous per-image score is paired by seed. Its control:
  DPM-Solver@200 (known good) against DPM-Solver@5 (known bad) (registry QUALITY_CONTROL).
- clip: CLIP score (sampler_claims.clip), the measure of Hugging Face's evaluation guide and the path
  Stable Diffusion 1.5 takes. Its control: DPM-Solver@20 against DPM-Solver@5, a tighter control than the
  checker's (registry CLIP_CONTROL). On the embedded
  model `--quality clip` runs exactly that path with the world's tiny CLIP, and the checker referees it.

Margins are stated in "wrong attributes per image" (registry.SCORE_PER_WRONG_ATTRIBUTE for the checker,
registry.CLIP_PER_WRONG_ATTRIBUTE for each CLIP), so one argument gives the margin on either scale.

Every quality claim decides only through `gated(control, ...)`: the score must separate its known-good
case from its known-bad control on the same seeds in the same run. The controls' samplers and step counts are
read from each claim's registry entry (`quality_control`, `clip_control`), never fixed here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine import Engine, Generation, Request
from .metrics import residual_noise
from .options import QUALITY_MODES  # noqa: F401 - re-exported: the modes are checked at start-up
from .registry import CLIP_CONTROL, Control
from .schedulers import SchedulerSpec
from .verdict import Separation, separation


NO_CHECKER = ("no validated quality metric on this model: the embedded model's checker only reads its own "
              "shapes world, and a reference-free proxy (noise, sharpness) was never shown to separate a good "
              "sampler from a bad one; run on the embedded model (--model tiny) for a quality verdict")


@dataclass(frozen=True)
class Roster:
    """The prompt-seed pairs every statistical claim shares, so that their generations are shared too."""

    prompts: tuple[str, ...]
    seeds: tuple[int, ...]

    def request(self, spec: SchedulerSpec, steps: int, **kw: object) -> Request:
        return Request(spec, steps, self.seeds, self.prompts, **kw)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.seeds)


class Quality:
    """Scores of generated images against their prompts, computed once per generation.

    mode "checker": the tiny world's checker (None without one); mode "clip": CLIP score with `clip` (a
    ClipScorer), or None with `clip_error` as the reason when no CLIP could be loaded.
    """

    def __init__(self, has_checker: bool, mode: str = "checker", clip: object | None = None, clip_error: str = "",
                 clip_per_wrong_attribute: float | None = None) -> None:
        if mode not in ("checker", "clip"):
            raise ValueError(f"quality mode must be checker or clip, got {mode!r}")
        self.has_checker = has_checker
        self.mode = mode
        self.clip = clip
        self.clip_error = clip_error
        self.clip_per_wrong_attribute = clip_per_wrong_attribute
        self._cache: dict[int, tuple[Generation, list]] = {}
        self._clip_cache: dict[int, tuple[Generation, list[float]]] = {}
        #: The CLIP score's control as last run (control()); before that, the registry's shared one.
        self.clip_control: Control = CLIP_CONTROL.value

    @property
    def available(self) -> bool:
        return (self.clip is not None) if self.mode == "clip" else self.has_checker

    @property
    def metric(self) -> str:
        if self.mode == "clip":
            return f"CLIP score ({getattr(self.clip, 'name', 'unavailable')})"
        return "checker score"

    @property
    def missing(self) -> str:
        """Why the quality claims cannot decide on this model (the fix included), when they cannot."""
        if self.mode == "clip":
            return f"CLIP score unavailable: {self.clip_error}" if self.clip is None else ""
        return "" if self.has_checker else NO_CHECKER

    @property
    def basis(self) -> str:
        if self.mode == "clip":
            if self.clip is None:
                return self.missing
            return (f"CLIP score (100 x cosine of {self.clip.name} image and text embeddings, clipped at 0), paired "
                    f"by seed; control {self.clip_control.good_run.label} vs {self.clip_control.bad_run.label}")
        return ("checker score (tiny world: shape IoU and two colour scores, each 0..1), paired by seed"
                if self.has_checker else NO_CHECKER)

    def margin(self, checker_margin: float) -> float:
        """A margin stated on the checker's scale, on the active metric's scale: the same number of wrong
        attributes per image (registry.SCORE_PER_WRONG_ATTRIBUTE, registry.CLIP_PER_WRONG_ATTRIBUTE)."""
        from .registry import SCORE_PER_WRONG_ATTRIBUTE

        if self.mode != "clip":
            return checker_margin
        if self.clip_per_wrong_attribute is None:  # no CLIP loaded: nothing will be compared with it
            return float("nan")
        return round(checker_margin / SCORE_PER_WRONG_ATTRIBUTE * self.clip_per_wrong_attribute, 4)

    def checker_readings(self, gen: Generation) -> list | None:
        """The checker's Scores per image of a generation (None without a checker), whatever the mode."""
        if not self.has_checker:
            return None
        key = id(gen)
        if key not in self._cache:
            from .tinyshapes import checker

            self._cache[key] = (gen, checker.adherence(list(gen.images), gen.request.prompts)["scores"])
        return self._cache[key][1]

    def readings(self, gen: Generation) -> list | None:
        return self.checker_readings(gen) if self.mode == "checker" else None

    def checker_scores(self, gen: Generation) -> list[float] | None:
        r = self.checker_readings(gen)
        return None if r is None else [s.score for s in r]

    def clip_scores(self, gen: Generation) -> list[float] | None:
        if self.clip is None:
            return None
        key = id(gen)
        if key not in self._clip_cache:
            self._clip_cache[key] = (gen, self.clip.scores(list(gen.images), gen.request.prompts))
        return self._clip_cache[key][1]

    def scores(self, gen: Generation) -> list[float] | None:
        """Per-image scores of the active metric (None when it is unavailable on this model)."""
        return self.clip_scores(gen) if self.mode == "clip" else self.checker_scores(gen)

    def matches(self, gen: Generation) -> list[bool] | None:
        """Pass/fail per image (the checker's match: all three attributes read as asked)."""
        if not self.has_checker:
            return None
        from .tinyshapes import checker

        return checker.adherence(list(gen.images), gen.request.prompts)["per_image"]

    def control(self, engine: Engine, roster: Roster, checker: Control,
                clip: Control) -> tuple[Separation | None, Generation, Generation]:
        """The quality control of this run, and the converged reference and the bad generation.

        checker: does the score separate `checker`'s good from its bad (DPM-Solver@200 from @5)? clip: `clip`'s
        good from its bad (DPM-Solver@20 from @5). The second element is always `checker`'s good generation (the
        converged reference the claims compare with), the third its bad one.
        """
        good = engine.generate(roster.request(SchedulerSpec.of(checker.sampler), checker.good))
        bad = engine.generate(roster.request(SchedulerSpec.of(checker.sampler), checker.bad))
        if self.mode == "clip":
            self.clip_control = clip
            if self.clip is None:
                return None, good, bad
            mid = engine.generate(roster.request(SchedulerSpec.of(clip.sampler), clip.good))
            low = engine.generate(roster.request(SchedulerSpec.of(clip.sampler), clip.bad))
            return separation(self.metric, self.clip_scores(mid), self.clip_scores(low), clip.good_run.label,
                              clip.bad_run.label), good, bad
        g, b = self.scores(good), self.scores(bad)
        if g is None or b is None:
            return None, good, bad
        return separation("checker score", g, b, checker.good_run.label, checker.bad_run.label), good, bad

    def referee(self) -> "Quality | None":
        """Under clip on a model with a checker: the checker, sharing this object's caches, as the referee."""
        if self.mode != "clip" or not self.has_checker:
            return None
        ref = Quality(True, "checker")
        ref._cache = self._cache
        return ref


def noise_per_image(images: np.ndarray) -> list[float]:
    """Residual noise sigma (skimage estimate_sigma, 0..255) of each image."""
    return [residual_noise(im) for im in images]


def referee_control(referee: Quality, good: Generation, bad: Generation, checker: Control) -> Separation | None:
    """The checker's own control (`checker`: DPM-Solver@200 against @5) when it referees the CLIP path."""
    g, b = referee.checker_scores(good), referee.checker_scores(bad)
    if g is None or b is None:
        return None
    return separation("checker score", g, b, checker.good_run.label, checker.bad_run.label)


def match_rates(quality: Quality, gens: dict, labels: dict[str, str] | None = None) -> dict[str, float] | None:
    """The checker's match rate per generation (keyed by `labels[name]` when given), where the model has a
    checker."""
    if not quality.has_checker:
        return None
    return {(labels or {}).get(n, n): sum(quality.matches(g)) / len(g.request.seeds) for n, g in gens.items()}


def show_basis(claim: object, quality: Quality, control: Separation | None, margins: dict[str, float],
               convergence: object | None = None, referee: object | None = None) -> None:
    """The report's 'basis' table of a quality claim: its metric, its control and how widely the metric
    separated it, its margins on the metric's scale, the convergence check and, under --quality clip on a
    model with a checker, the checker's own verdict (the referee)."""
    rows: list[list[object]] = [["metric", quality.basis]]
    rows.append(["control", str(control) if control is not None else (quality.missing or "none")])
    for name, value in margins.items():
        rows.append([f"margin: {name}", f"{value:g} ({quality.metric})"])
    if convergence is not None:
        rows.append(["reference check", str(convergence.check)])
        rows.append(["convergence control", str(convergence.control)])
    if referee is not None:
        rows.append(["referee (checker) verdict", f"{referee.verdict}: {referee.reason}"])
    claim.table("Quality basis: metric, control, margins", ["what", "value"], rows)  # type: ignore[attr-defined]
