"""--claims-compare: verdicts, intervals and environment compared with an earlier claims.json."""
from __future__ import annotations

import copy
import json

import pytest

from sampler_claims.compare import CompareError, compare, load


def _payload() -> dict:
    return {"environment": {"diffusers": "0.42.1", "torch": "2.13.0", "device": "cpu", "dtype": "float32"},
            "claims": [
                {"id": "speedup", "verdict": "confirmed", "metrics": {"decision": {"part0": {"numbers": {
                    "estimate": {"mean": 21.0, "ci95": [19.0, 23.0], "n": 4}}}}}},
                {"id": "sweet-spot", "verdict": "refuted", "metrics": {"decision": {"difference": {
                    "mean": 0.2, "ci95": [0.1, 0.3], "n": 32}}}},
            ]}


def test_one_changed_verdict_and_one_moved_metric_are_reported():
    old = _payload()
    new = copy.deepcopy(old)
    new["claims"][1]["verdict"] = "confirmed"
    new["claims"][0]["metrics"]["decision"]["part0"]["numbers"]["estimate"] = {"mean": 40.0, "ci95": [38.0, 42.0]}
    new["environment"]["diffusers"] = "0.43.0"
    c = compare(old, new, "old.json")
    assert [(x["id"], x["old"], x["new"]) for x in c.changed] == [("sweet-spot", "refuted", "confirmed")]
    assert [m["id"] for m in c.moved] == ["speedup"] and "estimate" in c.moved[0]["metric"]
    assert c.environment == [{"key": "diffusers", "old": "0.42.1", "new": "0.43.0"}]
    assert c.decided_changes


def test_identical_runs_compare_clean():
    c = compare(_payload(), _payload())
    assert not c.changed and not c.moved and not c.environment


def test_a_missing_or_foreign_file_names_the_fix(tmp_path):
    with pytest.raises(CompareError, match="no such file"):
        load(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(CompareError, match="not a claims.json"):
        load(tmp_path / "x.json")


MODULE = '''
import pytest
from sampler_claims.verdict import exact

@pytest.mark.claim("same-weights")
def test_sw(claim):
    claim.decide(exact(True, "one hash"))
'''


def test_fail_on_change_exits_non_zero(pytester: pytest.Pytester, dummy_folder) -> None:
    pytester.makepyfile(test_claims=MODULE)
    old = _payload()
    old["claims"].append({"id": "same-weights", "verdict": "refuted", "metrics": {}})
    (pytester.path / "old.json").write_text(json.dumps(old))
    args = ["-p", "sampler_claims.plugin", "--model", str(dummy_folder), "--claims-report",
            str(pytester.path / "out" / "index.html"), "--claims-compare", str(pytester.path / "old.json")]
    r = pytester.runpytest_subprocess(*args)
    assert r.ret == 0
    r.stdout.fnmatch_lines(["*same-weights: refuted -> confirmed*"])
    data = json.loads((pytester.path / "out" / "claims.json").read_text())
    assert data["comparison"]["changed_verdicts"][0]["id"] == "same-weights"
    assert "Compared with" in (pytester.path / "out" / "index.html").read_text()
    r = pytester.runpytest_subprocess(*args, "--claims-fail-on-change")
    assert r.ret == pytest.ExitCode.TESTS_FAILED


def test_fail_on_change_without_compare_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    r = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--claims-fail-on-change")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
