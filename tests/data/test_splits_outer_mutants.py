"""The outer folds of nested CV (``outer_cv``, ``outer_folds``) at their edges, found unguarded
by scripts/mutation.py: the exact notes when the outer kind differs, the inner shuffle and split
seed carried outside, and the messages for data that cannot make the outer folds."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import Dataset, outer_cv, outer_folds
from tunelab.errors import DataError
from tunelab.spec import SplitSpec


def table(n: int, *, task: str = "classification", groups=None) -> Dataset:
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n) % 2 if task == "classification" else np.arange(n, dtype=np.float32)
    return Dataset(X=X, y=y, task=task, name="t", groups=groups)


@pytest.mark.parametrize(
    ("task", "kind"), [("classification", "stratified"), ("regression", "kfold")]
)
def test_leave_one_out_and_repeated_inner_folds_say_why_the_outer_kind_differs(task, kind):
    ds = table(20, task=task)
    cv, note = outer_cv(SplitSpec(cv={"kind": "loo"}), ds, folds=4)
    assert (cv.kind, cv.folds, cv.shuffle) == (kind, 4, True)
    assert note == (
        f"split.cv.kind is loo: the outer folds are 4-fold {kind} (leave-one-out cannot make 4 "
        "outer folds); the inner folds stay loo"
    )
    spec = SplitSpec(cv={"kind": "repeated", "folds": 3, "shuffle": False})
    cv, note = outer_cv(spec, ds, folds=5)
    assert (cv.kind, cv.folds, cv.shuffle) == (kind, 5, False)
    assert note == (
        f"split.cv.kind is repeated: the outer folds are 5-fold {kind} (a repeated outer k-fold "
        "would test each sample several times); the inner folds stay repeated"
    )


def test_the_inner_shuffle_is_the_outer_shuffle():
    ds = table(20)
    for kind in ("kfold", "stratified", "auto"):
        cv, note = outer_cv(SplitSpec(cv={"kind": kind, "shuffle": False}), ds, folds=3)
        assert (cv.shuffle, note) == (False, None)
    cv, _ = outer_cv(SplitSpec(), ds, folds=3)  # holdout inside: the default, shuffled
    assert (cv.kind, cv.shuffle) == ("stratified", True)


def test_holdout_inside_honours_split_stratify():
    assert outer_cv(SplitSpec(stratify=True), table(20), folds=3)[0].kind == "stratified"
    assert outer_cv(SplitSpec(stratify=False), table(20), folds=3)[0].kind == "kfold"
    regression = table(20, task="regression")
    assert outer_cv(SplitSpec(stratify=True), regression, folds=3)[0].kind == "kfold"
    assert outer_cv(SplitSpec(), regression, folds=3)[0].kind == "kfold"


def test_the_split_seed_is_the_specs_when_set():
    ds = table(40)
    seeded = outer_folds(ds, SplitSpec(seed=5), folds=4, seed=0)[1]
    same = outer_folds(ds, SplitSpec(), folds=4, seed=5)[1]
    other = outer_folds(ds, SplitSpec(), folds=4, seed=0)[1]
    assert [t.tolist() for t in seeded] == [t.tolist() for t in same]
    assert [t.tolist() for t in seeded] != [t.tolist() for t in other]
    for test in seeded:
        assert test.tolist() == sorted(test.tolist())


def test_group_outer_folds_need_group_labels():
    with pytest.raises(DataError) as err:
        outer_folds(table(20), SplitSpec(cv={"kind": "group"}), folds=3, seed=0)
    assert str(err.value) == "split.cv.kind is group but the data set has no group labels"


def test_too_few_groups_or_rows_for_the_outer_folds_name_nested():
    ds = table(12, groups=np.arange(12) % 3)
    with pytest.raises(DataError) as err:
        outer_folds(ds, SplitSpec(cv={"kind": "group"}), folds=4, seed=0)
    assert str(err.value) == "--nested (outer folds) is 4 but the data set has only 3 groups"
    with pytest.raises(DataError) as err:
        outer_folds(table(3), SplitSpec(cv={"kind": "kfold"}), folds=5, seed=0)
    assert str(err.value) == (
        "3 rows cannot make 5 folds: --nested (outer folds) is 5 but the non-test part has only "
        "3 samples, and every fold needs at least one. Use at most 3 folds, `split.cv: loo` or "
        "more rows"
    )
