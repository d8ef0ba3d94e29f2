"""What claims record during a run, and `claims.json`, the machine-readable result.

A test talks to its claim through a ClaimRecorder (the `claim` fixture): metrics, evidence and, last,
`decide(verdict)`. `decide` is the one place where a verdict becomes a pytest outcome, so the two
cannot disagree:

| verdict      | the registry expects confirmed | the registry expects refuted (test is xfail strict) |
|--------------|--------------------------------|-----------------------------------------------------|
| confirmed    | passed                         | XPASS(strict): failed, the lesson now holds         |
| refuted      | failed, with the measured reason | xfailed, with the measured reason                 |
| inconclusive | skipped, with why and the seeds that would decide it (both columns)                  |
| skipped      | skipped, with the reason (both columns)                                              |

The plugin adds each test's outcome, so a claim whose test crashed or never ran says so instead of
vanishing from the report.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from . import plain, registry
from .verdict import CONFIRMED, INCONCLUSIVE, REFUTED, SKIPPED, Verdict

SCHEMA = 2
#: How an expected refutation's message starts (the xfail reason; the terminal's status word says it instead).
REFUTED_PREFIX = "refuted, as measured before: "


class ClaimRefuted(AssertionError):
    """Raised by `decide` for a refuted verdict that the registry expects: the xfail(strict=True) marker
    catches exactly this type, so any other error in a refuted claim's test still fails the run."""


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
    decision: Verdict | None = None
    expected: str = CONFIRMED
    #: Where it ran: {"worker": "gw0" or "main", "device": "cpu"}, shown in the report.
    ran_on: dict[str, Any] = field(default_factory=dict)
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
    def settle_with(self) -> int | None:
        """The --seeds (or --timing-rounds) value that gives the seeds (rounds) the verdict asks for: a claim on a
        longer roster (registry.DDPM_SEEDS) gets them from a smaller --seeds."""
        need = self.decision.seeds_needed if self.decision else None
        if not need or self.claim.kind == "timing":
            return need
        return registry.seeds_option(self.claim, need)

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


class ClaimRecorder:
    """The `claim` fixture: one claim's metrics, evidence and verdict, as a test records them."""

    def __init__(self, record: ClaimRecord) -> None:
        self.record = record
        self.claim = record.claim

    @property
    def id(self) -> str:
        return self.claim.id

    def t(self, name: str, kind: type | None = None) -> Any:
        """The claim's registry value `name` (registry.Claim.t)."""
        return self.claim.t(name, kind)

    def metric(self, **values: Any) -> None:
        self.record.metrics.update({k: _jsonable(v) for k, v in values.items()})

    def key(self, text: str) -> None:
        """The one number a reader sees in the summary row."""
        self.record.metrics["key"] = text

    def images(self, title: str, images: list[np.ndarray], captions: list[str], *,
               per_row: int | None = None) -> None:
        """A grid of images, `per_row` to a row (default: `row_length` of the captions), so that a row is one seed
        or one sampler and a strip is never split."""
        images = list(images)
        per_row = per_row or row_length(captions)
        self.record.evidence.append(Evidence("images", title, {"images": images, "captions": list(captions),
                                                                "per_row": max(1, min(per_row, len(images) or 1))}))

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.record.evidence.append(
            Evidence("table", title, {"columns": columns, "rows": [[_jsonable(c) for c in r] for r in rows]}))

    def series(self, title: str, x: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
               **extra: Any) -> None:
        self.record.evidence.append(Evidence("series", title, {
            "x": _jsonable(x), "series": _jsonable(series), "xlabel": xlabel, "ylabel": ylabel,
            **{k: _jsonable(v) for k, v in extra.items()}}))

    def scatter(self, title: str, groups: dict[str, tuple[list[float], list[float]]], *, xlabel: str, ylabel: str,
                front: tuple[list[float], list[float]] | None = None, logx: bool = False) -> None:
        """Points per group (e.g. per scheduler), optionally a front line through some of them."""
        self.record.evidence.append(Evidence("series", title, {
            "groups": _jsonable({k: {"x": list(x), "y": list(y)} for k, (x, y) in groups.items()}),
            "front": _jsonable({"x": list(front[0]), "y": list(front[1])}) if front else None,
            "xlabel": xlabel, "ylabel": ylabel, "logx": logx, "x": [], "series": {}}))

    def decide(self, verdict: Verdict) -> None:
        """Record the verdict and end the test with the outcome it implies (see the module docstring).

        Call it last: nothing after it runs, so nothing after it can contradict it.
        """
        rec = self.record
        rec.decision, rec.verdict, rec.reason = verdict, verdict.verdict, verdict.reason
        if verdict.seeds_needed is not None:
            rec.metrics["seeds_needed"] = verdict.seeds_needed
        rec.metrics["decision"] = _jsonable(verdict.numbers)
        if verdict.verdict == CONFIRMED:
            return
        if verdict.verdict == REFUTED:
            if rec.expected == REFUTED:
                raise ClaimRefuted(f"{REFUTED_PREFIX}{verdict.reason}")
            pytest.fail(f"{self.id} refuted: {verdict.reason}", pytrace=False)
        # Reported at the test's own location, not this line (as the skip marker does).
        raise pytest.skip.Exception(f"{verdict.verdict}: {verdict.reason}", _use_item_location=True)

    def skip(self, why: str) -> None:
        self.decide(Verdict(SKIPPED, why))


# ------------------------------------------------------------------ moving records from xdist workers
def record_payload(rec: ClaimRecord) -> dict[str, Any]:
    """A claim record as plain data (images as PNG bytes) that an xdist worker can send to the controller
    on its test report, the way pytest-html moves extras."""
    import io

    from PIL import Image

    def png(img: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img)).save(buf, format="PNG")
        return buf.getvalue()

    evidence = []
    for e in rec.evidence:
        data = dict(e.data)
        if e.kind == "images":
            data = {"images": [png(i) for i in e.data["images"]], "captions": list(e.data["captions"]),
                    "per_row": e.data.get("per_row")}
        evidence.append({"kind": e.kind, "title": e.title, "data": _jsonable(data)})
    return {"id": rec.claim.id, "verdict": rec.verdict, "reason": rec.reason, "metrics": _jsonable(rec.metrics),
            "decision": rec.decision.as_dict() if rec.decision else None, "evidence": evidence,
            "ran_on": dict(rec.ran_on)}


def merge_payload(rec: ClaimRecord, payload: dict[str, Any]) -> None:
    """The controller's side of record_payload: the worker's record replaces this (empty) one."""
    import io

    from PIL import Image

    rec.verdict, rec.reason = payload["verdict"], payload["reason"]
    rec.metrics.update(payload["metrics"])
    d = payload.get("decision")
    rec.decision = Verdict(d["verdict"], d["reason"], d.get("numbers", {}), d.get("seeds_needed")) if d else None
    rec.ran_on = dict(payload.get("ran_on", {}))
    rec.evidence = []
    for e in payload["evidence"]:
        data = e["data"]
        if e["kind"] == "images":
            data = {"images": [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in data["images"]],
                    "captions": data["captions"], "per_row": data.get("per_row") or row_length(data["captions"])}
        rec.evidence.append(Evidence(e["kind"], e["title"], data))


class Results:
    """All claim records of a session, in registry order, plus the environment."""

    def __init__(self, model_kind: str = "tiny") -> None:
        self.records: dict[str, ClaimRecord] = {cid: ClaimRecord(c, expected=c.expects(model_kind))
                                                for cid, c in registry.CLAIMS.items()}
        self.environment: dict[str, Any] = {}
        self.collected: set[str] = set()
        #: (path, payload) of an earlier claims.json to compare with (--claims-compare), and the result.
        self.compare_with: tuple[str, dict[str, Any]] | None = None
        self.comparison: Any = None

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
        out = {v: 0 for v in (CONFIRMED, REFUTED, INCONCLUSIVE, SKIPPED)}
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
                    ev.append({"kind": "images", "title": e.title, "captions": e.data["captions"], "files": paths,
                               "per_row": e.data.get("per_row") or row_length(e.data["captions"])})
                else:
                    ev.append({"kind": e.kind, "title": e.title, **e.data})
            claims.append({
                "id": r.claim.id, "exercise": r.claim.exercise, "lesson": r.claim.lesson, "kind": r.claim.kind,
                "verdict": verdict, "plain": plain.for_record(r), "reason": reason, "expected": r.expected,
                "corrected": r.claim.corrected, "scope": r.claim.scope,
                "seeds_needed": r.decision.seeds_needed if r.decision else None, "settle_with": r.settle_with,
                "statements": [st.as_dict() for st in r.decision.statements] if r.decision else [],
                "ran_on": r.ran_on,
                "metrics": r.metrics,
                "thresholds": {k: {"value": _jsonable(t.value), "why": t.why} for k, t in r.claim.thresholds.items()},
                "runs": {n: {"label": run.label, "sampler": run.sampler, "steps": run.steps, "guidance": run.guidance,
                             "seeds": run.seeds, **({"overrides": dict(run.overrides)} if run.overrides else {})}
                         for n, run in r.claim.runs.items()},
                "catalogue": {"source": r.claim.source, "rule": r.claim.rule,
                              "overrides": [{"what": w, "name": n, "built_in": _jsonable(o), "value": _jsonable(v)}
                                            for w, n, o, v in r.claim.overrides]},
                "evidence": ev, "tests": r.tests, "outcome": r.outcome,
            })
        return {"schema": SCHEMA, "environment": self.environment, "claims": claims}


_SEED = re.compile(r"\bseed (\d+)\b")


def row_length(captions: list[str]) -> int:
    """How many images a grid puts in a row when its test does not say: read from the seeds its captions name.

    Captions grouped by seed ("seed 1, 5 steps", "seed 1, 10 steps", "seed 2, ...") give one seed per row;
    captions that cycle through the seeds ("DDIM, seed 1", "DDIM, seed 2", "DDPM, seed 1", ...) give one row per
    cycle; anything else is one row.
    """
    seeds = [m.group(1) if (m := _SEED.search(c)) else None for c in captions]
    n = len(captions)
    if n == 0 or None in seeds:
        return max(n, 1)
    run = 1
    while run < n and seeds[run] == seeds[0]:
        run += 1
    if 1 < run < n and n % run == 0 and all(seeds[k] == seeds[k - k % run] for k in range(n)):
        return run
    for period in range(2, n):
        if n % period == 0 and len(set(seeds[:period])) == period and \
                all(seeds[k] == seeds[k % period] for k in range(n)):
            return period
    return n


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
    """Write to a temp file beside `path`, then rename, so a reader never sees half a file. The file gets the
    mode an ordinary write would (0666 less the umask): mkstemp makes it 0600, which would keep the report from
    the group, a web server or a CI artifact step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(payload, indent=2, default=str))
