"""The errata page: what the lesson's authors should change, built from this run's verdicts.

It is grouped by what a refutation is, because an author acts on each kind differently:

1. the lesson's claims refuted by facts of diffusers' API (`Claim.scope == "diffusers"`): true on any model, so
   the lesson is wrong as written;
2. the lesson's claims refuted on the measured model, which is named and described: true of that model, worth a
   caveat, not necessarily a rewrite;
3. the claims left unsettled, with what would settle them (the verdict's seeds_needed as a --seeds or
   --timing-rounds value, else its reason);
4. beyond the lesson: findings the lesson does not state, kept apart from its own claims;

and last the claims this run did not measure, so that a partial run (`--claim ...`) never reads as a clean bill.

Every "Write instead" sentence is meant to be pasted into the lesson. The registry's `corrected` sentences
were written beside a run, and some still say "on this model" or "on this setup": `pasteable` names the model,
device and library version in their place, so no line of the page depends on knowing which run wrote it.

It is built from the claims.json payload (results.Results.to_json), so that the page, the report's errata
section and the JSON cannot disagree. Which claims are refuted is read from the verdicts, never listed here: a new
model or a new diffusers release changes the page by itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import provenance
from .plain import LEAD
from .verdict import CONFIRMED, INCONCLUSIVE, REFUTED

BEYOND = "Beyond the lesson"
#: Headings of the page's groups, also what tests/test_errata.py reads back. ON_MODEL is followed by the model.
API_HEADING = "Refuted by diffusers' API, true on any model"
ON_MODEL_HEADING = "Refuted on the measured model"
UNSETTLED_HEADING = "Not settled"
BEYOND_HEADING = BEYOND
NOT_RUN_HEADING = "Not measured in this run"

#: Words that only make sense beside the run that wrote them.
RUN_RELATIVE = re.compile(r"\bthis (model|setup|device|one|machine)\b", re.I)


@dataclass(frozen=True)
class Entry:
    """One refuted claim: the lesson's words, the measured figure and what to write instead."""

    id: str
    exercise: str
    lesson: str
    measured: str
    corrected: str
    plain: str = ""
    scope: str = "model"


@dataclass(frozen=True)
class Unsettled:
    """One inconclusive claim: what was measured and what would settle it."""

    id: str
    exercise: str
    lesson: str
    measured: str
    settle: str


@dataclass(frozen=True)
class NotRun:
    """A claim this run did not measure, and why (deselected, opt-in, broke)."""

    id: str
    exercise: str
    why: str


@dataclass
class Errata:
    model: provenance.Model
    holds_for: str
    total: int = 0
    api: list[Entry] = field(default_factory=list)
    on_model: list[Entry] = field(default_factory=list)
    unsettled: list[Unsettled] = field(default_factory=list)
    beyond: list[Entry] = field(default_factory=list)
    beyond_unsettled: list[Unsettled] = field(default_factory=list)
    not_run: list[NotRun] = field(default_factory=list)

    @property
    def refuted(self) -> list[Entry]:
        """Every refuted claim, the lesson's first."""
        return self.api + self.on_model + self.beyond

    @property
    def on_model_heading(self) -> str:
        return f"Refuted on {self.model.name}"

    @property
    def measured_count(self) -> int:
        return self.total - len(self.not_run)

    def not_run_by_why(self) -> dict[str, list[NotRun]]:
        """The claims not measured, grouped by why, so that 28 deselected claims take one line."""
        out: dict[str, list[NotRun]] = {}
        for n in self.not_run:
            out.setdefault(_one_line(n.why), []).append(n)
        return out

    def coverage(self) -> str:
        """How much of the catalogue this page speaks for: a partial run says what it left out."""
        if not self.not_run:
            return f"This run measured all {self.total} claims."
        return (f"This run measured {self.measured_count} of the {self.total} claims; the other "
                f"{len(self.not_run)} {'is' if len(self.not_run) == 1 else 'are'} listed under “{NOT_RUN_HEADING}” "
                "at the end, and this page says nothing about them.")

    def empty_text(self, group: str) -> str:
        """What an empty group says, scoped to the claims that ran."""
        scope = "that this run measured " if self.not_run else ""
        return {
            "api": f"None of the lesson's claims {scope}is refuted by diffusers' API.",
            "on_model": f"None of the lesson's claims {scope}was refuted on {self.model.name}.",
            "unsettled": f"Every claim {scope or 'that ran '}was decided.",
        }[group]

    def markdown(self) -> str:
        lines = ["# Errata: Samplers and Efficiency (Module 6.4, Lesson 2)", "",
                 f"Measured on {self.holds_for}.", "", self.coverage(), "",
                 "Each entry quotes the lesson, gives what this run measured and a sentence to write instead. "
                 "Figures come from this run's `claims.json`; the full evidence is in the HTML report beside it.", ""]
        lines += [f"## {API_HEADING} ({len(self.api)})", "",
                  "Facts of diffusers' code: they hold on every model, so the lesson is wrong as written.", ""]
        lines += _entries_md(self.api, "The lesson says", "Write instead") or [self.empty_text("api"), ""]
        lines += [f"## {self.on_model_heading} ({len(self.on_model)})", "",
                  f"Findings on {self.model.described}. Another model may behave otherwise: these call for a "
                  "caveat in the lesson, or a measurement on the lesson's own model.", ""]
        lines += _entries_md(self.on_model, "The lesson says", "Write instead") or [self.empty_text("on_model"), ""]
        lines += [f"## {UNSETTLED_HEADING} ({len(self.unsettled)})", ""]
        lines += _unsettled_md(self.unsettled) or [self.empty_text("unsettled"), ""]
        n_beyond = len(self.beyond) + len(self.beyond_unsettled)
        lines += [f"## {BEYOND_HEADING} ({n_beyond})", "",
                  "What the suite finds that the lesson does not say: worth adding, not corrections.", ""]
        lines += _entries_md(self.beyond, "Statement checked", "Worth adding")
        if self.beyond_unsettled:
            lines += ["Not settled beyond the lesson:", "", *_unsettled_md(self.beyond_unsettled)]
        if not n_beyond:
            lines += ["No finding beyond the lesson was refuted or left open in this run.", ""]
        if self.not_run:
            lines += [f"## {NOT_RUN_HEADING} ({len(self.not_run)})", ""]
            lines += [f"- {why[0].upper() + why[1:]}: " + ", ".join(f"`{n.id}`" for n in items)
                      for why, items in self.not_run_by_why().items()]
            lines += ["", "Run `pytest claims/` without `--claim` to measure every claim.", ""]
        return "\n".join(lines).rstrip() + "\n"


def _entries_md(entries: list[Entry], says: str, write: str) -> list[str]:
    lines: list[str] = []
    for e in entries:
        lines += [f"### `{e.id}` ({e.exercise})", "",
                  f"- **{says}:** “{_one_line(e.lesson)}”",
                  f"- **Measured:** {_one_line(e.measured)}",
                  *([f"- **In plain words:** {_one_line(e.plain)}"] if e.plain else []),
                  f"- **{write}:** {_one_line(e.corrected)}", ""]
    return lines


def _unsettled_md(items: list[Unsettled]) -> list[str]:
    lines = [f"- `{u.id}` ({u.exercise}): “{_one_line(u.lesson)}”. Measured: {_one_line(u.measured)}. "
             f"Would settle it: {_one_line(u.settle)}" for u in items]
    return lines + [""] if lines else []


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def holds_for(environment: dict[str, Any]) -> str:
    """Model (described), device, library versions, seeds and date, as one line with no local path."""
    return provenance.one_line(environment)


def pasteable(text: str, environment: dict[str, Any]) -> str:
    """A sentence that reads right outside the run that wrote it: "this model" becomes the model's name, "this
    setup" the model, diffusers version and device, "this device" the device."""
    model = provenance.model(environment)
    dev = provenance.device(environment)
    setup = f"{model.name} with diffusers {environment.get('diffusers', '?')} on {dev}"

    def name(m: re.Match[str]) -> str:
        word = m.group(1).lower()
        if word == "setup":
            return setup
        if word in ("device", "machine"):
            return dev
        return model.name

    return RUN_RELATIVE.sub(name, text)


def measured(claim: dict[str, Any]) -> str:
    """The claim's key figure as its test recorded it, else the start of its verdict's reason."""
    key = (claim.get("metrics") or {}).get("key")
    if key:
        return str(key)
    reason = _one_line(claim.get("reason", ""))
    return reason if len(reason) <= 240 else reason[:237] + "..."


def plain_words(claim: dict[str, Any], shown: str) -> str:
    """The plain sentence when it adds to the measured figure `shown`: without its "Does not hold:" lead (the
    heading says it) and left out when it only repeats the figure."""
    text = _one_line(claim.get("plain", ""))
    for lead in LEAD.values():
        if text.startswith(f"{lead}: "):
            text = text[len(lead) + 2:]
            break
    core, figure = text.rstrip(".").strip(), _one_line(shown).rstrip(".")
    if not core or core in figure or (figure in core and len(core) - len(figure) < 20):
        return ""
    return core[0].upper() + core[1:] + "."


def settle(claim: dict[str, Any]) -> str:
    """What would settle an inconclusive claim: the seeds or rounds its verdict asks for, else why it is open."""
    need = claim.get("seeds_needed")
    if need:
        if claim.get("kind") == "timing":
            return f"about {need} interleaved timing rounds at the spread measured here (`--timing-rounds {need}`)"
        return f"about {need} seeds at the spread measured here (`--seeds {claim.get('settle_with') or need}`)"
    reason = _one_line(claim.get("reason", ""))
    if "no number of" in reason:
        return ("no number of seeds at this spread (the measured value sits on the margin); a model or metric with "
                "less spread would. The report gives the full reason")
    return reason or "a run in which the claim's test completes"


def _scope(claim: dict[str, Any]) -> str:
    """The claim's scope from claims.json, else (a file written before it carried one) from the registry."""
    if claim.get("scope"):
        return str(claim["scope"])
    from . import registry

    known = registry.CLAIMS.get(claim["id"])
    return known.scope if known is not None else "model"


def _not_run_why(claim: dict[str, Any]) -> str:
    if claim.get("outcome") == "not run":
        return "not selected in this run (or the run stopped before it)"
    return _one_line(claim.get("reason", "")) or "skipped"


def build(payload: dict[str, Any]) -> Errata:
    """The errata of a claims.json payload, every group in the registry's order (see the module docstring)."""
    env = payload.get("environment", {})
    claims = payload.get("claims", [])
    errata = Errata(provenance.model(env), holds_for(env), total=len(claims))
    for c in claims:
        beyond = c.get("exercise") == BEYOND
        if c["verdict"] == REFUTED:
            shown = measured(c)
            corrected = c.get("corrected") or ("(no corrected sentence in the registry: add `corrected=` to "
                                               f"{c['id']}'s entry)")
            entry = Entry(c["id"], c["exercise"], c["lesson"], pasteable(shown, env), pasteable(corrected, env),
                          pasteable(plain_words(c, shown), env), _scope(c))
            if beyond:
                errata.beyond.append(entry)
            elif entry.scope == "diffusers":
                errata.api.append(entry)
            else:
                errata.on_model.append(entry)
        elif c["verdict"] == INCONCLUSIVE:
            item = Unsettled(c["id"], c["exercise"], c["lesson"], pasteable(measured(c), env), settle(c))
            (errata.beyond_unsettled if beyond else errata.unsettled).append(item)
        elif c["verdict"] != CONFIRMED:
            errata.not_run.append(NotRun(c["id"], c["exercise"], _not_run_why(c)))
    return errata


def path_for(html_path: Path) -> Path:
    """errata.md beside index.html; <stem>.errata.md beside any other page name (as claims.json is named)."""
    html_path = Path(html_path)
    return html_path.parent / ("errata.md" if html_path.stem == "index" else f"{html_path.stem}.errata.md")
