"""The shared shape of a quality claim: its metric and that metric's control, the referee, the basis table and one
decision, so that a quality claim's test reads measure (the engine) -> evidence (images, tables) -> decide.

A rule is written once, as a function of a `Judge` (scores, control, margins, reference check of one metric).
`QualityClaim.decide(rule)` runs it for the active metric and, under `--quality clip` on a model with a checker,
for the checker as referee (recorded beside it, never deciding), shows the basis table and decides.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .convergence import Basis, ReferenceCheck
from .engine import Generation
from .quality import Quality, referee_control, show_basis
from .registry import Control
from .results import ClaimRecorder
from .verdict import Separation, Verdict


@dataclass(frozen=True)
class Judge:
    """One metric's view of a quality claim, as its rule reads it."""

    metric: str
    scores: Callable[[Generation], list[float] | None]
    control: Separation | None
    #: A margin stated on the checker's scale, on this metric's scale (Quality.margin; identity for the checker).
    scale: Callable[[float], float]
    t: Callable[[str], Any]
    #: Why this metric cannot decide on this model, when it cannot ("" otherwise).
    missing: str = ""
    #: The converged reference's own check (CLIP path), for the statements made against the reference.
    reference: ReferenceCheck | None = None

    def margin(self, name: str) -> float:
        """The claim's threshold `name` on this metric's scale."""
        return self.scale(self.t(name))


@dataclass
class QualityClaim:
    """A quality claim's metric, control and reference as this run computed them from the claim's registry entry."""

    claim: ClaimRecorder
    quality: Quality
    control: Separation | None
    #: The checker control's good generation (the converged reference, DPM-Solver@200) and its bad one (@5).
    good: Generation
    bad: Generation
    checker_control: Control
    #: The convergence basis (CLIP path, claims whose entry names a convergence reference), else None.
    convergence: Basis | None = None

    @property
    def judge(self) -> Judge:
        """The active metric (--quality)."""
        q = self.quality
        return Judge(q.metric, q.scores, self.control, q.margin, self.claim.t, q.missing,
                     self.convergence.check if self.convergence is not None else None)

    @property
    def referee(self) -> Judge | None:
        """Under --quality clip on a model with a checker: the checker, with its own control, on its own scale."""
        ref = self.quality.referee()
        if ref is None:
            return None
        return Judge("checker score", ref.checker_scores,
                     referee_control(ref, self.good, self.bad, self.checker_control), lambda m: m, self.claim.t)

    @property
    def metric(self) -> str:
        return self.quality.metric

    def scores(self, gen: Generation) -> list[float] | None:
        return self.quality.scores(gen)

    def margin(self, name: str) -> float:
        return self.judge.margin(name)

    def decide_if_no_metric(self, rule: Callable[[Judge], Verdict]) -> None:
        """Without a validated metric on this model, decide now (inconclusive, with the fix) before any score
        is read; otherwise return."""
        if self.control is None:
            self.claim.key(f"no validated quality metric on this model ({self.quality.mode})")
            self.claim.decide(rule(self.judge))

    def referee_verdict(self, rule: Callable[[Judge], Verdict]) -> Verdict | None:
        """The rule decided by the referee (recorded in the claim's metrics), or None without one."""
        judge = self.referee
        if judge is None:
            return None
        verdict = rule(judge)
        self.claim.metric(referee=verdict.as_dict())
        return verdict

    def decide(self, rule: Callable[[Judge], Verdict], margins: Mapping[str, str]) -> None:
        """Referee, basis table (its `margins`: label -> threshold name), then the one decision (claim.decide:
        call it last)."""
        referee = self.referee_verdict(rule)
        show_basis(self.claim, self.quality, self.control, {label: self.margin(name) for label, name in margins.items()},
                   self.convergence, referee)
        self.claim.decide(rule(self.judge))
