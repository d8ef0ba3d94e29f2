"""The errata page agrees with claims.json: one entry per refuted claim with its corrected sentence and measured
figure, the inconclusive claims listed as not settled with what would settle them, and the model, device and
diffusers version it holds for. The refuted set is read from the verdicts, so a new model changes the page."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from report_fixtures import sample_results
from sampler_claims import errata, registry
from sampler_claims.report import write_report


def _sections(text: str) -> tuple[str, str]:
    head, rest = text.split(f"## {errata.REFUTED_HEADING}", 1)
    refuted, unsettled = rest.split(f"## {errata.UNSETTLED_HEADING}", 1)
    return refuted, unsettled


def check_errata(md: Path, claims_json: Path) -> None:
    """errata.md against claims.json, as a reader would check it."""
    text, data = md.read_text(), json.loads(claims_json.read_text())
    env = data["environment"]
    for what in (env["model"], env["device"], env["diffusers"]):
        assert str(what) in text.split("\n## ")[0], f"the page does not say it holds for {what}"
    refuted_md, unsettled_md = _sections(text)
    refuted = [c for c in data["claims"] if c["verdict"] == "refuted"]
    inconclusive = [c for c in data["claims"] if c["verdict"] == "inconclusive"]
    entries = re.findall(r"^### `([^`]+)`", refuted_md, re.M)
    assert entries == [c["id"] for c in refuted], "one entry per refuted claim, in registry order"
    blocks = re.split(r"^### ", refuted_md, flags=re.M)[1:]
    for c, block in zip(refuted, blocks):
        assert c["corrected"] and " ".join(c["corrected"].split()) in block, f"{c['id']}: corrected sentence"
        assert errata.measured(c) in block, f"{c['id']}: measured figure"
        assert " ".join(c["lesson"].split()) in block
    listed = re.findall(r"^- `([^`]+)`", unsettled_md, re.M)
    assert listed == [c["id"] for c in inconclusive]
    for c in inconclusive:
        line = next(ln for ln in unsettled_md.splitlines() if ln.startswith(f"- `{c['id']}`"))
        assert "Would settle it:" in line and errata.measured(c) in line
        if c["seeds_needed"]:
            assert f"{c['seeds_needed']}" in line


def test_errata_md_matches_claims_json(tmp_path: Path) -> None:
    paths = write_report(sample_results(), tmp_path / "index.html")
    md = tmp_path / "errata.md"
    assert md in paths and md.is_file()
    check_errata(md, tmp_path / "claims.json")
    data = json.loads((tmp_path / "claims.json").read_text())
    assert data["report"]["errata"] == "errata.md"
    assert any(c["verdict"] == "refuted" for c in data["claims"]), "the sample has refuted claims to list"
    html = (tmp_path / "index.html").read_text()
    assert 'id="errata"' in html and 'href="errata.md"' in html


def test_the_refuted_set_comes_from_the_verdicts(tmp_path: Path) -> None:
    """Flip a verdict and the page follows: nothing lists the refuted claims by hand."""
    results = sample_results()
    rec = next(r for r in results.records.values() if r.verdict == "confirmed")
    rec.verdict, rec.reason = "refuted", "measured otherwise"
    write_report(results, tmp_path / "index.html")
    check_errata(tmp_path / "errata.md", tmp_path / "claims.json")
    assert f"### `{rec.claim.id}`" in (tmp_path / "errata.md").read_text()


def test_every_claim_has_a_corrected_sentence() -> None:
    """Any claim may be refuted on some model, so every registry entry carries what to write instead."""
    missing = [c.id for c in registry.CLAIMS.values() if len(c.corrected.split()) < 5]
    assert not missing, f"add corrected= (a sentence to write instead) to these registry entries: {missing}"


def test_settle_names_the_option_that_settles_it() -> None:
    base: dict[str, Any] = {"reason": "straddles", "metrics": {}}
    assert "`--seeds 120`" in errata.settle({**base, "kind": "statistical", "seeds_needed": 120})
    assert "`--timing-rounds 9`" in errata.settle({**base, "kind": "timing", "seeds_needed": 9})
    assert errata.settle({**base, "kind": "statistical", "seeds_needed": None}) == "straddles"


CLAIMS_MODULE = '''
import pytest
from sampler_claims.verdict import Verdict, exact

@pytest.mark.claim("clone-needed")
def test_refuted(claim):
    claim.key("10 distinct storages of 10 entries")
    claim.decide(exact(False, "the pipeline rebinds latents"))

@pytest.mark.claim("comparable-quality")
def test_inconclusive(claim):
    claim.key("gap 0.05")
    claim.decide(Verdict("inconclusive", "straddles the margin", seeds_needed=99))
'''


def test_a_claims_run_writes_the_errata_beside_the_report(pytester: pytest.Pytester, dummy_folder) -> None:
    pytester.makepyfile(test_claims=CLAIMS_MODULE)
    report = pytester.path / "out" / "index.html"
    pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder),
                                  "--claims-report", str(report))
    md = report.parent / "errata.md"
    check_errata(md, report.parent / "claims.json")
    text = md.read_text()
    assert "### `clone-needed`" in text and "10 distinct storages of 10 entries" in text
    # comparable-quality runs on DDPM_SEEDS x --seeds: 99 seeds come from --seeds 50 at a factor of 2
    assert "`comparable-quality`" in _sections(text)[1] and "about 99 seeds" in text
    assert f"`--seeds {-(-99 // registry.DDPM_SEEDS.value)}`" in text
