"""The report: written atomically, self-contained, escaped, and written whatever happens to the run."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from report_fixtures import outcomes_module, sample_results
from sampler_claims.report import write_report
from sampler_claims.results import Results, merge_payload, record_payload


def test_report_is_self_contained_and_escaped(tmp_path) -> None:
    html_path, json_path, _ = write_report(sample_results(), tmp_path / "index.html")
    html = html_path.read_text()
    assert json_path.name == "claims.json"
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r'<(img|script|link)[^>]+(src|href)="(?!data:|#)', html), "external resource in the page"
    for cid in json.loads(json_path.read_text())["claims"]:
        assert f'id="{cid["id"]}"' in html
    assert "data:image/jpeg;base64," in html  # the 512 px image was downscaled to JPEG
    assert len(html.encode()) < 10e6


def test_claims_json_has_the_schema(tmp_path) -> None:
    _, json_path, _ = write_report(sample_results(), tmp_path / "index.html")
    data = json.loads(json_path.read_text())
    assert data["schema"] == 2 and {"environment", "claims", "benchmarks", "report"} <= set(data)
    first = data["claims"][0]
    assert {"id", "exercise", "lesson", "verdict", "reason", "expected", "seeds_needed", "metrics", "evidence", "tests",
            "outcome"} <= set(first)
    assert {c["verdict"] for c in data["claims"]} <= {"confirmed", "refuted", "inconclusive", "skipped"}
    broken = next(c for c in data["claims"] if c["outcome"] == "failed")
    assert broken["verdict"] == "inconclusive" and "boom" in broken["reason"]
    never = [c for c in data["claims"] if c["outcome"] == "not run"]
    assert never and all("did not run" in c["reason"] for c in never)
    files = [f for c in data["claims"] for e in c["evidence"] if e["kind"] == "images" for f in e["files"]]
    assert files and all((tmp_path / f).is_file() for f in files)


def test_two_report_paths_do_not_clobber_each_other(tmp_path) -> None:
    a = write_report(sample_results(), tmp_path / "index.html")
    b = write_report(sample_results(False), tmp_path / "other.html")
    assert {p.name for p in a + b} == {"index.html", "claims.json", "errata.md", "other.html", "other.claims.json",
                                       "other.errata.md"}


def test_no_temp_files_are_left_behind(tmp_path) -> None:
    write_report(sample_results(), tmp_path / "index.html")
    assert not list(tmp_path.glob(".*.tmp"))


CLAIMS_MODULE = '''
import pytest

from sampler_claims.verdict import exact

@pytest.mark.claim("same-weights")
def test_ok(claim):
    claim.decide(exact(True, "fine"))

@pytest.mark.claim("speedup")
def test_fails(claim):
    claim.metric(ratio=3.0)
    assert False, "measured 3x"

@pytest.mark.claim("ddim-eta")
def test_errors(claim):
    raise RuntimeError("crash mid-run")
'''


@pytest.mark.parametrize("extra", [[], ["-x"]])
def test_report_is_written_when_tests_fail_or_stop(pytester: pytest.Pytester, dummy_folder, extra) -> None:
    pytester.makepyfile(test_claims=CLAIMS_MODULE)
    report = pytester.path / "out" / "index.html"
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder),
                                           "--claims-report", str(report), *extra)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = json.loads((report.parent / "claims.json").read_text())
    by_id = {c["id"]: c for c in data["claims"]}
    assert by_id["same-weights"]["verdict"] == "confirmed"
    assert by_id["speedup"]["verdict"] == "inconclusive" and by_id["speedup"]["metrics"]["ratio"] == 3.0
    if extra:  # stopped at the first failure: the crash never ran, and the report says so
        assert by_id["ddim-eta"]["outcome"] == "not run"
    else:
        assert by_id["ddim-eta"]["verdict"] == "inconclusive" and "crash mid-run" in by_id["ddim-eta"]["reason"]
    assert report.is_file()


def test_report_is_written_on_keyboard_interrupt(pytester: pytest.Pytester, dummy_folder) -> None:
    pytester.makepyfile(test_claims='''
import pytest

from sampler_claims.verdict import exact

@pytest.mark.claim("same-weights")
def test_ok(claim):
    claim.decide(exact(True, "fine"))

@pytest.mark.claim("speedup")
def test_interrupted(claim):
    raise KeyboardInterrupt
''')
    report = pytester.path / "index.html"
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder),
                                           "--claims-report", str(report))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = json.loads((pytester.path / "claims.json").read_text())
    assert data["environment"]["exitstatus"] == int(pytest.ExitCode.INTERRUPTED)
    assert {c["id"]: c["verdict"] for c in data["claims"]}["same-weights"] == "confirmed"


OUTCOMES_MODULE = outcomes_module("confirmed", "refuted_unexpectedly", "refuted_as_expected",
                                  "expected_refuted_but_confirmed", "expected_refuted_but_crashed", "inconclusive")


def test_the_pytest_outcome_follows_the_verdict(pytester: pytest.Pytester, dummy_folder) -> None:
    """One place maps verdicts to outcomes: confirmed passes, an unexpected refutation fails, an expected one
    xfails (strict: a confirmation then fails the run), a crash is never an xfail, inconclusive skips."""
    pytester.makepyfile(test_claims=OUTCOMES_MODULE)
    report = pytester.path / "index.html"
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder),
                                           "--claims-report", str(report), "-rA")
    outcomes = {c["id"]: (c["verdict"], c["outcome"]) for c in
                json.loads((pytester.path / "claims.json").read_text())["claims"]}
    assert outcomes["same-weights"] == ("confirmed", "passed")
    assert outcomes["ddim-eta"] == ("refuted", "failed")
    assert outcomes["clone-needed"] == ("refuted", "xfailed")
    assert outcomes["cfg-two-passes"] == ("confirmed", "failed")  # XPASS(strict): the lesson now holds
    assert outcomes["dpm-multi-point"][1] == "failed"
    assert outcomes["comparable-quality"] == ("inconclusive", "skipped")
    # the status words are the verdicts (the outcomes above are pytest's own), in the short summary too
    result.stdout.fnmatch_lines(["REFUTED *test_refuted_as_expected - the pipeline rebinds latents*"])
    result.stdout.fnmatch_lines(["INCONCLUSIVE *straddles the margin*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_internal_names_stay_out_of_the_page(tmp_path) -> None:
    """A reader sees words, not the code's names: no xfail(strict), no constant names, no dataclass reprs, and the
    lead is labelled as what was expected before measuring."""
    results = sample_results()
    for cid in ("sweet-spot", "zt-interpolation", "speedup", "comparable-quality"):
        results.records[cid].verdict, results.records[cid].reason = "refuted", "measured otherwise"
        results.add_outcome(cid, f"claims/test_w.py::test_{cid}", "xfailed")
    html_path, *_ = write_report(results, tmp_path / "index.html")
    html = html_path.read_text()
    for internal in ("xfail", "(strict", "SCORE_SEEDS", "MUCH_WORSE", "COMPARABLE", "TIMING_WIDTHS", "Control(",
                     "Run(", "Lead from reading diffusers"):
        assert internal not in html, internal
    assert "Expected before measuring, from reading diffusers' code" in html
    assert "sampler dpm-solver, good 200, bad 5" in html


def test_the_environment_is_tables_not_reprs(tmp_path) -> None:
    html_path, *_ = write_report(sample_results(), tmp_path / "index.html")
    env = html_path.read_text().split('id="environment"', 1)[1].split("</details>", 1)[0]
    assert "{'" not in env and "['" not in env, "a Python repr in the environment"
    assert "<th>1x1</th>" in env or "1x1</span> 6" in env
    assert "/home/someone" not in env and "…/tiny-shapes" in env, "a path outside the project: its last part"


def test_the_page_opens_with_provenance_counts_and_contents(tmp_path) -> None:
    html_path, *_ = write_report(sample_results(), tmp_path / "index.html")
    html = html_path.read_text()
    top = html.split('<section id="errata">', 1)[0]
    for fact in ("the embedded tiny model", "coloured shapes", "a CPU (float32)", "0.42.1", "2.13.0",
                 "32 prompt-seed pairs from seed 0", "2026-01-02"):
        assert fact in top, fact
    assert top.index('class="counts"') < top.index('id="toc"')
    assert html.index('id="errata"') < html.index('id="claims"') < html.index('id="run"')


def test_a_grid_row_is_one_seed_or_one_sampler() -> None:
    """Without a row length from its test, a grid reads it from the seeds its captions name."""
    from sampler_claims.report import display_side
    from sampler_claims.results import row_length

    by_seed = [f"seed {s}, {n} steps" for s in (1, 2) for n in (5, 10, 20)]
    by_sampler = [f"{n}, seed {s}" for n in ("DDIM", "DDPM") for s in (1, 2, 3, 4)]
    assert row_length(by_seed) == 3 and row_length(by_sampler) == 4
    assert row_length(["run 1", "run 2", "run 3"]) == 3 and row_length([]) == 1
    assert display_side(32, 3) == 96 and display_side(512, 2) == 256
    assert display_side(32, 13) * 13 <= 1100, "a 13-frame strip fits one row of the page"


def test_the_row_length_travels_with_the_evidence(tmp_path) -> None:
    results = Results()
    rec = results.recorder("zt-interpolation")
    frames = [np.zeros((32, 32, 3), np.uint8)] * 4
    rec.images("strip", frames, ["a", "b", "c", "d"], per_row=2)
    moved = Results()
    merge_payload(moved.records["zt-interpolation"], record_payload(rec.record))
    assert moved.records["zt-interpolation"].evidence[0].data["per_row"] == 2
    results.add_outcome("zt-interpolation", "claims/test_x.py::test_strip", "passed")
    html_path, json_path, _ = write_report(results, tmp_path / "index.html")
    by_id = {c["id"]: c for c in json.loads(json_path.read_text())["claims"]}
    assert by_id["zt-interpolation"]["evidence"][0]["per_row"] == 2
    assert "repeat(2, " in html_path.read_text()
