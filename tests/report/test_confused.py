"""The report of a text classification run: per-class table and confusion matrix with the topic
names, and the most confused examples of the evaluated part with an excerpt of their text."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import tunelab
from tunelab.report import excerpt, most_confused, render_run, run_info
from tunelab.runs import Run

TOPICS = ["business", "entertainment", "tech"]  # the text_run fixture's classes (conftest)


def test_most_confused_ranks_the_surest_mistakes_first():
    rng = np.random.default_rng(1)
    score = rng.dirichlet(np.ones(4), size=60)
    score[:5] = score[5]  # ties on both probabilities: the index decides
    y = rng.integers(0, 4, size=60)
    index = rng.permutation(1000)[:60]
    texts = np.array([f"text   number\n{i}" for i in range(1000)], dtype=object)
    rows = most_confused(y, score, index, ["a", "b", "c", "d"], texts=texts)
    pred = score.argmax(1)
    expected = sorted(
        (i for i in range(60) if pred[i] != y[i]),
        key=lambda i: (-score[i, pred[i]], score[i, y[i]], index[i]),
    )[:10]
    assert [r.index for r in rows] == [int(index[i]) for i in expected]
    for r, i in zip(rows, expected, strict=True):
        assert (r.true, r.predicted) == ("abcd"[y[i]], "abcd"[pred[i]])
        assert r.p_predicted == pytest.approx(score[i, pred[i]]) and r.p_true < r.p_predicted
        assert r.excerpt == f"text number {index[i]}"
    assert most_confused(y, score, index, list("abcd"), limit=3)[0].excerpt is None
    assert most_confused(pred, score, index, list("abcd")) == []  # no mistake: no row


def test_an_excerpt_is_the_first_200_characters_on_one_line():
    assert excerpt("  a\n\n b\tc ") == "a b c"
    long = "word " * 100
    cut = excerpt(long)
    assert cut.endswith("…") and len(cut) <= 201 and cut[:-1] == long[:200].strip()


def test_a_text_report_names_the_topics_and_shows_the_confused_texts(text_run):
    info = run_info(text_run)
    topics = TOPICS
    assert info.class_names == topics and [c.label for c in info.per_class] == topics
    assert info.eval_split == "test" and info.confused and info.confused_note is None
    preds = Run(text_run).predictions()
    wrong = int((preds["test_score"].argmax(1) != preds["test_y"]).sum())
    assert len(info.confused) == min(10, wrong)
    files = sorted((Path(Run(text_run).spec.data.path)).glob("*/*.txt"))
    for row in info.confused:
        assert row.true != row.predicted and {row.true, row.predicted} <= set(topics)
        text = files[row.index].read_text(encoding="utf-8")
        assert files[row.index].parent.name == row.true
        assert row.excerpt == excerpt(text) and row.excerpt.endswith("…")
    ranks = [(-r.p_predicted, r.p_true) for r in info.confused]
    assert ranks == sorted(ranks)

    page = (text_run / "report.html").read_text(encoding="utf-8")  # written by `tunelab train`
    section = page.split('<section id="confused">')[1].split("</section>")[0]
    assert section.count("<tr>") == len(info.confused) + 1  # the header and one row each
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in section and "<b>" not in section
    confusion = page.split('data-figure="confusion"')[1].split("</figure>")[0]
    per_class = page.split('<section id="per-class">')[1].split("</section>")[0]
    for topic in topics:
        assert re.search(rf">\s*{topic}\s*<", confusion), topic  # the axes' tick labels
        assert f"<td>{topic}</td>" in per_class


def test_texts_that_changed_since_training_are_not_shown(text_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(text_run, run)
    data = tmp_path / "news"
    shutil.copytree(Run(text_run).spec.data.path, data)
    (data / "tech/000.txt").write_text("an edited text", encoding="utf-8")
    spec = yaml.safe_load((run / "spec.yaml").read_text(encoding="utf-8"))
    spec["data"]["path"] = str(data)
    (run / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    info = run_info(run)
    assert info.confused and all(r.excerpt is None for r in info.confused)
    assert "fingerprint no longer matches" in info.confused_note
    assert info.confused_note in render_run(info)


def test_a_table_run_lists_its_mistakes_by_sample_index_without_text(tmp_path):
    spec = {
        "name": "iris",
        "seed": 0,
        "data": {"source": "iris"},
        "model": {"name": "linear"},
        "train": {"epochs": 1, "optimizer": {"name": "sgd", "lr": 0.01}},
        "evaluate": {"ci": {"resamples": 0}},
    }
    info = run_info(tunelab.train(spec, out=tmp_path / "iris", quiet=True).path)
    assert info.confused and info.confused_note is None
    assert all(r.excerpt is None and r.true in info.class_names for r in info.confused)
    page = render_run(info)
    assert 'id="confused"' in page and "text (first characters)" not in page
