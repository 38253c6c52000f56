"""Standardisation statistics come from the training part alone."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import Standardizer, fit_standardizer, load_dataset, make_splits
from tunelab.spec import BuiltinData, SplitSpec


@pytest.fixture(scope="module")
def wine():
    return load_dataset(BuiltinData(source="wine"))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(BuiltinData(source="digits"))


@pytest.mark.parametrize("mode", ["auto", "standardize"])
def test_table_statistics_are_those_of_the_training_part(wine, mode):
    train = make_splits(wine, SplitSpec(test=0.2, val=0.2), seed=0).folds[0].train
    std = fit_standardizer(wine.X[train], mode)
    part = wine.X[train].astype(np.float64)
    assert std.kind == "features" and std.mean.shape == std.std.shape == (13,)
    assert std.mean.dtype == std.std.dtype == np.float32
    np.testing.assert_allclose(std.mean, part.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.std, part.std(axis=0), rtol=1e-6)
    # and not those of the whole data set
    full = wine.X.astype(np.float64)
    assert not np.allclose(std.mean, full.mean(axis=0), rtol=1e-4)
    assert not np.allclose(std.std, full.std(axis=0), rtol=1e-4)
    scaled = (part - std.mean) / std.std
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)


def test_image_statistics_are_per_channel():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[5.0, -2.0, 0.5], scale=[1.0, 3.0, 0.1], size=(40, 6, 5, 3))
    X = np.ascontiguousarray(X.transpose(0, 3, 1, 2)).astype(np.float32)  # (40, 3, 6, 5)
    std = fit_standardizer(X[:30], "auto")
    assert std.kind == "channels" and std.mean.shape == std.std.shape == (3,)
    part = X[:30].astype(np.float64)
    np.testing.assert_allclose(std.mean, part.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std.std, part.std(axis=(0, 2, 3)), rtol=1e-5)
    assert not np.allclose(std.mean, X.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std.mean, [5.0, -2.0, 0.5], atol=0.3)
    assert std.broadcast_shape((3, 6, 5)) == (1, 3, 1, 1)
    scaled = (X[:30] - std.mean.reshape(1, 3, 1, 1)) / std.std.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(scaled.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_digits_training_part(digits):
    train = make_splits(digits, SplitSpec(test=0.2), seed=0).folds[0].train
    std = fit_standardizer(digits.X[train], "auto")
    assert std.kind == "channels" and std.mean.shape == (1,)
    assert std.mean[0] == pytest.approx(digits.X[train].astype(np.float64).mean(), rel=1e-6)
    assert std.mean[0] != pytest.approx(digits.X.astype(np.float64).mean(), rel=1e-5)


def test_table_broadcast_shape():
    std = fit_standardizer(np.ones((4, 7), np.float32), "auto")
    assert std.broadcast_shape((7,)) == (1, 7)


@pytest.mark.parametrize("value", [0.0, 0.1, 1234.567, 3e7])
def test_constant_feature_keeps_std_one(value):
    X = np.full((1001, 3), value, np.float32)
    X[:, 0] = np.arange(1001)
    std = fit_standardizer(X, "auto")
    assert std.std[1] == std.std[2] == 1.0
    assert std.mean[1] == np.float32(value)
    assert np.all(np.isfinite((X - std.mean) / std.std))
    assert std.std[0] == pytest.approx(np.arange(1001).std(), rel=1e-6)


def test_constant_image_channel_keeps_std_one():
    X = np.zeros((5, 2, 4, 4), np.float32)
    X[:, 1] = np.arange(5, dtype=np.float32)[:, None, None]
    std = fit_standardizer(X, "auto")
    assert std.std[0] == 1.0 and std.std[1] == pytest.approx(np.arange(5).std())


def test_mode_none_is_the_identity():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(20, 4)).astype(np.float32)
    std = fit_standardizer(X, "none")
    assert std.kind == "none" and std.broadcast_shape((4,)) == (1,)
    assert np.array_equal((X - std.mean) / std.std, X)


def test_json_round_trip():
    X = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    std = fit_standardizer(X, "auto")
    again = Standardizer.from_json(std.to_json())
    assert again.kind == std.kind
    assert np.array_equal(again.mean, std.mean) and np.array_equal(again.std, std.std)
    assert again.mean.dtype == np.float32


def test_input_is_not_modified(wine):
    X = np.array(wine.X[:50])
    before = X.copy()
    fit_standardizer(X, "auto")
    assert np.array_equal(X, before)
