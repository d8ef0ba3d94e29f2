"""Rules of the claims beyond the lesson: the default on the quality-against-cost front, and three
diffusers pitfalls (final sigma, Karras sigmas, lower-order final steps), each with its diffusers issue."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..atlas import Atlas, AtlasPoint, calls_to_reach
from ..verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    REFUTED,
    Separation,
    Verdict,
    all_of,
    at_least,
    gated,
    improves,
    inconclusive,
    paired,
)

#: The lesson's default, at the low end of its 20-30-step range (the cheaper end is the one a cheaper
#: sampler has to beat).
DEFAULT = ("dpm-solver", 20)
#: The atlas table's "calls to 95%" column: the share of the converged score a scheduler has to reach
#: (shown in the report; it decides nothing).
REACH_SHARE = 0.95


def calls_to_reach_converged(points: list[AtlasPoint], converged: Sequence[float] | None) -> dict[str, int | None]:
    """Per scheduler, the fewest grid calls whose mean score reaches REACH_SHARE of the converged mean score."""
    if converged is None:
        return {}
    ref = float(np.mean(converged))
    return calls_to_reach(points, REACH_SHARE * ref) if ref else {}


def default_on_front(atlas: Atlas, default: AtlasPoint, control: Separation | None, *, margin: float,
                     half_the_calls: float, missing: str = "") -> Verdict:
    """Refuted if another sampler reaches the default's quality with at most `half_the_calls` of its calls: its
    paired score minus the default's has its interval at or above -margin. Confirmed if every such cheap point
    is clearly worse (interval wholly below -margin). Else inconclusive."""
    if control is None or default.scores is None:
        return inconclusive(missing or "no validated quality metric on this model")
    cheap = [p for p in atlas.points if p.calls <= default.calls * half_the_calls and p.scores is not None
             and p.scheduler != default.scheduler]
    if not cheap:
        return inconclusive(f"no other sampler ran at {default.calls // 2} calls or fewer")
    parts = {p.label: at_least(paired(p.scores, default.scores, f"{p.label} - {default.label}"), -margin,
                               f"{p.label} ({p.calls} calls) score - {default.label} ({default.calls} calls)")
             for p in cheap}
    reach = [k for k, v in parts.items() if v.verdict == CONFIRMED]
    numbers = {k: v.as_dict() for k, v in parts.items()}
    if reach:
        return gated(control, Verdict(REFUTED, f"{', '.join(reach)} reach(es) {default.label}'s quality (within "
                                               f"{margin:g}) with at most half its calls: "
                                      + "; ".join(parts[k].reason for k in reach), numbers))
    if all(v.verdict == REFUTED for v in parts.values()):
        return gated(control, Verdict(CONFIRMED, f"every sampler at {default.calls // 2} calls or fewer is worse "
                                                 f"than {default.label} by more than {margin:g}: "
                                      + "; ".join(v.reason for v in parts.values()), numbers))
    undecided = [v for v in parts.values() if v.verdict == INCONCLUSIVE]
    need = [v.seeds_needed for v in undecided if v.seeds_needed]
    return gated(control, Verdict(INCONCLUSIVE, "; ".join(v.reason for v in undecided), numbers,
                                  max(need) if need else None))


def final_sigma_zero(noise_sigma_min: Sequence[float], noise_zero: Sequence[float], control: Separation) -> Verdict:
    """sigma_min leaves residual noise that 'zero' removes: the paired noise difference lies above 0, decided
    only if residual noise separated a noisy image from a clean one in this run."""
    return gated(control, improves(paired(noise_sigma_min, noise_zero, "noise sigma_min - zero"),
                                   "residual noise final_sigmas_type='sigma_min' - 'zero'"))


def gain_at_steps(with_: Mapping[int, Sequence[float]], without: Mapping[int, Sequence[float]],
                  control: Separation | None, what: str, missing: str = "") -> Verdict:
    """An option helps at few steps: at every step count the paired score gain (with - without) is above 0."""
    if control is None:
        return inconclusive(missing or "no validated quality metric on this model")
    parts = [improves(paired(with_[s], without[s], f"{what} @{s}"), f"{s} steps: score with - without {what}")
             for s in sorted(with_)]
    return gated(control, all_of(parts, what))
