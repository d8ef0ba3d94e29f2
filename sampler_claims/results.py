"""What claims record during a run, and `claims.json`, the machine-readable result.

A test talks to its claim through a ClaimRecorder (the `claim` fixture): metrics, evidence and the
verdict. The plugin adds each test's outcome, so a claim whose test crashed or never ran says so
instead of vanishing from the report.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from . import registry

SCHEMA = 1


@dataclass
class Evidence:
    kind: str  # images | table | series
    title: str
    data: dict[str, Any]


@dataclass
class ClaimRecord:
    claim: registry.Claim
    verdict: str | None = None
    reason: str = ""
    judgements: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    tests: list[dict[str, str]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The claim's tests taken together: failed > error > passed > xfailed > skipped > not run."""
        outcomes = {t["outcome"] for t in self.tests}
        for o in ("error", "failed", "passed", "xfailed", "skipped"):
            if o in outcomes:
                return o
        return "not run"

    @property
    def final_verdict(self) -> tuple[str, str]:
        """(verdict, reason), with a verdict supplied for claims whose tests broke or never ran."""
        if self.verdict is not None:
            return self.verdict, self.reason
        if not self.tests:
            return "skipped", "did not run (deselected, or the run was interrupted before it)"
        broken = [t for t in self.tests if t["outcome"] in ("failed", "error")]
        if broken:
            return "inconclusive", f"the test broke before deciding: {broken[0].get('message', '')}".strip()
        skipped = [t for t in self.tests if t["outcome"] == "skipped"]
        if skipped:
            return "skipped", skipped[0].get("message", "skipped")
        return "inconclusive", "no test recorded a verdict"

    def key_number(self) -> str:
        return str(self.metrics.get("key", ""))


class ClaimRecorder:
    """The `claim` fixture: one claim's metrics, evidence and verdict, as a test records them."""

    def __init__(self, record: ClaimRecord) -> None:
        self.record = record
        self.claim = record.claim

    @property
    def id(self) -> str:
        return self.claim.id

    def t(self, name: str) -> Any:
        return self.claim.t(name)

    def metric(self, **values: Any) -> None:
        self.record.metrics.update({k: _jsonable(v) for k, v in values.items()})

    def key(self, text: str) -> None:
        """The one number a reader sees in the summary row."""
        self.record.metrics["key"] = text

    def images(self, title: str, images: list[np.ndarray], captions: list[str]) -> None:
        self.record.evidence.append(Evidence("images", title, {"images": list(images), "captions": captions}))

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.record.evidence.append(
            Evidence("table", title, {"columns": columns, "rows": [[_jsonable(c) for c in r] for r in rows]}))

    def series(self, title: str, x: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
               **extra: Any) -> None:
        self.record.evidence.append(Evidence("series", title, {
            "x": _jsonable(x), "series": _jsonable(series), "xlabel": xlabel, "ylabel": ylabel,
            **{k: _jsonable(v) for k, v in extra.items()}}))

    def judge(self, lesson_holds: bool, why: str) -> bool:
        """Record what the measurement says of the lesson's form: confirmed if it holds, else refuted."""
        verdict = "confirmed" if lesson_holds else "refuted"
        self.record.judgements.append((verdict, why))
        refuted = [w for v, w in self.record.judgements if v == "refuted"]
        if refuted:
            self.record.verdict, self.record.reason = "refuted", "; ".join(refuted)
        else:
            self.record.verdict = "confirmed"
            self.record.reason = "; ".join(w for _, w in self.record.judgements)
        return lesson_holds

    def inconclusive(self, why: str) -> None:
        self.record.verdict, self.record.reason = "inconclusive", why

    def skip(self, why: str) -> None:
        self.record.verdict, self.record.reason = "skipped", why
        pytest.skip(why)


class Results:
    """All claim records of a session, in registry order, plus the environment."""

    def __init__(self) -> None:
        self.records: dict[str, ClaimRecord] = {cid: ClaimRecord(c) for cid, c in registry.CLAIMS.items()}
        self.environment: dict[str, Any] = {}
        self.collected: set[str] = set()

    def recorder(self, claim_id: str) -> ClaimRecorder:
        return ClaimRecorder(self.records[registry.get(claim_id).id])

    def add_outcome(self, claim_id: str, nodeid: str, outcome: str, message: str = "") -> None:
        tests = self.records[claim_id].tests
        entry = {"nodeid": nodeid, "outcome": outcome}
        if message:
            entry["message"] = message[:500]
        for t in tests:
            if t["nodeid"] == nodeid:
                t.update(entry)
                return
        tests.append(entry)

    def counts(self) -> dict[str, int]:
        """Verdict counts for the summary; claims that never ran are counted apart from real skips."""
        out = {v: 0 for v in registry.VERDICTS}
        out["not run"] = 0
        for r in self.records.values():
            out["not run" if r.outcome == "not run" and r.verdict is None else r.final_verdict[0]] += 1
        return out

    def to_json(self, evidence_paths: dict[int, list[str]] | None = None) -> dict[str, Any]:
        claims = []
        for r in self.records.values():
            verdict, reason = r.final_verdict
            ev = []
            for e in r.evidence:
                if e.kind == "images":
                    paths = (evidence_paths or {}).get(id(e), [])
                    ev.append({"kind": "images", "title": e.title, "captions": e.data["captions"], "files": paths})
                else:
                    ev.append({"kind": e.kind, "title": e.title, **e.data})
            claims.append({
                "id": r.claim.id, "exercise": r.claim.exercise, "lesson": r.claim.lesson,
                "verdict": verdict, "reason": reason, "metrics": r.metrics,
                "thresholds": {k: {"value": _jsonable(t.value), "why": t.why} for k, t in r.claim.thresholds.items()},
                "evidence": ev, "tests": r.tests, "outcome": r.outcome,
            })
        return {"schema": SCHEMA, "environment": self.environment, "claims": claims}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, float):
        return round(value, 6)
    return value


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temp file beside `path`, then rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(payload, indent=2, default=str))
