"""Leakage checks at split time: exact duplicates across train, validation and test parts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import tunelab
from tunelab.data import (
    Dataset,
    DuplicateReport,
    Splits,
    describe_duplicates,
    find_duplicates,
    load_dataset,
    make_splits,
)
from tunelab.errors import DataError
from tunelab.spec import BuiltinData, SplitSpec


def table(n: int = 120, *, groups: np.ndarray | None = None) -> Dataset:
    """A writable table whose rows are all different (3 classes)."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % 3
    return Dataset(
        X=X, y=y, task="classification", name="table", classes=["0", "1", "2"], groups=groups
    )


def rows(ds: Dataset, idx: np.ndarray) -> set[bytes]:
    return {ds.X[i].tobytes() for i in idx}


def pair(splits: Splits, part: str, other: str) -> dict:
    return next(p for p in splits.duplicates["pairs"] if (p["part"], p["other"]) == (part, other))


@pytest.fixture
def planted():
    """A table with 3 test samples copied from train and 2 val samples copied from train.

    The split depends on the labels and the seed only, so the planted data splits the same way.
    """
    ds = table()
    clean = make_splits(ds, SplitSpec(), seed=0)
    train, val, test = clean.folds[0].train, clean.folds[0].val, clean.test
    X = ds.X.copy()
    to_test = [(int(test[i]), int(train[i])) for i in (0, 2, 4)]  # (copy in test, its source)
    to_val = [(int(val[i]), int(train[10 + i])) for i in (1, 3)]
    for dst, src in to_test + to_val:
        X[dst] = X[src]
    return Dataset(X=X, y=ds.y, task=ds.task, name="planted", classes=ds.classes), to_test, to_val


def test_planted_duplicates_are_counted_with_their_indices(planted):
    ds, to_test, to_val = planted
    splits = make_splits(ds, SplitSpec(), seed=0)
    assert pair(splits, "test", "train") == {
        "part": "test",
        "other": "train",
        "count": 3,
        "examples": [list(p) for p in to_test],
    }
    assert pair(splits, "val", "train")["count"] == 2
    assert pair(splits, "val", "train")["examples"] == [list(p) for p in to_val]
    assert pair(splits, "test", "val")["count"] == 0
    assert splits.duplicates["total_cross"] == 5
    assert splits.duplicates["groups"] == 5 and splits.duplicates["duplicated"] == 10
    assert splits.duplicates["on_duplicates"] == "warn"
    # warn keeps every sample where it was
    assert len(splits.test) + len(splits.dev) == len(ds)


def test_find_duplicates_on_its_own(planted):
    ds, to_test, _ = planted
    splits = make_splits(ds, SplitSpec(), seed=0)
    report = find_duplicates(ds, {"train": splits.folds[0].train, "test": splits.test})
    assert isinstance(report, DuplicateReport)
    [only] = report.pairs
    assert (only.part, only.other, only.count) == ("test", "train", 3)
    assert only.examples == tuple(to_test)
    assert only.indices.tolist() == sorted(t for t, _ in to_test)
    assert report.total_cross == 3
    assert json.loads(json.dumps(report.to_json()))["pairs"][0]["count"] == 3


def test_error_names_the_count_and_examples(planted):
    ds, to_test, _ = planted
    with pytest.raises(DataError) as info:
        make_splits(ds, SplitSpec(on_duplicates="error"), seed=0)
    message = str(info.value)
    assert "3 test samples have an exact copy in train" in message
    assert f"{to_test[0][0]}~{to_test[0][1]}" in message
    assert "5 validation or test sample(s)" in message
    assert "split.on_duplicates: drop" in message


def test_error_passes_clean_data():
    splits = make_splits(table(), SplitSpec(on_duplicates="error"), seed=0)
    assert splits.duplicates["total_cross"] == 0


def test_drop_removes_the_copies_from_val_and_test(planted):
    ds, to_test, to_val = planted
    warned = make_splits(ds, SplitSpec(), seed=0)
    splits = make_splits(ds, SplitSpec(on_duplicates="drop"), seed=0)
    train, val = splits.folds[0].train, splits.folds[0].val
    assert splits.duplicates["dropped"] == {"val": 2, "test": 3}
    assert np.array_equal(train, warned.folds[0].train)
    assert np.array_equal(val, np.setdiff1d(warned.folds[0].val, [v for v, _ in to_val]))
    assert np.array_equal(splits.test, np.setdiff1d(warned.test, [t for t, _ in to_test]))
    # no evaluation part holds a copy of a sample it is compared with
    assert not rows(ds, train) & rows(ds, val)
    assert not rows(ds, np.concatenate([train, val])) & rows(ds, splits.test)
    assert "(dropped 2 from val, 3 from test)" in describe_duplicates(splits.duplicates)


def test_drop_in_cross_validation():
    ds = table(60)
    spec = SplitSpec(cv=3, test=0.25)
    clean = make_splits(ds, spec, seed=0)
    a, b = clean.folds[0].val[0], clean.folds[0].train[0]  # b is in another fold's val
    other = next(k for k, f in enumerate(clean.folds) if b in f.val)
    ds.X[clean.test[0]] = ds.X[clean.dev[5]]
    ds.X[a] = ds.X[b]
    splits = make_splits(ds, spec.model_copy(update={"on_duplicates": "drop"}), seed=0)
    assert splits.duplicates["dropped"] == {
        "test": 1,
        "fold 1 val": 1,
        "fold 2 val": int(other == 1),
        "fold 3 val": int(other == 2),
    }
    assert not rows(ds, splits.dev) & rows(ds, splits.test)
    for fold, before in zip(splits.folds, clean.folds, strict=True):
        assert np.array_equal(fold.train, before.train)
        assert not rows(ds, fold.train) & rows(ds, fold.val)


def test_iris_default_reports_the_real_count():
    ds = load_dataset(BuiltinData(source="iris"))
    splits = make_splits(ds, SplitSpec(), seed=0)  # default: warn
    record = splits.duplicates
    # independently: pandas finds the duplicate rows, sets of row tuples find the crossings
    df = pd.DataFrame(ds.X)
    dup = df[df.duplicated(keep=False)]
    assert record["groups"] == dup.groupby(list(df.columns)).ngroups
    assert record["duplicated"] == len(dup)
    train, val = splits.folds[0].train, splits.folds[0].val

    def crossing(part, other):
        seen = {tuple(r) for r in ds.X[other]}
        return sum(tuple(r) in seen for r in ds.X[part])

    assert pair(splits, "test", "train")["count"] == crossing(splits.test, train)
    assert pair(splits, "val", "train")["count"] == crossing(val, train)
    assert pair(splits, "test", "val")["count"] == crossing(splits.test, val)
    expected = crossing(val, train) + crossing(splits.test, train) + crossing(splits.test, val)
    assert record["total_cross"] == expected
    assert record["groups"] >= 1  # iris has at least one exact duplicate row (101 and 142)
    assert record["conflicts"] == 0
    assert len(splits.test) + len(splits.dev) == len(ds)


def test_group_cv_keeps_groups_whole():
    # 20 groups of 6: every group repeats its own 2 rows three times (a subject seen 3 times)
    n_groups = 20
    groups = np.repeat(np.arange(n_groups), 6)
    ds = table(len(groups), groups=groups)
    ds.X[:] = ds.X[np.repeat(np.arange(0, len(groups), 3), 3)]
    splits = make_splits(ds, SplitSpec(test=0.2, cv={"kind": "group", "folds": 4}), seed=0)
    assert splits.kind == "group" and len(splits.folds) == 4
    assert not set(groups[splits.test]) & set(groups[splits.dev])
    for fold in splits.folds:
        assert not set(groups[fold.train]) & set(groups[fold.val])
    # the copies stay inside their group, so nothing crosses
    assert splits.duplicates["groups"] == 2 * n_groups
    assert splits.duplicates["total_cross"] == 0
    assert [p["part"] for p in splits.duplicates["pairs"]] == [
        "test",
        *(f"fold {k} val" for k in range(1, 5)),
    ]


def test_conflicting_duplicates_are_reported():
    ds = table(30)
    ds.X[7] = ds.X[5]
    ds.y[7] = (ds.y[5] + 1) % 3
    ds.X[9] = ds.X[8]
    ds.y[9] = ds.y[8]  # same label: a duplicate, not a conflict
    report = find_duplicates(ds, {"all": np.arange(30)})
    assert report.groups == 2 and report.conflicts == 1
    assert report.conflict_examples == ((5, 7),)
    assert "1 group of identical samples with different targets (e.g. 5~7)" in (
        describe_duplicates(report.to_json())
    )


def test_splits_json_holds_the_record(planted):
    ds, _, _ = planted
    splits = make_splits(ds, SplitSpec(), seed=0)
    data = json.loads(json.dumps(splits.to_json(ds)))
    assert data["duplicates"]["total_cross"] == 5
    assert Splits.from_json(data, ds).duplicates == data["duplicates"]
    del data["duplicates"]  # a splits.json written before the check
    assert Splits.from_json(data, ds).duplicates is None


def test_header_prints_one_leakage_line():
    record = {
        "pairs": [{"part": "test", "other": "train", "count": 3, "examples": [[12, 87], [1, 2]]}],
        "conflicts": 0,
        "on_duplicates": "warn",
    }
    assert describe_duplicates(record) == (
        "leakage check: 3 test samples have an exact copy in train (e.g. 12~87, 1~2); "
        "split.on_duplicates: warn"
    )
    assert describe_duplicates({**record, "pairs": [{**record["pairs"][0], "count": 0}]}) == ""


def test_preprocessing_is_fitted_on_the_training_part_alone(tmp_path):
    spec = {
        "data": "iris",
        "model": {"name": "linear"},
        "train": {"epochs": 1},
    }
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    splits = json.loads((run.path / "splits.json").read_text())
    assert splits["duplicates"]["on_duplicates"] == "warn"
    stats = json.loads((run.path / "preprocess.json").read_text())
    ds = load_dataset(BuiltinData(source="iris"))
    train = np.asarray(splits["folds"][0]["train"]["indices"])
    X = ds.X[train].astype(np.float64)
    assert stats["kind"] == "features"
    np.testing.assert_allclose(stats["mean"], X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["std"], X.std(axis=0), rtol=1e-6)
    # and not the whole data set's
    assert not np.allclose(stats["mean"], ds.X.astype(np.float64).mean(axis=0), rtol=1e-6)
