"""Rules of the takeaways: DPM-Solver++ at 20-30 steps is the default to use."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..convergence import gated_reference

from ..verdict import Separation, Verdict, all_of, at_most, gated, inconclusive, paired, t_interval

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
