"""The reports open in a real headless Chromium: no console error, no network request, every
section and figure present and drawn (the load time printed), and a PNG screenshot to look at.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`; `.ci/run`
installs them when missing). Without them these tests are skipped, unless
``TUNELAB_REQUIRE_BROWSER=1`` (set by ``.ci/run``) or ``CI=true`` turns the skip into a failure. Screenshots go to
``TUNELAB_SCREENSHOTS`` when it names a folder, else to the test's temporary folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

import pytest

import tunelab
from tunelab.report import write_report

pytestmark = pytest.mark.slow

RUN_FIGURES = ["curves", "confusion", "roc", "pr", "reliability"]
STUDY_FIGURES = ["history", "intermediate", "parallel", "importance", "slice", "timeline"]

PROBE = """
const ids = arguments[0];
const sections = Object.fromEntries(ids.map(id => [id, !!document.getElementById(id)]));
const figures = Array.from(document.querySelectorAll("figure[data-figure]")).map(f => {
  const svg = f.querySelector("svg");
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = svg ? svg.querySelectorAll("path, line, rect, polyline, polygon, image, use,
    circle").length : 0;
  return {name: f.dataset.figure, width: box.width, height: box.height, marks: marks};
});
const nav = performance.getEntriesByType("navigation")[0];
const paints = Object.fromEntries(performance.getEntriesByType("paint")
  .map(p => [p.name, p.startTime]));
return {sections: sections, figures: figures, load: nav.loadEventEnd,
        paint: paints["first-contentful-paint"] || null,
        data: JSON.parse(document.getElementById("report-data").textContent) !== null};
""".replace("\n    circle", " circle")


def _browser_paths() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def browser(unavailable):
    paths = _browser_paths()
    if paths is None:
        unavailable(
            "Chromium or chromedriver is missing: apt-get install chromium chromium-driver",
            variable="TUNELAB_REQUIRE_BROWSER",
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    # no network at all: a page that needed one would show it as errors and missing figures
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    yield driver
    driver.quit()


def _screenshot_dir(tmp_path: Path) -> Path:
    folder = os.environ.get("TUNELAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_report(driver, page: Path, ids: list[str]) -> dict:
    driver.get_log("browser")  # empty the logs of earlier pages
    driver.get_log("performance")
    driver.get(page.resolve().as_uri())
    end = time.time() + 30
    while driver.execute_script("return document.readyState") != "complete":
        assert time.time() < end, "the page did not finish loading"
        time.sleep(0.05)
    probe = driver.execute_script(PROBE, ids)
    console = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert console == [], console
    requests = [
        json.loads(e["message"])["message"]["params"].get("request", {}).get("url", "")
        for e in driver.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == [], requests
    return probe


def full_page_png(driver, path: Path) -> Path:
    size = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def check_drawn(probe: dict, ids: list[str], figures: list[str]) -> None:
    assert probe["sections"] == {i: True for i in ids}
    drawn = {f["name"]: f for f in probe["figures"]}
    assert set(figures) <= set(drawn), sorted(drawn)
    for f in drawn.values():
        assert f["width"] > 100 and f["height"] > 100 and f["marks"] > 5, f
    assert probe["data"]


def test_run_report_in_chromium(browser, report_folders, tmp_path, sections):
    RUN_SECTIONS = sections["run"]
    page = write_report(report_folders["run"], tmp_path / "run.html")
    probe = open_report(browser, page, RUN_SECTIONS)
    check_drawn(probe, RUN_SECTIONS, RUN_FIGURES)
    png = full_page_png(browser, _screenshot_dir(tmp_path) / "run-report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def test_study_report_in_chromium(browser, report_folders, tmp_path, sections):
    STUDY_SECTIONS = sections["study"]
    page = write_report(report_folders["study"], tmp_path / "study.html")
    probe = open_report(browser, page, STUDY_SECTIONS)
    check_drawn(probe, STUDY_SECTIONS, STUDY_FIGURES)
    # the sortable trials table works: a click on "trial" sorts the numbers descending/ascending
    header = browser.find_element("css selector", "#trials th")
    header.click()
    header.click()
    numbers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#trials tbody tr'))"
        ".map(r => parseInt(r.cells[0].dataset.v))"
    )
    assert numbers == sorted(numbers, reverse=True)
    png = full_page_png(browser, _screenshot_dir(tmp_path) / "study-report.png")
    assert png.stat().st_size > 50_000


def test_a_100_trial_study_report_is_small_and_loads(browser, tmp_path, make_study_spec, sections):
    STUDY_SECTIONS = sections["study"]
    result = tunelab.tune_study(make_study_spec(100, epochs=3), out=tmp_path / "big", quiet=True)
    assert sum(result.counts.values()) == 100
    started = time.perf_counter()
    page = write_report(result.path)
    written = time.perf_counter() - started
    size = page.stat().st_size
    assert size < 5_000_000, f"{size / 1e6:.1f} MB"
    probe = open_report(browser, page, STUDY_SECTIONS)
    check_drawn(probe, STUDY_SECTIONS, STUDY_FIGURES)
    assert probe["load"] > 0  # loaded; how fast is printed (-s), a shared machine is no timer
    print(
        f"100-trial report: {size / 1e6:.2f} MB, written in {written:.1f} s, "
        f"loaded in {probe['load']:.0f} ms, first paint {probe['paint']} ms"
    )
