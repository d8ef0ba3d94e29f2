"""The catalogue is the one declaration of a claim: read from data, checked at start-up, and nothing else lists a
lesson configuration."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sampler_claims import catalogue, registry
from sampler_claims.catalogue import CatalogueError
from sampler_claims.names import LABELS

ROOT = Path(__file__).resolve().parent.parent
#: Where a lesson configuration must not be written: the claims' tests, their rules and the plan.
NO_CONFIG_FILES = sorted([*ROOT.glob("claims/*.py"), *ROOT.glob("sampler_claims/rules/*.py"),
                          ROOT / "sampler_claims" / "plan.py"])
#: Step counts of the lesson's configurations (Exercise 1's, the sweet-spot grid, Exercise 4's 10).
LESSON_STEPS = {5, 8, 10, 20, 25, 30, 50, 100, 200, 1000}


def _literals(path: Path) -> list[str]:
    """Sampler names, the guidance 7.5, and step counts passed as `steps=` or to a Request, written as literals."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in LABELS:
            out.append(f"{path.name}:{node.lineno}: sampler {node.value!r}")
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value == 7.5:
            out.append(f"{path.name}:{node.lineno}: guidance 7.5")
        if isinstance(node, ast.keyword) and node.arg in ("steps", "num_inference_steps") and isinstance(
                node.value, ast.Constant) and node.value.value in LESSON_STEPS:
            out.append(f"{path.name}:{node.lineno}: steps={node.value.value}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Request":
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and arg.value in LESSON_STEPS:
                    out.append(f"{path.name}:{node.lineno}: Request(..., {arg.value}, ...)")
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("schedulers"):
            out += [f"{path.name}:{node.lineno}: imports {a.name}" for a in node.names if a.name in LESSON_SPECS]
    return out


#: The lesson's configurations that sampler_claims.schedulers used to spell out; a claim reads its runs instead.
LESSON_SPECS = {"DDPM", "DDIM", "DPM", "DDPM_TRAILING", "LESSON_SAMPLERS"}


def test_no_lesson_configuration_is_written_outside_the_catalogue() -> None:
    found = [hit for path in NO_CONFIG_FILES for hit in _literals(path)]
    assert not found, "lesson configurations written outside the catalogue:\n" + "\n".join(found)


def test_the_built_in_catalogue_reads_every_section_and_names_its_files() -> None:
    claims = catalogue.load()
    assert list(claims) == list(registry.CLAIMS)
    assert {c.module for c in claims.values()} == set(catalogue.SECTIONS)
    assert all(c.rule in catalogue.rule_names() for c in claims.values())
    assert catalogue.files()[0].endswith("defaults.toml")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('[[claim]]\nid = "x"\nexercise = "Exercise 1"\nlesson = "l"\nmeasure = "m"\nrule = "comparable_quality"\n'
     'colour = 1\n', "unknown key"),
    ('[[claim]]\nid = "x"\nexercise = "Exercise 1"\nlesson = "l"\nmeasure = "m"\nrule = "comparable_qualty"\n',
     "did you mean 'comparable_quality'"),
    ('[[claim]]\nid = "x"\nexercise = "Exercise 1"\nlesson = "l"\nmeasure = "m"\nrule = "comparable_quality"\n'
     '[claim.runs]\na = { sampler = "ddmi", steps = 5 }\n', "unknown sampler 'ddmi'"),
    ('[[claim]]\nid = "x"\nexercise = "Exercise 1"\nlesson = "l"\nmeasure = "m"\nrule = "comparable_quality"\n'
     '[claim.thresholds]\nm = { ref = "COMPARABEL" }\n', "did you mean 'COMPARABLE'"),
    ('[[claim]]\nid = "comparable-quality"\n[claim.runs]\nddim-5 = { sampler = "ddim", steps = 5 }\n',
     "has no run 'ddim-5' to override"),
    ('[[claim]]\nid = "x"\nexercise = "Exercise 9"\nlesson = "l"\nmeasure = "m"\nrule = "comparable_quality"\n',
     "exercise 'Exercise 9'"),
])
def test_a_wrong_name_in_a_claims_file_lists_what_is_available(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        catalogue.load([_write(tmp_path, text)])


def test_an_override_is_recorded_beside_the_built_in_value(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[claim]]\nid = "comparable-quality"\n[claim.thresholds]\n'
                            'comparable_margin = { value = 0.2, why = "a weaker margin" }\n')
    claim = catalogue.load([path])["comparable-quality"]
    assert claim.t("comparable_margin") == 0.2
    assert ("threshold", "comparable_margin", registry.COMPARABLE.value, 0.2) in claim.overrides
    assert str(path) in claim.source


NEW_CLAIM = '''
[[claim]]
id = "dpm-solver-10-comparable-to-20"
rule = "comparable_quality"
exercise = "Exercise 3"
lesson = "DPM-Solver@10 is as good as DPM-Solver@20"
measure = "checker score paired by seed: DPM-Solver@10 - DPM-Solver@20 against the comparable margin"
kind = "statistical"
needs_trained_model = true
uses = ["quality"]
corrected = "DPM-Solver at 10 steps is measurably worse than at 20 steps."

[claim.thresholds]
comparable_margin = { ref = "COMPARABLE" }

[claim.runs]
dpm-solver-10 = { sampler = "dpm-solver", steps = 10 }
dpm-solver-20 = { sampler = "dpm-solver", steps = 20 }
'''


def test_a_new_claim_in_a_claims_file_runs_is_planned_reported_and_reaches_the_errata(pytester) -> None:
    """No Python: a claim of an existing rule kind, declared in a file in a temporary folder, is planned (its
    planned evaluations equal those the run made), decided by the generic test, reported in claims.json with the
    file it came from, and listed in the errata (refuted or unsettled at 4 seeds)."""
    import json

    pytester.makepyfile(test_declared=(ROOT / "claims" / "test_declared.py").read_text())
    (pytester.path / "mine.toml").write_text(NEW_CLAIM)
    out = pytester.path / "out" / "index.html"
    r = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", "tiny", "--seeds", "4",
                                      "--claims-file", "mine.toml", "--claim", "dpm-solver-10-comparable-to-20",
                                      "--claims-report", str(out))
    r.stdout.fnmatch_lines(["*claims: catalogue *mine.toml*", "*claims plan:*dpm-solver-10-comparable-to-20*"])
    data = json.loads((out.parent / "claims.json").read_text())
    rec = next(c for c in data["claims"] if c["id"] == "dpm-solver-10-comparable-to-20")
    assert rec["verdict"] in ("confirmed", "refuted", "inconclusive")
    assert rec["ran_on"]["unet_evaluations"]["planned"] == rec["ran_on"]["unet_evaluations"]["made"] > 0
    assert rec["catalogue"]["source"] == "mine.toml" and rec["runs"]["dpm-solver-10"]["label"] == "DPM-Solver@10"
    assert "mine.toml" in data["environment"]["catalogue"][-1]
    if rec["verdict"] != "confirmed":
        assert "DPM-Solver@10 is as good as DPM-Solver@20" in (out.parent / "errata.md").read_text()


def test_a_wrong_key_in_a_claims_file_fails_at_start_up_with_the_names(pytester) -> None:
    (pytester.path / "bad.toml").write_text(NEW_CLAIM.replace('uses = ["quality"]', 'usse = ["quality"]'))
    r = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--claims-file", "bad.toml")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*--claims-file*unknown key(s) usse*did you mean 'uses'*a claim takes:*"])
