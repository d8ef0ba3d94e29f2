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
from sampler_claims import errata, provenance, registry
from sampler_claims.results import Results
from sampler_claims.report import write_report


def _groups(text: str) -> dict[str, str]:
    """The page's "## " sections by heading (without the count)."""
    out = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        out[re.sub(r" \(\d+\)$", "", heading)] = body
    return out


def _entries(body: str) -> list[str]:
    return re.findall(r"^### `([^`]+)`", body, re.M)


def _listed(body: str) -> list[str]:
    return re.findall(r"^- `([^`]+)`", body, re.M)


def check_errata(md: Path, claims_json: Path) -> None:
    """errata.md against claims.json, as a reader would check it."""
    text, data = md.read_text(), json.loads(claims_json.read_text())
    env = data["environment"]
    head = text.split("\n## ")[0]
    for what in (provenance.model(env).name, provenance.model(env).what, provenance.device(env), env["diffusers"]):
        assert str(what) in head, f"the page does not say it holds for {what}"
    groups = _groups(text)
    model_heading = f"Refuted on {provenance.model(env).name}"
    assert list(groups)[:4] == [errata.API_HEADING, model_heading, errata.UNSETTLED_HEADING, errata.BEYOND_HEADING]
    claims = data["claims"]
    lesson = [c for c in claims if c["exercise"] != errata.BEYOND]
    beyond = [c for c in claims if c["exercise"] == errata.BEYOND]
    refuted = [c for c in lesson if c["verdict"] == "refuted"]
    assert _entries(groups[errata.API_HEADING]) == [c["id"] for c in refuted if c["scope"] == "diffusers"]
    assert _entries(groups[model_heading]) == [c["id"] for c in refuted if c["scope"] == "model"]
    assert _listed(groups[errata.UNSETTLED_HEADING]) == [c["id"] for c in lesson if c["verdict"] == "inconclusive"]
    assert _entries(groups[errata.BEYOND_HEADING]) == [c["id"] for c in beyond if c["verdict"] == "refuted"]
    assert _listed(groups[errata.BEYOND_HEADING]) == [c["id"] for c in beyond if c["verdict"] == "inconclusive"]
    blocks = {b.split("`", 1)[0]: b for b in re.split(r"^### `", text, flags=re.M)[1:]}
    for c in (c for c in claims if c["verdict"] == "refuted"):
        block = blocks[c["id"]]
        assert " ".join(errata.pasteable(c["corrected"], env).split()) in block, f"{c['id']}: corrected sentence"
        assert errata.pasteable(errata.measured(c), env) in block, f"{c['id']}: measured figure"
        assert " ".join(c["lesson"].split()) in block
    for c in (c for c in claims if c["verdict"] == "inconclusive"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"- `{c['id']}`"))
        assert "Would settle it:" in line and errata.pasteable(errata.measured(c), env) in line
        if c["seeds_needed"]:
            assert f"{c['seeds_needed']}" in line
    not_measured = [c["id"] for c in claims if c["verdict"] not in ("confirmed", "refuted", "inconclusive")]
    if not_measured:
        body = groups[errata.NOT_RUN_HEADING]
        assert re.findall(r"`([^`]+)`", body.split("\n\nRun ")[0]) == not_measured
    check_pasteable(text)


def check_pasteable(text: str) -> None:
    """No line of the page needs the run beside it to be read: no local path, no "on this model"."""
    for line in text.splitlines():
        assert not errata.RUN_RELATIVE.search(line), f"run-relative words: {line}"
        assert not re.search(r"(^|[\s(`])(/|~/|[A-Za-z]:\\)[\w.-]+/", line), f"a local path: {line}"


def test_errata_md_matches_claims_json(tmp_path: Path) -> None:
    paths = write_report(sample_results(), tmp_path / "index.html")
    md = tmp_path / "errata.md"
    assert md in paths and md.is_file()
    check_errata(md, tmp_path / "claims.json")
    data = json.loads((tmp_path / "claims.json").read_text())
    assert data["report"]["errata"] == "errata.md"
    verdicts = {(c["verdict"], c["scope"], c["exercise"] == errata.BEYOND) for c in data["claims"]}
    assert {("refuted", "diffusers", False), ("refuted", "model", False), ("refuted", "model", True),
            ("inconclusive", "model", True)} <= verdicts, "the sample fills every group"
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


def test_no_line_holds_a_local_path_or_this_model(tmp_path: Path) -> None:
    """The model is described, never named by the folder it was loaded from, and the registry's sentences that say
    "on this model" or "on this setup" name the model, library version and device instead."""
    write_report(sample_results(), tmp_path / "index.html")
    text = (tmp_path / "errata.md").read_text()
    check_pasteable(text)
    assert "/home/someone" not in text and "tiny-shapes" not in text
    assert "the embedded tiny model" in text and "coloured shapes" in text
    html = (tmp_path / "index.html").read_text()
    assert "/home/someone" not in html, "the report shows no local path either"


def test_every_corrected_sentence_reads_without_the_run() -> None:
    env = {"model": "sd15", "device": "cuda", "gpu": "NVIDIA H200", "dtype": "float16", "diffusers": "0.42.1"}
    for c in registry.CLAIMS.values():
        text = errata.pasteable(c.corrected, env)
        assert not errata.RUN_RELATIVE.search(text), (c.id, text)
    setup = errata.pasteable("It differed on this setup.", env)
    assert setup == "It differed on Stable Diffusion 1.5 with diffusers 0.42.1 on NVIDIA H200 (float16)."


def test_a_partial_run_names_the_claims_it_did_not_run() -> None:
    results = Results()
    for cid, verdict in (("ddim-deterministic", "confirmed"), ("ddim-eta", "confirmed")):
        results.records[cid].verdict = verdict
        results.add_outcome(cid, f"claims/test_x.py::test_{cid}", "passed")
    results.environment = {"model": "tiny", "device": "cpu", "diffusers": "0.42.1"}
    page = errata.build(results.to_json())
    text = page.markdown()
    others = [cid for cid in registry.CLAIMS if cid not in ("ddim-deterministic", "ddim-eta")]
    assert f"This run measured 2 of the {len(registry.CLAIMS)} claims" in text
    body = _groups(text)[errata.NOT_RUN_HEADING]
    assert re.findall(r"`([^`]+)`", body.split("\n\nRun ")[0]) == others
    assert "Nothing the lesson says was refuted" not in text
    assert "None of the lesson's claims that this run measured was refuted on the embedded tiny model." in text


def test_in_plain_words_adds_to_the_measured_figure_or_is_left_out() -> None:
    exact = {"plain": "Does not hold: stock config: IndexError at t=1000.", "metrics": {}}
    assert errata.plain_words(exact, "stock config: IndexError at t=1000") == ""
    stat = {"plain": "Does not hold: score gap was +0.1 (95% interval +0.05 to +0.15), clearly not at least 0.2."}
    words = errata.plain_words(stat, "gap 0.1")
    assert words.startswith("Score gap was +0.1") and "Does not hold" not in words


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
    assert "`comparable-quality`" in _groups(text)[errata.UNSETTLED_HEADING] and "about 99 seeds" in text
    assert f"`--seeds {-(-99 // registry.DDPM_SEEDS.value)}`" in text
