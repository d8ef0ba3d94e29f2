"""One plain sentence per verdict: what was found, in words a student of the lesson understands.

A verdict's reason is exact but dense (nested intervals, margins, metric checks). The sentence is generated from
the verdict's own numbers, so it can never say more than the verdict: the statements that decided it (the
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
from .verdict import CONFIRMED, INCONCLUSIVE, REFUTED, SKIPPED

LEAD = {CONFIRMED: "Holds", REFUTED: "Does not hold", INCONCLUSIVE: "Not settled", SKIPPED: "Not measured",
        "not run": "Not run"}
#: Statements shown per sentence; the rest are counted ("and 2 more").
MAX_STATEMENTS = 2
_INTERVAL = re.compile(r"^(.*?)\s[+-]?\d[\d.e+-]*\s\[")


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


def _leaves(verdict: str, reason: str, numbers: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The statements a verdict was made of (all_of's parts, recursively), each (verdict, reason, numbers)."""
    parts = [numbers[k] for k in sorted((k for k in numbers if re.fullmatch(r"part\d+", k)), key=lambda k: int(k[4:]))]
    if not parts:
        return [(verdict, reason, numbers)]
    out = []
    for p in parts:
        out += _leaves(p.get("verdict", verdict), p.get("reason", ""), p.get("numbers", {}) or {})
    return out


def _interval(numbers: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for key in ("difference", "estimate", "gain"):
        iv = numbers.get(key)
        if isinstance(iv, dict) and "mean" in iv and "ci95" in iv:
            return key, iv
    return None


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


def describe(verdict: str, reason: str, numbers: dict[str, Any]) -> str:
    """One statement in words: the measured value, its 95% range and how it sits against its limit."""
    found = _interval(numbers)
    if found is None:  # an exact statement: its reason, to the first ';' (its clauses after ':' are the finding)
        text = " ".join(str(reason).split()).split("; ")[0]
        return _shorten(text, 160).rstrip(".")
    key, iv = found
    mean, (low, high) = float(iv["mean"]), (float(iv["ci95"][0]), float(iv["ci95"][1]))
    m = _INTERVAL.match(" ".join(reason.split()))
    label = m.group(1) if m else (iv.get("what") or "the measured value")
    quantity = label.rsplit(": ", 1)[-1].strip()
    statement = label.rsplit(": ", 1)[0].strip() if ": " in label else ""
    extra = f"; {attributes(mean)}" if re.search(r"\bscore\b", quantity) and "CLIP" not in quantity else ""
    if low == high or (not math.isfinite(low)):
        value = f"{quantity} was {_num(mean)}" + (f" ({extra[2:]})" if extra else "")
    else:
        value = f"{quantity} was {_num(mean)} (95% interval {_num(low)} to {_num(high)}{extra})"
    if key == "difference":
        limit = f"the ±{numbers.get('margin')} margin"
        rel = {CONFIRMED: f"well inside {limit}", REFUTED: f"clearly outside {limit}"}
    elif key == "gain":
        rel = {CONFIRMED: "clearly above zero", REFUTED: "no gain: at or below zero"}
        limit = "zero"
    elif "range" in numbers:
        lo, hi = numbers["range"]
        limit = f"the range {lo:g} to {hi:g}"
        rel = {CONFIRMED: f"inside {limit}", REFUTED: f"outside {limit}"}
    else:
        bound, side = numbers.get("bound"), numbers.get("side", "at least")
        limit = f"{side} {bound:g}" if isinstance(bound, (int, float)) else f"{side} {bound}"
        rel = {CONFIRMED: f"clearly {limit}", REFUTED: f"clearly not {limit}"}
    relation = rel.get(verdict, f"too close to {limit} to call")
    text = f"{value}, {relation}"
    statement = _unstutter(statement)
    if statement and len(statement) >= 90:
        statement = statement.rsplit(": ", 1)[-1]  # the innermost statement: what was counted or compared
    return f"{statement}: {text}" if statement and len(statement) < 140 else text


def sentence(verdict: str, reason: str, numbers: dict[str, Any] | None = None, *, seeds_needed: int | None = None,
             kind: str = "exact", key: str = "", settle_with: int | None = None) -> str:
    """The plain sentence of one verdict (see the module docstring). `settle_with` is the option value that gives
    `seeds_needed` (default: the same number)."""
    numbers = numbers or {}
    lead = LEAD.get(verdict, verdict.capitalize())
    if verdict in (SKIPPED, "not run"):
        return f"{lead}: {_clause(reason) or 'no reason recorded'}."
    leaves = _leaves(verdict, reason, numbers)
    if verdict == REFUTED:
        deciding = [leaf for leaf in leaves if leaf[0] == REFUTED] or leaves
    elif verdict == INCONCLUSIVE:
        deciding = [leaf for leaf in leaves if leaf[0] != CONFIRMED] or leaves
    else:
        deciding = leaves
    if all(_interval(leaf[2]) is None for leaf in leaves) and key:
        said = [key]  # an exact claim: its key figure is the plainest statement of what was seen
    else:
        said = [describe(*leaf) for leaf in deciding[:MAX_STATEMENTS]]
    more = len(deciding) - len(said) if said != [key] else 0
    text = f"{lead}: " + "; ".join(s for s in said if s)
    if more > 0:
        text += f" (and {more} more like {'it' if more == 1 else 'them'})"
    if verdict == INCONCLUSIVE and seeds_needed:
        unit = ("interleaved timing rounds", "--timing-rounds") if kind == "timing" else ("seeds", "--seeds")
        text += f"; about {seeds_needed} {unit[0]} would settle it ({unit[1]} {settle_with or seeds_needed})"
    elif verdict == INCONCLUSIVE and not numbers and reason:
        text = f"{lead}: {_clause(reason)}"
    return text.rstrip(".") + "."


def for_record(rec: Any) -> str:
    """The plain sentence of a results.ClaimRecord (its final verdict, including claims that broke or never ran)."""
    verdict, reason = rec.final_verdict
    if rec.outcome == "not run" and rec.verdict is None:
        verdict = "not run"
    d = rec.decision
    return sentence(verdict, reason, d.numbers if d is not None and d.verdict == verdict else {},
                    seeds_needed=d.seeds_needed if d is not None else None, kind=rec.claim.kind,
                    key=str(rec.metrics.get("key", "")), settle_with=rec.settle_with)
