"""One plain sentence per verdict: what was found, in words a student of the lesson understands.

A verdict's reason is exact but dense (nested intervals, margins, metric checks). The sentence is written from the
verdict's statements (sampler_claims.verdict.Statement: label, estimate, interval, limit, relation), never parsed
back from the reason, so it can never say more than the verdict: the statements that decided it (the
refuted ones for a refutation, the undecided ones for an inconclusive verdict), each as "what was measured, how
sure, and against which limit", a checker-score gap also as wrong attributes per image (the registry's
calibration of the score), and for an undecided verdict the seeds that would settle it. The full reason stays
below it in the report.
"""
from __future__ import annotations

import math
import re
from typing import Any

from . import registry
from .verdict import CONFIRMED, INCONCLUSIVE, REFUTED, SKIPPED, Statement

LEAD = {CONFIRMED: "Holds", REFUTED: "Does not hold", INCONCLUSIVE: "Not settled", SKIPPED: "Not measured",
        "not run": "Not run"}
#: Statements shown per sentence; the rest are counted ("and 2 more").
MAX_STATEMENTS = 2


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "unbounded"
    return f"{x:+.3g}" if abs(x) >= 0.001 or x == 0 else f"{x:+.1e}"


def _clause(text: str) -> str:
    """The first clause of a reason: up to its first ':' or ';' (the statement, without the detail)."""
    text = " ".join(str(text).split())
    cut = min([i for i in (text.find(": "), text.find("; ")) if i > 0], default=len(text))
    return text[:cut].strip().rstrip(".")


def attributes(gap: float) -> str:
    """A checker-score gap as wrong attributes (the registry's calibration on the world's renderer)."""
    per = registry.SCORE_PER_WRONG_ATTRIBUTE
    x = abs(gap) / per if per else 0.0
    if x < 1e-3:
        return "no wrong attribute to speak of"
    if x < 0.9:
        return f"about one wrong attribute in {max(2, round(1 / x))} images"
    return f"about {x:.1f} wrong attributes per image"


def _shorten(text: str, most: int) -> str:
    """At most `most` characters, never ending inside a number or an open bracket: cut at the last opening
    bracket (or else the last space) and mark the cut with an ellipsis."""
    if len(text) <= most:
        return text
    cut = text[:most]
    open_at: list[int] = []
    for i, ch in enumerate(cut):
        if ch in "([":
            open_at.append(i)
        elif ch in ")]" and open_at:
            open_at.pop()
    if open_at and open_at[0] > most // 2:  # the first bracket still open at the cut
        cut = cut[:open_at[0]]
    else:
        cut = cut[: cut.rfind(" ")] if " " in cut else cut
    return cut.rstrip(" ,;:") + " …"


def _unstutter(statement: str) -> str:
    """A statement named twice ("5 garbled: 5 steps garbled", from Verdict.named over a reason that already
    names it) said once: a part whose words all recur in the next part is dropped."""
    parts = [p.strip() for p in statement.split(": ") if p.strip()]
    kept = [p for k, p in enumerate(parts)
            if k + 1 >= len(parts) or not set(p.lower().split()) <= set(parts[k + 1].lower().split())]
    return ": ".join(kept)


def describe(st: Statement) -> str:
    """One statement in words, from its fields: the measured value, its 95% range and how it sits against its
    limit; an exact statement (no interval) as its own words, cut between words."""
    label = _unstutter(" ".join(st.label.split()))
    if st.estimate is None or st.low is None or st.high is None:
        return _shorten(label.split("; ")[0], 160).rstrip(".")
    quantity = label.rsplit(": ", 1)[-1].strip()
    statement = label.rsplit(": ", 1)[0].strip() if ": " in label else ""
    mean, low, high = st.estimate, st.low, st.high
    extra = f"; {attributes(mean)}" if re.search(r"\bscore\b", quantity) and "CLIP" not in quantity else ""
    if low == high or not math.isfinite(low):
        value = f"{quantity} was {_num(mean)}" + (f" ({extra[2:]})" if extra else "")
    else:
        value = f"{quantity} was {_num(mean)} (95% interval {_num(low)} to {_num(high)}{extra})"
    if st.relation == "inside ±limit":
        limit = f"the ±{st.limit:g} margin"
        rel = {CONFIRMED: f"well inside {limit}", REFUTED: f"clearly outside {limit}"}
    elif st.relation in ("above", "control above"):
        limit = "zero"
        rel = {CONFIRMED: "clearly above zero", REFUTED: "no gain: at or below zero"}
    elif st.relation == "control below":
        limit = "zero"
        rel = {CONFIRMED: "clearly below zero", REFUTED: "at or above zero"}
    elif st.relation == "within" and isinstance(st.limit, tuple):
        limit = f"the range {st.limit[0]:g} to {st.limit[1]:g}"
        rel = {CONFIRMED: f"inside {limit}", REFUTED: f"outside {limit}"}
    else:
        bound = f"{st.limit:g}" if isinstance(st.limit, (int, float)) else str(st.limit)
        limit = f"{st.relation} {bound}"
        rel = {CONFIRMED: f"clearly {limit}", REFUTED: f"clearly not {limit}"}
    text = f"{value}, {rel.get(st.verdict, f'too close to {limit} to call')}"
    if statement and len(statement) >= 90:
        statement = statement.rsplit(": ", 1)[-1]  # the innermost statement: what was counted or compared
    return f"{statement}: {text}" if statement and len(statement) < 140 else text


def sentence(verdict: str, reason: str, statements: tuple[Statement, ...] | list[Statement] = (), *,
             seeds_needed: int | None = None, kind: str = "exact", key: str = "",
             settle_with: int | None = None) -> str:
    """The plain sentence of one verdict (see the module docstring), written from its statements' fields.
    `settle_with` is the option value that gives `seeds_needed` (default: the same number)."""
    lead = LEAD.get(verdict, verdict.capitalize())
    if verdict in (SKIPPED, "not run"):
        return f"{lead}: {_clause(reason) or 'no reason recorded'}."
    measured = [st for st in statements if not st.relation.startswith("control")] or list(statements)
    if verdict == REFUTED:
        deciding = [st for st in measured if st.verdict == REFUTED] or measured
    elif verdict == INCONCLUSIVE:
        deciding = [st for st in statements if st.verdict != CONFIRMED] or measured
    else:
        deciding = measured
    if not deciding:  # a verdict with no statement: a rule that could not measure says why
        return f"{lead}: {_clause(reason) or 'no reason recorded'}."
    if all(st.estimate is None for st in statements) and key:
        said = [key]  # an exact claim: its key figure is the plainest statement of what was seen
    else:
        said = [describe(st) for st in deciding[:MAX_STATEMENTS]]
    more = len(deciding) - len(said) if said != [key] else 0
    text = f"{lead}: " + "; ".join(s for s in said if s)
    if more > 0:
        text += f" (and {more} more like {'it' if more == 1 else 'them'})"
    if verdict == INCONCLUSIVE and seeds_needed:
        unit = ("interleaved timing rounds", "--timing-rounds") if kind == "timing" else ("seeds", "--seeds")
        text += f"; about {seeds_needed} {unit[0]} would settle it ({unit[1]} {settle_with or seeds_needed})"
    return text.rstrip(".") + "."


def for_record(rec: Any) -> str:
    """The plain sentence of a results.ClaimRecord (its final verdict, including claims that broke or never ran)."""
    verdict, reason = rec.final_verdict
    if rec.outcome == "not run" and rec.verdict is None:
        verdict = "not run"
    d = rec.decision
    return sentence(verdict, reason, d.statements if d is not None and d.verdict == verdict else (),
                    seeds_needed=d.seeds_needed if d is not None else None, kind=rec.claim.kind,
                    key=str(rec.metrics.get("key", "")), settle_with=rec.settle_with)
