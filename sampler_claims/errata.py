"""The errata page: what the lesson's authors should change, built from this run's verdicts.

For every claim whose statement was refuted on this run's model it gives the lesson's sentence, what was
measured (the claim's key figure, filled in at run time) and a corrected sentence (the registry keeps one with
each claim: `Claim.corrected`). The claims left inconclusive are listed as "not settled on this model", with
what would settle them (the verdict's seeds_needed as a --seeds or --timing-rounds value, else its reason).

It is built from the claims.json payload (results.Results.to_json), so that the page, the report's errata
section and the JSON cannot disagree, and it names the model, device and diffusers version it holds for: a
verdict on the embedded model is not a verdict on Stable Diffusion 1.5. Which claims are refuted is read from
the verdicts, never listed here: a new model or a new diffusers release changes the page by itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .verdict import INCONCLUSIVE, REFUTED

#: Headings of the page, also what tests/test_errata.py reads back.
REFUTED_HEADING = "Refuted on this model"
UNSETTLED_HEADING = "Not settled on this model"


@dataclass(frozen=True)
class Entry:
    """One refuted claim: the lesson's words, the measured figure and what to write instead."""

    id: str
    exercise: str
    lesson: str
    measured: str
    corrected: str
    plain: str = ""


@dataclass(frozen=True)
class Unsettled:
    """One inconclusive claim: what was measured and what would settle it."""

    id: str
    exercise: str
    lesson: str
    measured: str
    settle: str


@dataclass
class Errata:
    holds_for: str
    refuted: list[Entry] = field(default_factory=list)
    unsettled: list[Unsettled] = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["# Errata: Samplers and Efficiency (Module 6.4, Lesson 2)", "",
                 f"Holds for: {self.holds_for}.", "",
                 "Each entry quotes the lesson, gives what this run measured and a sentence to write instead. "
                 "Figures come from this run's `claims.json`; the full evidence is in the HTML report beside it.", "",
                 f"## {REFUTED_HEADING} ({len(self.refuted)})", ""]
        if not self.refuted:
            lines += ["Nothing the lesson says was refuted on this model.", ""]
        for e in self.refuted:
            lines += [f"### `{e.id}` ({e.exercise})", "",
                      f"- **The lesson says:** “{_one_line(e.lesson)}”",
                      f"- **Measured:** {_one_line(e.measured)}",
                      *([f"- **In plain words:** {_one_line(e.plain)}"] if e.plain else []),
                      f"- **Write instead:** {_one_line(e.corrected)}", ""]
        lines += [f"## {UNSETTLED_HEADING} ({len(self.unsettled)})", ""]
        if not self.unsettled:
            lines += ["Every claim that ran was decided.", ""]
        for u in self.unsettled:
            lines += [f"- `{u.id}` ({u.exercise}): “{_one_line(u.lesson)}”. Measured: {_one_line(u.measured)}. "
                      f"Would settle it: {_one_line(u.settle)}"]
        return "\n".join(lines).rstrip() + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _installed(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def holds_for(environment: dict[str, Any]) -> str:
    """Model, device and library versions the verdicts hold for, as one line."""
    env = environment
    model = env.get("model", "?")
    source = env.get("model_source")
    device = env.get("gpu") or env.get("device", "?")
    parts = [f"model {model}" + (f" ({source})" if source and source != model else ""),
             f"device {device}" + (f" ({env['dtype']})" if env.get("dtype") else ""),
             f"diffusers {env.get('diffusers') or _installed('diffusers')}"]
    if env.get("torch"):
        parts.append(f"torch {env['torch']}")
    if env.get("seeds") is not None:
        parts.append(f"{env['seeds']} seeds from seed base {env.get('seed_base', 0)}")
    if env.get("started"):
        parts.append(f"run of {env['started']}")
    return ", ".join(parts)


def measured(claim: dict[str, Any]) -> str:
    """The claim's key figure as its test recorded it, else the start of its verdict's reason."""
    key = (claim.get("metrics") or {}).get("key")
    if key:
        return str(key)
    reason = _one_line(claim.get("reason", ""))
    return reason if len(reason) <= 240 else reason[:237] + "..."


def settle(claim: dict[str, Any]) -> str:
    """What would settle an inconclusive claim: the seeds or rounds its verdict asks for, else why it is open."""
    need = claim.get("seeds_needed")
    if need:
        if claim.get("kind") == "timing":
            return f"about {need} interleaved timing rounds at the spread measured here (`--timing-rounds {need}`)"
        return f"about {need} seeds at the spread measured here (`--seeds {claim.get('settle_with') or need}`)"
    reason = _one_line(claim.get("reason", ""))
    if "no number of" in reason:
        return ("no number of seeds at this spread (the measured value sits on the margin): a model or metric with "
                "less spread would. " + reason)
    return reason or "a run in which the claim's test completes"


def build(payload: dict[str, Any]) -> Errata:
    """The errata of a claims.json payload: every refuted claim (each with its registry's corrected sentence) and
    every inconclusive one, in the registry's order."""
    errata = Errata(holds_for(payload.get("environment", {})))
    for c in payload.get("claims", []):
        if c["verdict"] == REFUTED:
            errata.refuted.append(Entry(c["id"], c["exercise"], c["lesson"], measured(c),
                                        c.get("corrected") or "(no corrected sentence in the registry: add "
                                                              f"`corrected=` to {c['id']}'s entry)",
                                        c.get("plain", "")))
        elif c["verdict"] == INCONCLUSIVE:
            errata.unsettled.append(Unsettled(c["id"], c["exercise"], c["lesson"], measured(c), settle(c)))
    return errata


def path_for(html_path: Path) -> Path:
    """errata.md beside index.html; <stem>.errata.md beside any other page name (as claims.json is named)."""
    html_path = Path(html_path)
    return html_path.parent / ("errata.md" if html_path.stem == "index" else f"{html_path.stem}.errata.md")
