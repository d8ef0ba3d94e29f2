"""The report opened in a real headless Chromium: no console errors, every image decodes, every claim shows.

CI installs Debian's chromium and chromium-driver; elsewhere the test skips and says how to get them.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from report_fixtures import sample_results
from sampler_claims import registry
from sampler_claims.report import write_report
from sampler_claims.results import Results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium not found: apt-get install chromium chromium-driver (CI installs them)",
)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[test]' brings selenium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(browser, tmp_path) -> None:
    html_path, *_ = write_report(sample_results(), tmp_path / "index.html")
    browser.get(html_path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);")
    assert images, "the page has no images"
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert not broken, f"images that did not decode: {broken}"
    ids = set(browser.execute_script("return Array.from(document.querySelectorAll('section.claim')).map(s => s.id);"))
    assert set(registry.CLAIMS) <= ids
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_the_table_of_contents_anchors_resolve(browser, tmp_path) -> None:
    """Every link of the table of contents, and every other in-page link, lands on an element of the page."""
    html_path, *_ = write_report(sample_results(), tmp_path / "index.html")
    browser.get(html_path.as_uri())
    toc = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav#toc a')).map(a => a.getAttribute('href'));")
    assert {"#errata", "#errata-api", "#errata-model", "#errata-unsettled", "#errata-beyond", "#claims", "#run",
            "#environment"} <= set(toc)
    assert {f"#{cid}" for cid in registry.CLAIMS} <= set(toc), "every claim is in the table of contents"
    missing = browser.execute_script(
        "return Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href'))"
        ".filter(h => !document.getElementById(decodeURIComponent(h.slice(1))));")
    assert not missing, f"links to nowhere: {missing}"
    # The first screen shows where the numbers come from, the counts and the start of the errata.
    first_screen = browser.execute_script(
        "const e = document.getElementById('errata'); return [e.getBoundingClientRect().top, window.innerHeight,"
        " document.querySelector('.facts').innerText];")
    assert first_screen[0] < first_screen[1], "the errata starts below the first screen"
    assert "embedded tiny model" in first_screen[2] and "0.42.1" in first_screen[2]


def test_a_grid_keeps_one_seed_per_row(browser, tmp_path) -> None:
    """An interpolation strip of 13 frames stays one row at 1400 px, and two seeds' rows never mix."""
    results = Results()
    rec = results.recorder("zt-interpolation")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(13)]
    rec.images("strip", frames, [f"t={k}" for k in range(13)], per_row=13)
    rec.images("two seeds", frames[:6], [f"{s}, seed {n}" for n in (1, 2) for s in ("DDPM", "DDIM", "DPM")])
    results.add_outcome("zt-interpolation", "claims/test_x.py::test_strip", "passed")
    html_path, *_ = write_report(results, tmp_path / "index.html")
    browser.get(html_path.as_uri())
    tops = browser.execute_script(
        "return Array.from(document.querySelectorAll('#zt-interpolation .grid')).map("
        "g => Array.from(g.querySelectorAll('img')).map(i => Math.round(i.getBoundingClientRect().top)));")
    strip, seeds = tops
    assert len(set(strip)) == 1, f"the strip broke into rows: {strip}"
    assert len(set(seeds[:3])) == 1 and len(set(seeds[3:])) == 1 and seeds[0] != seeds[3], seeds
