"""The README and docs/ stay true to a clone: every relative link resolves to a file inside the repository, and
nothing points to a folder beside it (such as a shared checkout that a clone does not have)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(page: Path) -> list[str]:
    return LINK.findall(page.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text and "shared/CLAIMS.md" not in text, f"{page.name} points outside the repository"


def test_the_docs_exist_and_the_readme_links_them() -> None:
    assert {"claims.md", "running.md"} <= {p.name for p in PAGES}
    assert {"docs/claims.md", "docs/running.md"} <= set(links(ROOT / "README.md"))


def test_the_readme_keeps_no_per_claim_figures() -> None:
    """Per-claim findings go stale with the model and the release: they come from a run's report and errata."""
    text = (ROOT / "README.md").read_text()
    assert not re.search(r"[+−-]\d\.\d+ \[[+−-]?\d", text), "an interval copied from a run"
    assert not re.search(r"\b\d+/255\b", text), "a pixel difference copied from a run"
    assert "about 11 minutes on a 2-core CPU" in text


def test_the_readmes_findings_beyond_the_lesson_are_the_catalogues() -> None:
    """The README's table of questions beyond the lesson names every such claim, with the verdict the catalogue
    expects on the embedded model: a verdict changed in the catalogue fails here until the README says it too."""
    import re

    from sampler_claims import registry

    text = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| .* \| (confirmed|refuted|inconclusive) \|$", text, flags=re.M))
    beyond = {cid: c.expects("tiny") for cid, c in registry.CLAIMS.items() if c.exercise == "Beyond the lesson"}
    assert rows == beyond
