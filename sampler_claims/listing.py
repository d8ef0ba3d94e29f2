"""--claims-list: the claims a run can decide, with the lesson's words, printed from the registry alone.

It must answer without a model and without torch: it is what a newcomer runs first to find an id for --claim.
"""
from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterable
from typing import Any


def claims_listing(claims: Iterable[Any], width: int | None = None) -> str:
    """One entry per claim, grouped by exercise in registry order: the id, its kind and scope ("diffusers": a fact
    of diffusers' API, true on any model; "model": measured on the run's model), then the lesson's words."""
    claims = list(claims)
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    pad = max(len(c.id) for c in claims) + 2
    lines = [f"{len(claims)} claims; run some with: pytest claims/ --claim ID [--claim ID ...]",
             "kind: exact, statistical (over seeds) or timing; scope: diffusers (a fact of its API, true on any "
             "model) or model (measured on the run's model)"]
    exercise = None
    for c in claims:
        if c.exercise != exercise:
            exercise = c.exercise
            lines += ["", exercise]
        head = f"  {c.id:<{pad}}{c.kind}, {c.scope}"
        lines.append(head)
        lines += textwrap.wrap(c.lesson, width=max(width, pad + 30), initial_indent="      ",
                               subsequent_indent="      ")
    return "\n".join(lines)
