"""Verdicts compared across runs: does the lesson still hold after a diffusers (or torch, or model) change?

`--claims-compare OLD.json` reads an earlier claims.json and puts, at the top of the report and in
claims.json, which claims changed verdict, which measured intervals moved (the old estimate outside the
new interval, or the new outside the old), and what differs in the environment.
`--claims-fail-on-change` makes a changed decided verdict fail the run, for a course team's CI.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment keys whose change can explain a changed verdict.
ENV_KEYS = ("diffusers", "torch", "model", "model_source", "device", "dtype", "gpu", "seeds", "seed_base",
            "timing_rounds", "size", "python", "compile", "channels_last")
#: The value of an environment key a claims.json from before the key existed stands for.
ENV_DEFAULTS = {"compile": False, "channels_last": False}


class CompareError(ValueError):
    """The file to compare with is missing or is not a claims.json."""


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise CompareError(f"--claims-compare {p}: no such file; pass the claims.json of an earlier run "
                           "(reports/claims.json by default)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"--claims-compare {p}: not readable as JSON ({exc}); pass an earlier run's "
                           "claims.json") from None
    if not isinstance(data, dict) or "claims" not in data:
        raise CompareError(f"--claims-compare {p}: not a claims.json (no 'claims' list)")
    return data


def intervals(numbers: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every interval ({'mean', 'ci95'}) inside a verdict's numbers, with a dotted path naming it."""
    if isinstance(numbers, dict):
        if "mean" in numbers and "ci95" in numbers:
            yield path, numbers
            return
        for k, v in numbers.items():
            yield from intervals(v, f"{path}.{k}" if path else str(k))
    elif isinstance(numbers, list):
        for i, v in enumerate(numbers):
            yield from intervals(v, f"{path}[{i}]")


def _outside(x: float, iv: list[float]) -> bool:
    return x < iv[0] or x > iv[1]


@dataclass
class Comparison:
    old_path: str
    changed: list[dict[str, str]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)

    @property
    def decided_changes(self) -> list[dict[str, str]]:
        """Changes between two decided verdicts (confirmed <-> refuted), or from decided to undecided."""
        return [c for c in self.changed if c["old"] in ("confirmed", "refuted")
                or c["new"] in ("confirmed", "refuted")]

    def as_dict(self) -> dict[str, Any]:
        return {"old": self.old_path, "changed_verdicts": self.changed, "moved_intervals": self.moved,
                "environment_differences": self.environment, "only_in_old": self.only_old,
                "only_in_new": self.only_new}


def compare(old: dict[str, Any], new: dict[str, Any], old_path: str = "") -> Comparison:
    """What changed from `old` to `new` (both claims.json payloads)."""
    out = Comparison(old_path)
    o = {c["id"]: c for c in old["claims"]}
    n = {c["id"]: c for c in new["claims"]}
    out.only_old = sorted(set(o) - set(n))
    out.only_new = sorted(set(n) - set(o))
    for cid in (c for c in n if c in o):
        a, b = o[cid], n[cid]
        if a.get("verdict") != b.get("verdict"):
            out.changed.append({"id": cid, "old": a.get("verdict"), "new": b.get("verdict"),
                                "reason": b.get("reason", "")})
        old_iv = dict(intervals((a.get("metrics") or {}).get("decision", {})))
        for name, iv in intervals((b.get("metrics") or {}).get("decision", {})):
            prev = old_iv.get(name)
            if prev is None:
                continue
            try:
                moved = _outside(prev["mean"], iv["ci95"]) or _outside(iv["mean"], prev["ci95"])
            except (TypeError, IndexError, KeyError):
                continue
            if moved:
                out.moved.append({"id": cid, "metric": name, "old": prev, "new": iv})
    eo, en = old.get("environment", {}), new.get("environment", {})
    for k in ENV_KEYS:
        o, n = eo.get(k, ENV_DEFAULTS.get(k)), en.get(k, ENV_DEFAULTS.get(k))
        if o != n:
            out.environment.append({"key": k, "old": o, "new": n})
    return out
