"""The report, as an object that exists on the controller only (as pytest-html's): it writes the page, claims.json and
the errata when the session finishes, whatever happened to the tests, and prints the verdict counts and where the
report is. xdist workers never get one; their records reach the controller on the test reports.
"""
from __future__ import annotations

from typing import Any

import pytest

from .session import SESSION_KEY, ClaimsSession


class ClaimsReport:
    """Registered by the plugin's pytest_configure on the process that writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the report, and fail the run on a changed verdict under --claims-fail-on-change."""
        config = session.config
        if hasattr(config, "workerinput"):  # xdist workers never write the report
            return
        cs: ClaimsSession | None = config.stash.get(SESSION_KEY, None)
        if cs is None or not cs.results.collected or config.getoption("--claims-plan", default=False):
            return
        from .report import write_report

        cs.results.environment = cs.environment()
        cs.results.environment["exitstatus"] = int(exitstatus)
        cs.report_paths = write_report(cs.results, cs.settings.report_path, config=config)
        comp = cs.results.comparison
        if comp is not None and comp.decided_changes and config.getoption("--claims-fail-on-change"):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        """The verdict counts, the comparison with an earlier run, the cost and where the report is."""
        cs: ClaimsSession | None = config.stash.get(SESSION_KEY, None)
        if cs is None or not cs.report_paths:
            return
        reporter = terminalreporter
        counts = ", ".join(f"{n} {v}" for v, n in cs.results.counts().items() if n)
        reporter.write_sep("-", f"claims: {counts}")
        comp = cs.results.comparison
        if comp is not None:
            reporter.write_line(f"claims compared with {comp.old_path}: {len(comp.changed)} verdict(s) changed, "
                                f"{len(comp.moved)} interval(s) moved, {len(comp.environment)} environment "
                                "difference(s)")
            for c in comp.changed:
                reporter.write_line(f"  {c['id']}: {c['old']} -> {c['new']}")
        for line in cs.cost_lines():
            reporter.write_line(line)
        for p in cs.report_paths:
            reporter.write_line(f"claims report: {p}")
        if comp is not None and comp.decided_changes and config.getoption("--claims-fail-on-change"):
            reporter.write_line(f"--claims-fail-on-change: {len(comp.decided_changes)} decided verdict(s) changed",
                                red=True)
