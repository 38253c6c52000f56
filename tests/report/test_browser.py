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


CONFUSED = """
const rows = Array.from(document.querySelectorAll("#confused tbody tr"));
return {rows: rows.map(r => Array.from(r.cells).map(c => c.textContent)),
        markup: document.querySelectorAll("#confused td b").length,
        toc: !!document.querySelector('nav.toc a[href="#confused"]')};
"""


# the boxes of the confusion matrix's class names along its predicted (x) axis
CLASS_TICKS = """
const figure = document.querySelector('figure[data-figure="confusion"]');
return Array.from(figure.querySelectorAll('g[id^="xtick"] text')).map(t => {
  const b = t.getBoundingClientRect();
  return {text: t.textContent.trim(), left: b.left, right: b.right, top: b.top,
          bottom: b.bottom};
});
"""


def test_text_run_report_shows_the_confused_texts_as_text(browser, text_run, tmp_path, sections):
    from tunelab.report import run_info

    probe = open_report(browser, text_run / "report.html", sections["run"])
    check_drawn(probe, sections["run"], RUN_FIGURES)
    shown = browser.execute_script(CONFUSED)
    rows = run_info(text_run).confused
    assert shown["toc"] and shown["markup"] == 0 and len(shown["rows"]) == len(rows) > 0
    for cells, row in zip(shown["rows"], rows, strict=True):
        assert cells[1:3] == [row.true, row.predicted] and cells[-1] == row.excerpt
        assert "<b>Tom & Jerry</b>" in cells[-1]  # the text's markup, shown as text
    # the class names under the confusion matrix do not run into each other
    names = browser.execute_script(CLASS_TICKS)
    assert [n["text"] for n in names] == run_info(text_run).class_names
    touching = [
        (a["text"], b["text"]) for a, b in zip(names, names[1:], strict=False) if _overlap(a, b)
    ]
    assert touching == [], touching
    full_page_png(browser, _screenshot_dir(tmp_path) / "text-run-report.png")


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


# --- the study page at 1400 px: a table with a column per hyperparameter, log-scale ticks

LR = "train.optimizer.lr"
# where the page runs wider than its window, and the All-trials table's edges
OVERFLOW = """
const width = document.documentElement.clientWidth;
const table = document.querySelector("#trials table").getBoundingClientRect();
const files = document.querySelector("#trials thead th:last-child");
return {width: width, page: document.documentElement.scrollWidth,
        table: [table.left, table.right], files: [files.textContent.trim(),
                files.getBoundingClientRect().right],
        scrolled: Array.from(document.querySelectorAll(".scroll"))
          .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.parentElement.id),
        outside: Array.from(document.querySelectorAll("main *"))
          .filter(e => e.getBoundingClientRect().right > width + 0.5)
          .map(e => e.tagName + " in #" + (e.closest("section") || {}).id).slice(0, 10)};
"""
# the boxes of one parameter's tick labels in a figure, and of every other text in it: the
# axis labelled with the parameter (slice plot), else the vertical axis standing where the
# parameter's name is ticked (parallel coordinates)
TICKS = """
const [name, param] = arguments;
const figure = document.querySelector(`figure[data-figure="${name}"]`);
const box = e => { const b = e.getBoundingClientRect();
  return {text: e.textContent.replace(/\\s+/g, ""), left: b.left, right: b.right,
          top: b.top, bottom: b.bottom}; };
const labels = ticks => ticks.map(t => t.querySelector("text"))
  .filter(t => t && t.textContent.trim());
const axes = Array.from(figure.querySelectorAll('g[id^="matplotlib.axis"]'));
const ticksOf = (g, kind) => Array.from(g.querySelectorAll(`:scope > g[id^="${kind}"]`));
let mine = null, next = null;
for (const g of axes) {
  const own = Array.from(g.querySelectorAll(':scope > g[id^="text"] text'))
    .map(t => t.textContent.trim());
  if (own.includes(param)) mine = labels(ticksOf(g, "xtick").concat(ticksOf(g, "ytick")));
}
if (mine === null) {
  const tick = axes.flatMap(g => ticksOf(g, "xtick"))
    .find(t => (t.querySelector("text") || {}).textContent === param);
  const mark = tick.querySelector("use").getBoundingClientRect();
  const x = mark.left + mark.width / 2;
  const marks = axes.flatMap(g => ticksOf(g, "ytick")).filter(t => t.querySelector("use"))
    .map(t => { const b = t.querySelector("use").getBoundingClientRect();
                return [t, b.left + b.width / 2]; });
  mine = labels(marks.filter(([t, at]) => Math.abs(at - x) < 4).map(([t, at]) => t));
  // the next axis to the right: a label must end before it
  const right = marks.map(([t, at]) => at).filter(at => at > x + 4);
  next = right.length ? Math.min(...right) : null;
}
const others = Array.from(figure.querySelectorAll("text")).filter(t => !mine.includes(t));
return {ticks: mine.map(box), others: others.map(box), next: next};
"""


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


@pytest.fixture(scope="module")
def wide_study(tmp_path_factory, make_study_spec) -> Path:
    """A study of seven hyperparameters with long dotted names in a long-named folder, its
    learning rate drawn on a log scale inside one decade (where matplotlib labels 2×10⁻³,
    3×10⁻³, ... by default)."""
    spec = make_study_spec(8, epochs=2)
    spec["name"] = "wide_study"
    spec["tune"]["pruner"] = "none"
    spec["tune"]["space"] = {
        LR: {"low": 1.1e-3, "high": 9e-3, "log": True},
        "train.optimizer.weight_decay": {"low": 1e-7, "high": 1e-2, "log": True},
        "model.hidden": [[4], [16], [64, 32]],
        "model.dropout": {"low": 0.0, "high": 0.5},
        "train.optimizer.name": ["sgd", "adam", "rmsprop"],
        "train.optimizer.momentum": {
            "low": 0.5, "high": 0.99, "when": {"train.optimizer.name": ["sgd", "rmsprop"]}
        },
        "train.batch_size": [8, 16, 32],
    }  # fmt: skip
    # a long folder name without a break: the paths on the page must wrap, not run over
    out = tmp_path_factory.mktemp("wide") / ("study" + "_in_a_folder_with_a_long_name" * 4)
    return tunelab.tune_study(spec, out=out, quiet=True).path


@pytest.fixture
def at_1400(browser):
    browser.set_window_size(1400, 1000)
    yield browser
    browser.set_window_size(1300, 1000)


def test_a_study_page_of_seven_hyperparameters_fits_1400_px(at_1400, wide_study, tmp_path):
    page = write_report(wide_study, tmp_path / "wide.html")
    open_report(at_1400, page, ["trials"])
    seen = at_1400.execute_script(OVERFLOW)
    full_page_png(at_1400, _screenshot_dir(tmp_path) / "wide-study-report.png")
    assert seen["width"] >= 1380, seen["width"]  # the window is 1400 px (less a scroll bar)
    assert seen["table"][1] - seen["table"][0] <= seen["width"], seen["table"]
    assert seen["files"][0].startswith("files"), seen["files"]
    assert seen["files"][1] <= seen["width"], seen  # the last column, in sight unscrolled
    assert seen["scrolled"] == [] and seen["page"] <= seen["width"], seen
    assert seen["outside"] == [], seen["outside"]  # nothing else on the page runs over


@pytest.mark.parametrize("figure", ["slice", "parallel"])
def test_learning_rate_tick_labels_do_not_overlap(at_1400, wide_study, tmp_path, figure):
    page = write_report(wide_study, tmp_path / "wide.html")
    open_report(at_1400, page, ["trials"])
    seen = at_1400.execute_script(TICKS, figure, LR)
    ticks = seen["ticks"]
    assert len(ticks) >= 2, ticks  # the axis is labelled at two values at least
    print(figure, "learning-rate ticks:", [t["text"] for t in ticks])
    touching = [
        (a["text"], b["text"])
        for i, a in enumerate(ticks)
        for b in ticks[i + 1 :]
        if _overlap(a, b)
    ]
    assert touching == [], touching
    crossed = [(a["text"], b["text"]) for a in ticks for b in seen["others"] if _overlap(a, b)]
    assert crossed == [], crossed  # nor run into the figure's other labels
    if seen["next"] is not None:  # parallel coordinates: nor into the next axis's line
        across = [t["text"] for t in ticks if t["right"] > seen["next"]]
        assert across == [], (across, seen["next"])
