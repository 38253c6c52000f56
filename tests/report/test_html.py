"""The HTML report of real runs and a real study: content, numbers, links, self-containment."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import markupsafe
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from tunelab.cli import main
from tunelab.report import run_info, study_info, write_report
from tunelab.runs import Run

pytestmark = pytest.mark.slow


class _Page(HTMLParser):
    """Ids, figure names, links and resource references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.figures: list[str] = []
        self.links: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "figure":
            self.figures.append(a.get("data-figure"))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        for key in ("src", "href", "xlink:href"):
            if tag != "a" and a.get(key):
                self.sources.append(a[key])


@pytest.fixture(scope="module")
def written(report_folders, tmp_path_factory) -> dict[str, Path]:
    """Each report written once: the runs' and the study's, in and out of the study folder."""
    where = tmp_path_factory.mktemp("html")
    pages = {k: write_report(report_folders[k], where / f"{k}.html") for k in ("run", "cv")}
    pages["regression"] = write_report(report_folders["regression"], where / "regression.html")
    pages["study"] = write_report(report_folders["study"])  # the default place
    pages["study elsewhere"] = write_report(report_folders["study"], where / "study.html")
    return pages


def parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def embedded(text: str) -> dict:
    raw = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    return json.loads(raw.group(1).replace("<\\/", "</"))


def assert_self_contained(text: str, page: _Page) -> None:
    # nothing is fetched: no external script, style, image or font (inline SVG, data: images)
    external = [s for s in page.sources if not s.startswith(("#", "data:"))]
    assert external == [], external
    assert "@import" not in text and not re.search(r"url\((?!#)", text)


def test_run_report_has_every_section_and_figure(report_folders, written, sections):
    text, page = parse(written["run"])
    assert set(sections["run"]) <= page.ids
    assert set(page.figures) == {"curves", "confusion", "roc", "pr", "reliability"}
    assert_self_contained(text, page)
    # every figure is a drawn SVG, not an empty frame
    for svg in re.findall(r"<figure[^>]*>(.*?)</figure>", text, re.S):
        assert svg.lstrip().startswith("<svg") and svg.count("<path") > 5
    # the diagnosis section shows the run's own verdict
    verdict = json.loads((report_folders["run"] / "diagnosis.json").read_text())["verdict"]
    assert f'<div class="verdict">{markupsafe.escape(verdict)}</div>' in text


def test_run_report_numbers_are_the_runs_numbers(report_folders, written):
    run = Run(report_folders["run"])
    text, _ = parse(written["run"])
    data = embedded(text)
    metrics = {(m["split"], m["metric"]): m for m in data["metrics"]}
    test_acc = run.metrics["test"]["accuracy"]
    assert metrics["test", "accuracy"]["value"] == test_acc["value"]
    assert metrics["test", "accuracy"]["low"] == test_acc["ci"]["low"]
    assert f"[{test_acc['ci']['low']:.4f}, {test_acc['ci']['high']:.4f}]" in text
    # confusion matrix and per-class table against scikit-learn on the saved test predictions
    preds = run.predictions()
    y, pred = preds["test_y"], preds["test_score"].argmax(axis=1)
    assert data["confusion"] == confusion_matrix(y, pred, labels=range(10)).tolist()
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(10), zero_division=0)
    got = data["per_class"]
    np.testing.assert_allclose([c["precision"] for c in got], p)
    np.testing.assert_allclose([c["recall"] for c in got], r)
    np.testing.assert_allclose([c["f1"] for c in got], f)
    assert [c["support"] for c in got] == s.tolist()
    # the split summary: sizes, class balance and fingerprints from splits.json
    splits = run.splits
    test_part = next(p for p in data["parts"] if p["name"].startswith("test"))
    assert test_part["size"] == splits["test"]["size"]
    assert test_part["fingerprint"] == splits["test"]["fingerprint"]
    assert sum(test_part["classes"].values()) == splits["test"]["size"]
    # per-epoch curves come from history.jsonl
    assert [r["val_loss"] for r in data["history"][""]] == [r["val_loss"] for r in run.history]


def test_cross_validated_run_draws_every_fold_and_the_refit(report_folders, written):
    info = run_info(report_folders["cv"])
    assert list(info.history) == ["fold 1", "fold 2", "fold 3", "refit"]
    assert len(info.folds["folds"]) == 3
    text, page = parse(written["cv"])
    assert "folds" in page.ids
    assert "each fold" in text  # the legend of the faint per-fold lines


def test_regression_run_shows_predictions_not_classes(written):
    text, page = parse(written["regression"])
    assert "residuals" in page.ids and "confusion" not in page.ids
    assert set(page.figures) == {"curves", "residuals"}
    assert "rmse" in text


def test_study_report_has_every_section_and_figure(report_folders, written, sections):
    text, page = parse(written["study elsewhere"])
    figures = ["fig-history", "fig-intermediate", "fig-parallel", "fig-importance", "fig-slice"]
    assert set(sections["study"] + figures) <= page.ids
    assert {"history", "intermediate", "parallel", "importance", "slice", "timeline"} <= set(
        page.figures
    )
    assert_self_contained(text, page)
    info = study_info(report_folders["study"])
    assert info.counts["PRUNED"] >= 1 and info.counts["COMPLETE"] >= 3
    # pruned trials are marked where they stopped (crosses in the intermediate-values figure)
    intermediate = re.search(r'data-figure="intermediate">(.*?)</figure>', text, re.S).group(1)
    assert "pruned" in intermediate
    # the sealed test: evaluated once, and the report says so
    assert "has been evaluated\n<b>1</b> time(s): once, after tuning, as it should be." in text
    # every trial is in the table with an anchor
    assert {f"trial-{t.number}" for t in info.trials} <= page.ids


@pytest.mark.parametrize("where", ["study", "study elsewhere"])
def test_study_report_links_reach_each_trials_files(written, where):
    out = written[where]
    _, page = parse(out)
    files = [link for link in page.links if "trials/" in link]
    assert len(files) >= 12  # at least trial.json of each trial
    for link in files:
        assert (out.parent / unquote(link)).resolve().is_file(), link
    for link in page.links:
        if link.startswith("#"):
            assert link[1:] in page.ids, link


def test_the_cli_writes_a_report(report_folders, cli, tmp_path):
    done = cli("report", str(report_folders["run"]), "-o", str(tmp_path / "mine.html"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine.html").stat().st_size > 10_000
    assert f"report: {tmp_path / 'mine.html'}" in done.stdout


def test_train_writes_its_report_at_the_end(cli, tmp_path, root):
    done = cli(
        "train", str(root / "examples" / "linear_gd.yaml"), "--out", "r", "-s", "train.epochs=5"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "report.html").is_file()
    assert "report: r/report.html" in done.stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing", "does not exist"),
        (lambda p: p, "neither a run (no spec.yaml) nor a study (no study.json)"),
    ],
)
def test_a_folder_that_is_neither_run_nor_study_is_named(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as done:
        main(["report", str(make(tmp_path))])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unfinished_run_gets_a_report_that_says_so(report_folders, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("spec.yaml", "env.json", "splits.json", "history.jsonl"):
        (partial / name).write_bytes((report_folders["run"] / name).read_bytes())
    text, page = parse(write_report(partial))
    assert "No final metrics yet" in text
    assert page.figures == ["curves"] and {"curves", "splits", "spec"} <= page.ids
