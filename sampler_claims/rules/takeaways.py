"""Rules of the takeaways: DPM-Solver++ at 20-30 steps is the default to use."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..convergence import gated_reference
from ..runs import ROUNDS, RunSpec
from ..timing import run_timed_name
from ..verdict import Separation, Verdict, all_of, at_most, gated, inconclusive, paired, t_interval

#: The timed run whose time per round is the denominator of every time share (DDPM@1000 in the catalogue).
BASELINE = "timed-baseline"


def candidates(claim: Any) -> dict[int, str]:
    """The candidate defaults of recommended-default by step count: its runs outside the timing rounds (each has a
    timed twin, timed-<name>), in declaration order."""
    out = {r.steps: n for n, r in claim.runs.items() if r.repeat != ROUNDS}
    missing = [n for n in [*(f"timed-{n}" for n in out.values()), BASELINE] if n not in claim.runs]
    if missing:
        raise ValueError(f"claim {claim.id!r}: each candidate run needs its timed twin (timed-<name>) and the "
                         f"rounds a {BASELINE!r} run; missing: {', '.join(missing)}")
    return out


def timed_of(claim: Any, name: str) -> str:
    """The timed name (the rounds' key) of candidate `name`'s timed twin, or of the baseline (BASELINE)."""
    run: RunSpec = claim.run(name if name == BASELINE else f"timed-{name}")
    return run_timed_name(run)


def decide_recommended_default(judge: Any, reference: Any, gens: Mapping[int, Any],
                               shares: Mapping[int, Sequence[float]]) -> Verdict:
    """recommended-default as its test wires it: one metric's `judge` (sampler_claims.quality_claim.Judge) scores
    the converged `reference` and each candidate's generation (by step count) and gives the claim's margins. The
    negative controls call it too."""
    if judge.control is None:
        return recommended_default([], {}, shares, None, margin=judge.margin("comparable_margin"),
                                   max_time_share=judge.t("max_time_share"), missing=judge.missing)
    return recommended_default(judge.scores(reference), {s: judge.scores(g) for s, g in gens.items()}, shares,
                               judge.control, margin=judge.margin("comparable_margin"),
                               max_time_share=judge.t("max_time_share"), check=judge.reference)


def time_shares(seconds: Sequence[float], ddpm_seconds: Sequence[float]) -> list[float]:
    """Per interleaved round: the time of the default over DDPM@1000's time in the same round."""
    return [a / b for a, b in zip(seconds, ddpm_seconds)]


def recommended_default(reference: Sequence[float], scores: Mapping[int, Sequence[float]],
                        shares: Mapping[int, Sequence[float]], control: Separation | None, *, margin: float,
                        max_time_share: float, missing: str = "", check: Any = None) -> Verdict:
    """A default worth recommending: at each step count, the converged score minus its score stays under the
    comparable margin (one-sided, gated by the quality control), and its time share of DDPM@1000 has its
    interval at or under max_time_share. check: the convergence ReferenceCheck of the CLIP path (the
    converged reference must pass it for the quality statement to decide)."""
    parts = []
    for s in sorted(shares):
        if control is None:
            q = inconclusive(missing or "no validated quality metric on this model")
        else:
            q = gated_reference(check, gated(control, at_most(paired(reference, scores[s], f"converged - {s} steps"),
                                                              margin, f"{s} steps: converged score - score"), missing))
        t = at_most(t_interval(shares[s]), max_time_share, f"{s} steps: time / DDPM@1000 time (per round)")
        parts.append(all_of([q, t]).named(f"{s} steps"))
    return all_of(parts, "recommended default")
