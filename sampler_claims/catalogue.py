"""The catalogue of claims: data files, one per lesson section (sampler_claims/catalogue/<section>.toml), read with the
standard library's tomllib, plus any file a user passes with --claims-file.

Each claim gives its id, exercise, the lesson's words, kind, scope and expected verdict, the rule it uses (by name,
a function of sampler_claims/rules/<section>.py), its thresholds (each a value with its argument, or a named
reference to a value Python computes from its argument, such as the comparable margin: one wrong attribute in five
images times the renderer's measured unit), the shared sets it uses (the quality metric's controls, the convergence
reference, the timing rounds) and its runs (sampler_claims.runs). Test, plan and report read the claim here.

Everything is checked when the file is read, before any model loads: an unknown key, rule, sampler, seed set or
reference is a `CatalogueError` that lists what is available. A user's file may add claims of the existing rule
kinds or override an entry's runs and thresholds; every override is recorded on the claim with the built-in value
beside it, so a weakened margin is shown wherever the claim is.
"""
from __future__ import annotations

import ast
import difflib
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import runs as runs_mod
from .runs import RunError, RunSpec, make_run

#: The built-in catalogue: the defaults first, then one file per lesson section, in the lesson's order.
HOME = Path(__file__).parent / "catalogue"
SECTIONS = ("exercise1", "exercise2", "exercise3", "exercise4", "takeaways", "beyond")
RULES_HOME = Path(__file__).parent / "rules"

#: The keys a claim may give, and whether a new claim must give it.
CLAIM_KEYS: dict[str, bool] = {
    "id": True, "exercise": True, "lesson": True, "measure": True, "lead": False, "kind": False, "scope": False,
    "rule": True, "needs_trained_model": False, "group": False, "uses": False, "expected": False,
    "expected_why": False, "corrected": False, "thresholds": False, "runs": False,
}
KINDS = ("exact", "statistical", "timing")
#: The rule kinds a claim added by a --claims-file may use: each has a generic test (claims/test_declared.py) that
#: runs the claim from its entry alone, so a new claim of these kinds needs no Python.
GENERIC_RULES = ("comparable_quality", "not_worse_quality")
SCOPES = ("model", "diffusers")


class CatalogueError(ValueError):
    """A catalogue file that cannot be used as written; the message names the file, the claim and the fix."""


def _suggest(name: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def rule_names() -> dict[str, str]:
    """Every rule a claim may name: the top-level functions of sampler_claims/rules/<section>.py, read from the
    source (no import, so checking a catalogue loads no torch): name -> section."""
    out: dict[str, str] = {}
    for section in SECTIONS:
        path = RULES_HOME / f"{section}.py"
        if path.is_file():
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    out.setdefault(node.name, section)
    return out


def read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such claims file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: not valid TOML: {exc}") from None


def load_defaults() -> None:
    """The catalogue's run defaults (defaults.toml), stated once for every claim's runs."""
    data = read(HOME / "defaults.toml")
    unknown = sorted(set(data.get("run", {})) - set(runs_mod.DEFAULTS))
    if unknown:
        raise CatalogueError(f"{HOME / 'defaults.toml'}: unknown run default(s) {', '.join(unknown)}; known: "
                             f"{', '.join(runs_mod.DEFAULTS)}")
    runs_mod.DEFAULTS.update(data.get("run", {}))


def _threshold(entry: Any, where: str) -> Any:
    from . import registry

    if isinstance(entry, dict) and set(entry) == {"ref"}:
        name = entry["ref"]
        refs = registry.references()
        if name not in refs:
            raise CatalogueError(f"{where}: unknown reference {name!r}{_suggest(name, list(refs))}; known: "
                                 f"{', '.join(refs)}")
        return refs[name]
    if isinstance(entry, dict) and set(entry) == {"value", "why"}:
        return registry.Threshold(registry.decode_value(entry["value"]), str(entry["why"]))
    raise CatalogueError(f"{where}: a threshold is {{ value = ..., why = \"the argument for it\" }} or "
                         f"{{ ref = \"NAME\" }}, not {entry!r}")


def _claim(data: dict[str, Any], where: str, base: Any = None) -> Any:
    """A Claim from one [[claim]] table; with `base`, the table overrides that built-in claim."""
    from . import registry

    unknown = sorted(set(data) - set(CLAIM_KEYS))
    if unknown:
        raise CatalogueError(f"{where}: unknown key(s) {', '.join(unknown)}"
                             f"{_suggest(unknown[0], list(CLAIM_KEYS))}; a claim takes: {', '.join(CLAIM_KEYS)}")
    if base is None:
        missing = [k for k, needed in CLAIM_KEYS.items() if needed and k not in data]
        if missing:
            raise CatalogueError(f"{where}: a new claim needs {', '.join(missing)}")
    cid = data["id"]
    fields: dict[str, Any] = {}
    overrides: list[tuple[str, str, Any, Any]] = list(base.overrides) if base is not None else []
    for key in ("exercise", "lesson", "measure", "lead", "kind", "scope", "rule", "needs_trained_model",
                "expected_why", "corrected"):
        if key in data:
            fields[key] = data[key]
            if base is not None and getattr(base, key) != data[key]:
                overrides.append((key, "", getattr(base, key), data[key]))
    if "group" in data:
        fields["group_override"] = data["group"]
    if "expected" in data:
        fields["expected"] = dict(data["expected"])
        if base is not None and base.expected != fields["expected"]:
            overrides.append(("expected", "", base.expected, fields["expected"]))
    exercise = fields.get("exercise", getattr(base, "exercise", None))
    if exercise not in registry.EXERCISES:
        raise CatalogueError(f"{where}: exercise {exercise!r}{_suggest(str(exercise), list(registry.EXERCISES))}; "
                             f"known: {', '.join(registry.EXERCISES)}")
    if fields.get("kind", "exact") not in KINDS:
        raise CatalogueError(f"{where}: kind {fields['kind']!r}; known: {', '.join(KINDS)}")
    if fields.get("scope", "model") not in SCOPES:
        raise CatalogueError(f"{where}: scope {fields['scope']!r}; known: {', '.join(SCOPES)}")
    for model, verdict in fields.get("expected", {}).items():
        if verdict not in registry.VERDICTS:
            raise CatalogueError(f"{where}: expected[{model!r}] = {verdict!r}; known: {', '.join(registry.VERDICTS)}")
    rule = fields.get("rule", getattr(base, "rule", ""))
    rules = rule_names()
    if rule not in rules:
        raise CatalogueError(f"{where}: unknown rule {rule!r}{_suggest(rule, list(rules))}; known: "
                             f"{', '.join(sorted(rules))}")
    uses = tuple(data.get("uses", getattr(base, "uses", ())))
    sets = registry.threshold_sets()
    for name in uses:
        if name not in sets:
            raise CatalogueError(f"{where}: uses {name!r}{_suggest(name, list(sets))}; known sets: {', '.join(sets)}")
    thresholds = dict(base.thresholds) if base is not None else {}
    for key, entry in data.get("thresholds", {}).items():
        value = _threshold(entry, f"{where}: threshold {key!r}")
        if base is not None and key not in base.thresholds:
            raise CatalogueError(f"{where}: claim {cid!r} has no threshold {key!r} to override"
                                 f"{_suggest(key, list(base.thresholds))}; it has: {', '.join(base.thresholds)}")
        if base is not None and base.thresholds[key].value != value.value:
            overrides.append(("threshold", key, base.thresholds[key].value, value.value))
        thresholds[key] = value
    for name in uses:  # after the claim's own, so that they read first in the report
        for key, value in sets[name].items():
            thresholds.setdefault(key, value)
    declared = dict(base.runs) if base is not None else {}
    for name, entry in data.get("runs", {}).items():
        try:
            run = make_run(name, entry, where)
        except RunError as exc:
            raise CatalogueError(str(exc)) from None
        if base is not None and name not in base.runs:
            raise CatalogueError(f"{where}: claim {cid!r} has no run {name!r} to override"
                                 f"{_suggest(name, list(base.runs))}; it has: {', '.join(base.runs)}")
        if base is not None and base.runs[name] != run:
            overrides.append(("run", name, base.runs[name].label, run.label))
        declared[name] = run
    fields.update(thresholds=thresholds, runs=declared, uses=uses, overrides=tuple(overrides))
    if base is not None:
        return replace(base, **fields, source=f"{base.source}, {where.split(':')[0]}")
    return registry.Claim(id=cid, **fields, source=where.split(":")[0])


def load(extra: list[str | Path] | tuple[str | Path, ...] = ()) -> dict[str, Any]:
    """The built-in catalogue, then each `extra` file: claim id -> Claim, in the lesson's order (new claims after
    their section's)."""
    load_defaults()
    claims: dict[str, Any] = {}
    for section in SECTIONS:
        path = HOME / f"{section}.toml"
        for k, data in enumerate(read(path).get("claim", [])):
            where = f"{path.relative_to(HOME.parent.parent)}: claim {data.get('id', k)!r}"
            if data.get("id") in claims:
                raise CatalogueError(f"{where}: the id is already in the catalogue")
            claim = _claim(data, where)
            if claim.module != section:
                raise CatalogueError(f"{where}: exercise {claim.exercise!r} belongs in {claim.module}.toml")
            claims[claim.id] = claim
    for path in map(Path, extra):
        data = read(path)
        unknown = sorted(set(data) - {"claim"})
        if unknown:
            raise CatalogueError(f"{path}: unknown table(s) {', '.join(unknown)}; a claims file holds [[claim]] "
                                 "tables")
        for k, entry in enumerate(data.get("claim", [])):
            if "id" not in entry:
                raise CatalogueError(f"{path}: claim #{k + 1} has no id")
            where = f"{path}: claim {entry['id']!r}"
            base = claims.get(entry["id"])
            claim = _claim(entry, where, base)
            if base is None and claim.rule not in GENERIC_RULES:
                raise CatalogueError(f"{where}: a new claim's rule must be one with a generic test: "
                                     f"{', '.join(GENERIC_RULES)} (rule {claim.rule!r} needs a test of its own in "
                                     "claims/)")
            if base is None and not claim.runs:
                raise CatalogueError(f"{where}: a new claim declares the runs it compares ([claim.runs])")
            claims[entry["id"]] = claim
    order = {s: i for i, s in enumerate(SECTIONS)}
    return dict(sorted(claims.items(), key=lambda kv: order[kv[1].module]))


def built_in(claim: Any) -> bool:
    """Whether the claim is the package's own (it has a test in claims/), not one a --claims-file added."""
    return claim.source.startswith(str(HOME.relative_to(HOME.parent.parent)))


def files(extra: list[str | Path] | tuple[str | Path, ...] = ()) -> list[str]:
    """Every file the catalogue was read from, as the header and the report name them."""
    base = HOME.parent.parent
    return ([str((HOME / "defaults.toml").relative_to(base))]
            + [str((HOME / f"{s}.toml").relative_to(base)) for s in SECTIONS] + [str(p) for p in extra])


def expand(run: RunSpec, compatibles: list[str]) -> list[RunSpec]:
    """A run for every compatible scheduler where the run's sampler is 'compatibles', else the run itself."""
    if run.sampler != runs_mod.COMPATIBLES:
        return [run]
    return [replace(run, name=f"{run.name}-{name}", sampler=name) for name in compatibles]
