"""A claim test's outcome as pytest and the reader see it: the state and message read from its report, the verdict
word it shows (CONFIRMED, REFUTED, INCONCLUSIVE), and the collector that records each outcome where the report is
written (the controller under xdist: a worker sends its record on the test report).
"""
from __future__ import annotations

from typing import Any

import pytest

from .results import REFUTED_PREFIX, Results, merge_payload
from .verdict import CONFIRMED, INCONCLUSIVE, REFUTED

#: user_properties keys that carry a claim's outcome (always) and its record (from xdist workers).
CLAIM_PROP, RECORD_PROP = "sampler_claims.outcome", "sampler_claims.record"
#: user_properties key of an xdist worker's finished progress lines, printed by the controller.
PROGRESS_PROP = "sampler_claims.progress"


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id ("gw0", ...) of this process, None on the controller or without xdist."""
    return getattr(config, "workerinput", {}).get("workerid")


def claim_state(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str]:
    """The claim test's state (passed, failed, skipped, xfailed, xpassed, error) and its one-line message."""
    if hasattr(report, "wasxfail"):
        state = "xfailed" if report.skipped else "xpassed"
    elif report.when == "setup" and report.failed:
        state = "error"
    else:
        state = report.outcome
    message = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        if call.excinfo is not None:
            message = call.excinfo.exconly().strip().splitlines()[0]
        else:
            message = (report.longreprtext or "").strip().splitlines()[-1] if report.longreprtext else ""
    elif hasattr(report, "wasxfail"):
        message = str(report.wasxfail)
    return state, message


#: The status each verdict shows in the terminal: (letter under -q, word under -v). The pytest outcome is what
#: results.ClaimRecorder.decide made it (a refutation the registry expects is an xfail, and so on); only the
#: word a reader sees is the verdict's.
STATUS = {CONFIRMED: ("C", "CONFIRMED"), REFUTED: ("R", "REFUTED"), INCONCLUSIVE: ("I", "INCONCLUSIVE")}


def shown_verdict(state: str, verdict: str | None) -> str | None:
    """The verdict a claim test's status shows, or None for pytest's own word (a crash, a skip, no decision).

    passed + confirmed, xfailed + refuted (expected), failed + refuted (unexpected), failed + confirmed (an
    expected refutation that now holds: XPASS(strict)), skipped + inconclusive."""
    allowed = {"passed": (CONFIRMED,), "xfailed": (REFUTED,), "failed": (REFUTED, CONFIRMED),
               "skipped": (INCONCLUSIVE,)}
    return verdict if verdict in allowed.get(state, ()) else None


def shorten_reason(report: pytest.TestReport, shown: str) -> None:
    """Under -v pytest writes the reason of a skip or xfail after the status word: with the verdict as the word,
    the reason no longer repeats it ("REFUTED (refuted, as measu…" becomes "REFUTED (<the measured reason>)")."""
    if shown == REFUTED and hasattr(report, "wasxfail"):
        report.wasxfail = str(report.wasxfail).removeprefix(REFUTED_PREFIX)
    elif shown == INCONCLUSIVE and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, "Skipped: " + str(reason).removeprefix("Skipped: ")
                           .removeprefix(f"{INCONCLUSIVE}: "))


def teststatus(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    """A claim test shows its verdict: CONFIRMED, REFUTED or INCONCLUSIVE under -v, C, R or I under -q, in the
    colour of its pytest outcome (an unexpected refutation stays red, and counts as failed)."""
    out = dict(getattr(report, "user_properties", ())).get(CLAIM_PROP)
    if not out or not out.get("shown") or out["shown"] not in STATUS:
        return None
    letter, word = STATUS[out["shown"]]
    state = out.get("state")
    category = {"passed": "passed", "xfailed": "xfailed", "skipped": "skipped"}.get(state, "failed")
    if category == "failed" and out["shown"] == CONFIRMED:
        word = "CONFIRMED, EXPECTED REFUTED"
    colour = {"passed": "green", "failed": "red"}.get(category, "yellow")
    return category, letter, (word, {colour: True})


class OutcomeCollector:
    """Registered on the process that writes the report (the controller under xdist, else the only one):
    records each claim test's outcome from its report, merging the record a worker sent with it."""

    def __init__(self, results: Results, config: pytest.Config | None = None) -> None:
        self.results = results
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {k: v for k, v in getattr(report, "user_properties", ())
                 if k in (CLAIM_PROP, RECORD_PROP, PROGRESS_PROP)}
        if PROGRESS_PROP in props and self.config is not None and self.config.get_verbosity() > -2:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            node = getattr(report, "node", None)
            who = f"[{node.gateway.id}] " if node is not None and getattr(node, "gateway", None) else ""
            from .progress import finished_line

            for line in props[PROGRESS_PROP]:
                finished_line(reporter, who + line)
        if CLAIM_PROP not in props:
            return
        out = props[CLAIM_PROP]
        if RECORD_PROP in props:
            merge_payload(self.results.records[out["id"]], props[RECORD_PROP])
        self.results.collected.add(out["id"])
        self.results.add_outcome(out["id"], report.nodeid, out["state"], out["message"])
