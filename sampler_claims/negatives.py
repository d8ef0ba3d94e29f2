"""Each claim's negative control, linked by a mark: `@pytest.mark.negative_of("<claim id>", ...)` on a test in
tests/test_negative_<exercise>.py says that the test breaks what the claim's rule checks and shows the verdict
turn. Collection checks the links both ways, so a claim without a negative control (or a mark naming no claim)
stops the run before anything is measured.
"""
from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from . import registry

MARK = "negative_of"
MODULE_PREFIX = "test_negative_"


def marked_ids(module: ModuleType) -> dict[str, list[str]]:
    """claim id -> names of the tests in `module` that carry negative_of(id)."""
    out: dict[str, list[str]] = {}
    for name, obj in vars(module).items():
        if not name.startswith("test_") or not callable(obj):
            continue
        for mark in getattr(obj, "pytestmark", []):
            if mark.name == MARK:
                for cid in mark.args:
                    out.setdefault(cid, []).append(name)
    return out


def problems(modules: Iterable[ModuleType]) -> list[str]:
    """What is wrong with the negative controls of these test_negative_<exercise> modules: marks that name no
    claim id, marks in the wrong exercise's module, and claims of a module's exercise with no negative control."""
    out = []
    for module in modules:
        exercise = module.__name__.rsplit(".", 1)[-1].removeprefix(MODULE_PREFIX)
        marked = marked_ids(module)
        for cid, tests in marked.items():
            if cid not in registry.CLAIMS:
                out.append(f"{module.__name__}: {', '.join(tests)} marked negative_of({cid!r}), not a claim id; "
                           f"known: {', '.join(registry.CLAIMS)}")
            elif registry.CLAIMS[cid].module != exercise:
                out.append(f"{module.__name__}: negative_of({cid!r}) belongs in "
                           f"tests/{MODULE_PREFIX}{registry.CLAIMS[cid].module}.py")
        for claim in registry.CLAIMS.values():
            if claim.module == exercise and claim.id not in marked:
                out.append(f"{claim.id} has no negative control: no test in {module.__name__} is marked "
                           f"@pytest.mark.{MARK}({claim.id!r})")
    return out
