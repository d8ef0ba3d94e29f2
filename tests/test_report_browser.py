"""The report opened in a real headless Chromium: no console errors, every image decodes, every claim shows.

CI installs Debian's chromium and chromium-driver; elsewhere the test skips and says how to get them.
"""
from __future__ import annotations

import shutil

import pytest

from report_fixtures import sample_results
from sampler_claims import registry
from sampler_claims.report import write_report

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
                 "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"):
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
