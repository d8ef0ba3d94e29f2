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
