"""Split edges that a mutation run found unguarded (scripts/mutation.py): parts of exactly the
smallest allowed size, the seeds that make splits reproducible, the drop path, and the messages."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import Dataset, Splits, fingerprint, make_splits
from tunelab.errors import DataError
from tunelab.spec import SplitSpec


def table(n: int, *, classes: int = 2, labels=None, groups=None, classes_named=True, image=False):
    X = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    if image:
        X = X.reshape(n, 1, 2, 2)
    y = np.asarray(labels if labels is not None else np.arange(n) % classes, np.int64)
    names = [f"c{c}" for c in range(int(y.max()) + 1)] if classes_named else None
    return Dataset(X=X, y=y, task="classification", name="t", classes=names, groups=groups)


def regression(n: int) -> Dataset:
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset(X=X, y=np.arange(n, dtype=np.float32), task="regression", name="r")


def split(ds, seed=0, **kw) -> Splits:
    return make_splits(ds, SplitSpec(**kw), seed=seed)


def folds_of(s: Splits) -> list[tuple[list[int], list[int]]]:
    return [(f.train.tolist(), f.val.tolist()) for f in s.folds]


# --- parts of exactly the smallest allowed size


def test_a_one_sample_test_part_is_allowed():
    s = split(table(10), test=0.1, stratify=False)
    assert len(s.test) == 1


def test_as_many_non_test_samples_as_folds_is_enough():
    s = split(table(10), test=0.5, stratify=False, cv={"kind": "kfold", "folds": 5})
    assert [len(f.val) for f in s.folds] == [1] * 5
    loo = split(table(4), test=0, cv={"kind": "loo"})
    assert len(loo.folds) == 4


def test_as_many_groups_as_folds_is_enough():
    groups = np.repeat(np.arange(3), 4)
    s = split(table(12, groups=groups), test=0, cv={"kind": "group", "folds": 3})
    assert len(s.folds) == 3
    for f in s.folds:
        assert not set(groups[f.val]) & set(groups[f.train])


def test_a_smallest_class_as_large_as_the_folds_is_enough():
    labels = [0] * 6 + [1] * 3
    s = split(table(9, labels=labels), test=0, cv={"kind": "stratified", "folds": 3})
    assert [int((table(9, labels=labels).y[f.val] == 1).sum()) for f in s.folds] == [1, 1, 1]


def test_a_class_absent_from_the_labels_does_not_stop_stratified_folds():
    labels = [0, 2] * 6  # class 1 has no sample
    s = split(table(12, labels=labels), test=0, cv={"kind": "stratified", "folds": 3})
    assert len(s.folds) == 3


@pytest.mark.parametrize("kind", ["stratified", "repeated"])
def test_a_class_with_one_sample_is_a_data_error_for_stratified_folds(kind):
    labels = [0] * 9 + [1]
    with pytest.raises(DataError, match="the smallest class in the non-test part has 1"):
        split(table(10, labels=labels), test=0, cv={"kind": kind, "folds": 2})


def test_a_stratified_holdout_names_the_smallest_class():
    # 5 classes of 2 and a test part of 2: no stratified split exists
    with pytest.raises(DataError, match=r"\(smallest class has 2 sample\(s\)\)"):
        split(table(10, classes=5), test=0.2)


def test_repeated_folds_of_classification_data_are_stratified():
    labels = [0] * 20 + [1] * 10
    s = split(table(30, labels=labels), test=0, cv={"kind": "repeated", "folds": 5, "repeats": 2})
    assert [int((np.asarray(labels)[f.val] == 1).sum()) for f in s.folds] == [2] * 10


# --- seeds: the same seed gives the same split, another seed another one


@pytest.mark.parametrize("data", ["classification", "regression"])
def test_repeated_folds_follow_the_seed(data):
    ds = table(30) if data == "classification" else regression(30)
    cv = {"kind": "repeated", "folds": 3, "repeats": 2}
    a, b, c = (split(ds, seed=s, test=0, cv=cv) for s in (1, 1, 2))
    assert len(a.folds) == 6
    assert folds_of(a) == folds_of(b)
    assert folds_of(a) != folds_of(c)


def test_a_grouped_test_part_follows_the_seed_and_the_fraction():
    groups = np.repeat(np.arange(20), 2)
    ds = table(40, groups=groups)
    cv = {"kind": "group", "folds": 2}
    a, b = (split(ds, seed=3, test=0.5, cv=cv) for _ in range(2))
    c = split(ds, seed=4, test=0.5, cv=cv)
    assert a.test.tolist() == b.test.tolist() != c.test.tolist()
    assert len(np.unique(groups[a.test])) == 10  # half of the groups, whole
    assert not set(groups[a.test]) & set(groups[a.dev])


def test_the_split_seed_is_recorded():
    assert split(table(20), seed=7, test=0.2, cv={"kind": "kfold", "folds": 2}).seed == 7
    assert split(table(20), seed=7, test=0.2).seed == 7


# --- the leakage check's edges


def test_without_a_test_part_no_test_pair_is_compared():
    for cv in (None, {"kind": "kfold", "folds": 2}):
        s = split(table(20), test=0, cv=cv, stratify=False)
        assert all(p["part"] != "test" for p in s.duplicates["pairs"])


def test_a_one_sample_test_part_is_checked_for_copies():
    clean = split(table(10), test=0.1, stratify=False)
    X = table(10).X.copy()
    X[clean.test[0]] = X[clean.folds[0].train[0]]
    ds = Dataset(X=X, y=table(10).y, task="classification", name="t", classes=["c0", "c1"])
    s = make_splits(ds, SplitSpec(test=0.1, stratify=False), seed=0)
    test_pairs = [p for p in s.duplicates["pairs"] if p["part"] == "test"]
    assert sum(p["count"] for p in test_pairs) == 1


def planted(n_val_copies: int, *, test: float = 0.0):
    """Holdout data whose first ``n_val_copies`` val samples are copies of train samples."""
    ds = table(20)
    spec = SplitSpec(test=test, val=0.25, stratify=False)
    clean = make_splits(ds, spec, seed=0)
    X = ds.X.copy()
    for i in range(n_val_copies):
        X[clean.folds[0].val[i]] = X[clean.folds[0].train[i]]
    return Dataset(X=X, y=ds.y, task=ds.task, name="p", classes=ds.classes), clean


def test_drop_may_leave_a_single_val_sample_and_keeps_the_split_facts():
    ds, clean = planted(4)
    one = make_splits(ds, SplitSpec(test=0, val=0.25, stratify=False, on_duplicates="drop"), seed=0)
    assert len(clean.folds[0].val) == 5 and len(one.folds[0].val) == 1
    assert (one.kind, one.seed) == ("holdout", 0)
    assert one.test.dtype.kind == "i"


def test_drop_that_would_empty_a_val_part_says_so():
    ds, _ = planted(5)
    with pytest.raises(DataError, match="would leave it empty"):
        make_splits(ds, SplitSpec(test=0, val=0.25, stratify=False, on_duplicates="drop"), seed=0)


def test_drop_in_cv_keeps_the_kind_and_the_seed():
    X = table(24).X.copy()
    X[::2] = X[0]  # every other row the same: every fold's val has a copy in its train
    ds = Dataset(X=X, y=table(24).y, task="classification", name="d", classes=["c0", "c1"])
    spec = SplitSpec(test=0, cv={"kind": "kfold", "folds": 4}, on_duplicates="drop")
    s = make_splits(ds, spec, seed=9)
    assert (s.kind, s.seed) == ("kfold", 9)
    for f in s.folds:
        assert 0 < len(f.val) < 6
        assert not {r.tobytes() for r in X[f.val]} & {r.tobytes() for r in X[f.train]}


def test_the_error_names_up_to_five_pairs():
    X = table(24).X.copy()
    X[::2] = X[0]
    ds = Dataset(X=X, y=table(24).y, task="classification", name="d", classes=["c0", "c1"])
    spec = SplitSpec(test=0, cv={"kind": "kfold", "folds": 4}, on_duplicates="error")
    with pytest.raises(DataError) as err:
        make_splits(ds, spec, seed=0)
    assert all(f"fold {k} val" in str(err.value) for k in (1, 2, 3, 4))
    assert "more pair" not in str(err.value)
    same = Dataset(
        X=np.repeat(X[:1], 24, axis=0), y=ds.y, task=ds.task, name="s", classes=ds.classes
    )
    spec6 = SplitSpec(test=0, cv={"kind": "kfold", "folds": 6}, on_duplicates="error")
    with pytest.raises(DataError) as err6:  # six pairs with copies: five named, one counted
        make_splits(same, spec6, seed=0)
    assert "fold 5 val" in str(err6.value) and "fold 6 val" not in str(err6.value)
    assert "1 more pair(s) with copies" in str(err6.value)


# --- splits.json


def test_class_counts_per_part_use_the_class_names_and_count_absent_classes():
    labels = [0] * 8 + [1] * 8 + [2] * 4
    ds = table(20, labels=labels)
    s = split(ds, test=0, cv={"kind": "kfold", "folds": 2, "shuffle": False})
    part = s.to_json(ds)["folds"][0]["val"]  # the first 10 rows: classes 0 and 1 only
    assert part["classes"] == {"c0": 8, "c1": 2, "c2": 0}
    assert "classes" not in s.to_json(regression(20))["test"]
    unnamed = table(20, labels=labels, classes_named=False)
    assert s.to_json(unnamed)["test"]["classes"] == {}


def test_an_empty_test_part_reads_back_and_a_changed_part_names_both_fingerprints():
    ds = table(20)
    s = split(ds, test=0, stratify=False)
    back = Splits.from_json(s.to_json(ds), ds)
    assert back.test.dtype.kind == "i" and len(back.test) == 0
    data = split(ds, test=0.2, stratify=False).to_json(ds)
    X = ds.X.copy()
    X[data["test"]["indices"][0]] += 1
    changed = Dataset(X=X, y=ds.y, task=ds.task, name="t", classes=ds.classes)
    now = fingerprint(changed, np.asarray(data["test"]["indices"]))
    with pytest.raises(DataError, match=f"stored {data['test']['fingerprint']}, now {now}"):
        Splits.from_json(data, changed)


# --- too few samples for the folds: what to change


@pytest.mark.parametrize(
    "n, test, folds, image, message",
    [
        (10, 0.5, 6, False,
         "10 rows cannot make 6 folds: split.cv.folds is 6 but the non-test part has only 5 "
         "samples (5 of the 10 are the test part, split.test: 0.5), and every fold needs at "
         "least one. Use at most 5 folds, `split.cv: loo`, a smaller split.test or more rows"),
        (3, 0, 5, True,
         "3 images cannot make 5 folds: split.cv.folds is 5 but the non-test part has only 3 "
         "samples, and every fold needs at least one. Use at most 3 folds, `split.cv: loo` or "
         "more images"),
        (2, 0, 3, False, "Use at most 2 folds, `split.cv: loo` or more rows"),
        (4, 0.5, 3, False,
         "has only 2 samples (2 of the 4 are the test part, split.test: 0.5), and every fold "
         "needs at least one. Use at most 2 folds, `split.cv: loo`, a smaller split.test or more rows"),
        (3, 0.5, 2, False, "has only 1 samples (2 of the 3 are the test part, split.test: 0.5)"
         ", and every fold needs at least one. Use a smaller split.test or more rows"),
    ],
)  # fmt: skip
def test_too_few_samples_for_the_folds_says_what_to_change(n, test, folds, image, message):
    ds = table(n, image=image)
    with pytest.raises(DataError) as err:
        split(ds, test=test, stratify=False, cv={"kind": "kfold", "folds": folds})
    assert message in str(err.value)


def test_a_grouped_test_part_larger_than_its_fraction_is_counted_too():
    # 3 groups of 4, test 0.1: the estimate before the split is 2 test rows, the grouped test
    # part takes a whole group (4), so 8 rows are left for 10 folds
    ds = table(12, groups=np.repeat(np.arange(3), 4))
    with pytest.raises(DataError) as err:
        split(ds, test=0.1, cv={"kind": "group", "folds": 10})
    assert str(err.value) == (
        "12 rows cannot make 10 folds: split.cv.folds is 10 but the non-test part has only 8 "
        "samples, and every fold needs at least one. Use at most 8 folds, `split.cv: loo`, "
        "a smaller split.test or more rows"
    )


def test_a_single_row_can_only_be_given_more_rows():
    with pytest.raises(DataError) as err:
        split(table(1), test=0, stratify=False, cv={"kind": "kfold", "folds": 2})
    assert str(err.value).endswith("every fold needs at least one. Use more rows")


@pytest.mark.parametrize("n", [5, 8])
def test_a_source_test_part_that_is_missing_is_named_as_such(n):
    with pytest.raises(DataError, match="has no test part of its own"):
        split(table(n), test="source", cv={"kind": "kfold", "folds": 5})


def test_the_source_test_part_counts_against_the_folds():
    ds = table(10)
    ds.source_test = np.arange(2, 10)
    with pytest.raises(DataError) as err:
        split(ds, test="source", cv={"kind": "kfold", "folds": 3})
    assert "(8 of the 10 are the test part, split.test: source)" in str(err.value)
    ok = split(ds, test="source", cv={"kind": "kfold", "folds": 2})
    assert ok.test.tolist() == list(range(2, 10))
