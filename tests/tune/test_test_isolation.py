"""No training or preprocessing step of a trial, a refit or a nested fold ever sees a test row.

The data carries its own row number as a feature (column ``ID``), so the rows behind every
tensor that training receives can be read back from the tensor itself. Two seams of the real
code are watched while real studies run: ``fit`` (the tensors a model is trained and validated
on) and ``fit_part`` (the rows preprocessing is fitted on). Independently
of both, the ``preprocess.json`` of every refit must equal the statistics of exactly the
non-test rows, and the ``splits.json`` parts must never hold a test index.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import tunelab
from tunelab.data import fit_standardizer
from tunelab.spec import load_spec
from tunelab.train import prepare

# the modules whose names are watched (``tunelab.train`` and ``tunelab.tune`` are also functions);
# a fold trains through ``_fold``; nested CV runs each outer fold's inner study through
# ``_nested.run_study``
train_run = importlib.import_module("tunelab.train._fold")
tune_nested = importlib.import_module("tunelab.tune._nested")

N, ID = 90, 4  # rows; the column that holds each row's own number


def _spec(path: Path, **split) -> dict:
    return {
        "name": "isolated",
        "seed": 0,
        "data": {"source": "npz", "path": str(path)},
        "split": {"test": 0.2, **split},
        "model": {"name": "linear"},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}},
        "tune": {
            "trials": 2,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": {"low": 1e-2, "high": 1e-1, "log": True}},
        },
    }


@pytest.fixture
def data(tmp_path) -> tuple[Path, np.ndarray]:
    """An NPZ of three classes whose column ID is the row number, and its X."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), N // 3)
    X = np.column_stack([rng.normal(size=(N, ID)) + y[:, None], np.arange(N)]).astype(np.float32)
    path = tmp_path / "rows.npz"
    np.savez(path, X=X, y=y)
    return path, X


class Watch:
    """What the real ``fit`` and ``fit_part`` were given, as sets of row numbers."""

    def __init__(self, monkeypatch):
        self.fits: list[tuple[set[int], set[int]]] = []  # (train rows, val rows) per fit
        self.stats: list[set[int]] = []  # rows each preprocessing statistic was fitted on
        self.outer: list[set[int]] = []  # nested CV: the test part of each inner study
        real_fit, real_stats = train_run.fit, train_run.fit_part
        real_study = tune_nested.run_study

        def fit(model, train, val, *args, **kwargs):
            self.fits.append((_rows(train[0]), _rows(val[0]) if val is not None else set()))
            return real_fit(model, train, val, *args, **kwargs)

        def stats(ds, idx, mode):
            self.stats.append(_rows(ds.X[idx]))
            return real_stats(ds, idx, mode)

        def run_study(spec, params, folder, **kwargs):
            if kwargs.get("prep") is not None:
                self.outer.append(set(kwargs["prep"].splits.test.tolist()))
            return real_study(spec, params, folder, **kwargs)

        monkeypatch.setattr(train_run, "fit", fit)
        monkeypatch.setattr(train_run, "fit_part", stats)
        monkeypatch.setattr(tune_nested, "run_study", run_study)

    def assert_never_saw(self, test: set[int]) -> None:
        assert self.fits and self.stats  # something was trained: the checks below are not empty
        for train, val in self.fits:
            assert train and not train & test, f"a model was trained on test rows {train & test}"
            assert not val & test, f"a model was validated on test rows {val & test}"
        for rows in self.stats:
            assert rows and not rows & test, f"preprocessing was fitted on test rows {rows & test}"


def _rows(X) -> set[int]:
    column = np.asarray(X[:, ID].detach().cpu() if hasattr(X, "detach") else X[:, ID])
    return set(np.rint(column).astype(int).tolist())


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _check_run_folder(run: Path, X: np.ndarray, test: set[int]) -> None:
    """A refit's own record: splits without test indices, statistics of the non-test rows."""
    splits = _read(run / "splits.json")
    assert set(splits["test"]["indices"]) == test
    assert splits["folds"]
    for fold in splits["folds"]:
        for part in ("train", "val"):
            assert not set(fold[part]["indices"]) & test, f"{run}: {part} holds test indices"
    dev = np.array(sorted(set(range(N)) - test))
    expected = fit_standardizer(X[dev], "auto")
    stored = _read(run / "preprocess.json")
    np.testing.assert_allclose(stored["mean"], expected.mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(stored["std"], expected.std, rtol=0, atol=1e-5)


def test_a_study_never_trains_or_preprocesses_on_the_test_part(data, tmp_path, monkeypatch):
    path, X = data
    tree = _spec(path, cv=3)
    test = set(prepare(load_spec(tree)).splits.test.tolist())  # the split, made before the study
    assert len(test) == 18
    watch = Watch(monkeypatch)
    result = tunelab.tune_study(tree, out=tmp_path / "s", quiet=True)
    assert result.counts["COMPLETE"] == 2
    # 2 trials x 3 folds, then the refit: the refit is trained on every non-test row
    assert len(watch.fits) == 7
    watch.assert_never_saw(test)
    assert watch.fits[-1][0] == set(range(N)) - test
    _check_run_folder(tmp_path / "s" / "best", X, test)
    with np.load(tmp_path / "s" / "best" / "predictions.npz") as preds:
        assert set(preds["test_index"].tolist()) == test  # and the test part is what it scored


def test_nested_cv_never_trains_on_its_outer_test_fold(data, tmp_path, monkeypatch):
    path, X = data
    watch = Watch(monkeypatch)
    tunelab.tune_study(_spec(path, val=0.25), out=tmp_path / "n", nested=3, quiet=True)
    assert len(watch.outer) == 3
    assert set().union(*watch.outer) == set(range(N))  # the outer test folds cover every row
    assert sum(len(t) for t in watch.outer) == N  # once
    # per outer fold: 2 trials (holdout) and the refit, in order
    assert len(watch.fits) == len(watch.stats) == 9
    for k, test in enumerate(watch.outer):
        fits = watch.fits[3 * k : 3 * k + 3]
        for train, val in fits:
            assert train and not train & test, f"outer fold {k}: trained on its test rows"
            assert not val & test, f"outer fold {k}: validated on its test rows"
        for rows in watch.stats[3 * k : 3 * k + 3]:
            assert not rows & test, f"outer fold {k}: preprocessing fitted on its test rows"
        assert fits[-1][0] == set(range(N)) - test  # the refit: all of the outer fold's rest
        _check_run_folder(tmp_path / "n" / f"outer_{k}" / "best", X, test)


def test_a_cross_validated_run_never_trains_on_the_test_part(data, tmp_path, monkeypatch):
    path, X = data
    tree = _spec(path, cv=3)
    del tree["tune"]
    test = set(prepare(load_spec(tree)).splits.test.tolist())
    watch = Watch(monkeypatch)
    tunelab.train(tree, out=tmp_path / "r", quiet=True)
    assert len(watch.fits) == 4  # 3 folds, then the refit on all non-test rows
    watch.assert_never_saw(test)
    assert watch.fits[-1][0] == set(range(N)) - test
    _check_run_folder(tmp_path / "r", X, test)
