"""Built-in data sets and the synthetic linear source."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import BUILTINS, load_dataset
from tunelab.spec import BuiltinData, LinearData, load_spec

TABLES = [
    # name, samples, features, classes
    ("iris", 150, 4, 3),
    ("wine", 178, 13, 3),
    ("breast-cancer", 569, 30, 2),
]


def builtin(name: str):
    return load_dataset(BuiltinData(source=name))


def test_mnist_5k():
    ds = builtin("mnist-5k")
    assert ds.X.shape == (5000, 1, 28, 28) and ds.X.dtype == np.float32
    assert ds.y.shape == (5000,) and ds.y.dtype == np.int64
    assert ds.task == "classification" and ds.num_classes == 10 and ds.is_image
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert np.array_equal(np.bincount(ds.y), [500] * 10)
    assert ds.in_shape == (1, 28, 28) and ds.in_features == 784 and ds.out_features == 10
    assert ds.source_test is None and ds.groups is None
    assert builtin("mnist-5k").X is ds.X  # loaded once per process


def test_digits():
    ds = builtin("digits")
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.num_classes == 10 and ds.task == "classification"
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert np.array_equal(np.unique(ds.y), np.arange(10))


@pytest.mark.parametrize("name, samples, features, classes", TABLES)
def test_classification_tables(name, samples, features, classes):
    ds = builtin(name)
    assert ds.name == name and ds.task == "classification"
    assert ds.X.shape == (samples, features) and ds.X.dtype == np.float32
    assert ds.y.shape == (samples,) and ds.y.dtype == np.int64
    assert ds.num_classes == classes == ds.out_features
    assert np.array_equal(np.unique(ds.y), np.arange(classes))
    assert len(ds.feature_names) == features and not ds.is_image


def test_iris_matches_its_source():
    from sklearn.datasets import load_iris

    ds = builtin("iris")
    assert ds.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(ds.X, load_iris().data.astype(np.float32))
    np.testing.assert_array_equal(ds.y, load_iris().target)


def test_diabetes_is_regression():
    ds = builtin("diabetes")
    assert ds.task == "regression" and ds.classes is None and ds.num_classes is None
    assert ds.X.shape == (442, 10) and ds.X.dtype == np.float32
    assert ds.y.shape == (442,) and ds.y.dtype == np.float32 and ds.out_features == 1
    assert len(np.unique(ds.y)) > 100


@pytest.mark.parametrize(
    "name", ["mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes"]
)
def test_builtin_arrays_are_read_only(name):
    ds = builtin(name)
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        ds.y[0] = 0
    assert not ds.X.flags.writeable and not ds.y.flags.writeable


def test_every_builtin_listed_in_builtins_loads_as_described():
    for info in BUILTINS:
        if info.name in ("mnist", "linear"):
            continue
        ds = builtin(info.name)
        assert ds.task == info.task
        assert f"{len(ds):,}" == info.samples
        assert "x".join(str(s) for s in ds.in_shape) == info.shape
        assert (
            str(ds.num_classes) == info.classes if info.classes != "-" else ds.num_classes is None
        )


def test_linear_defaults():
    ds = load_dataset(LinearData(source="linear"))
    assert ds.X.shape == (500, 1) and ds.X.dtype == np.float32
    assert ds.y.shape == (500,) and ds.y.dtype == np.float32
    assert ds.task == "regression" and ds.feature_names == ["x"] and ds.name == "linear"
    assert ds.X.min() >= -1.0 and ds.X.max() <= 1.0


def fit_line(ds) -> tuple[float, float]:
    A = np.column_stack([ds.X[:, 0].astype(np.float64), np.ones(len(ds))])
    (w, b), *_ = np.linalg.lstsq(A, ds.y.astype(np.float64), rcond=None)
    return float(w), float(b)


@pytest.mark.parametrize("w, b", [(2.0, 0.0), (-3.5, 1.25), (0.0, -7.0)])
def test_linear_least_squares_recovers_w_and_b(w, b):
    ds = load_dataset(LinearData(source="linear", w=w, b=b, n=400, noise=0.01))
    fw, fb = fit_line(ds)
    assert fw == pytest.approx(w, abs=0.01) and fb == pytest.approx(b, abs=0.01)
    residual = ds.y - (w * ds.X[:, 0] + b)
    assert residual.std() == pytest.approx(0.01, rel=0.2)


def test_linear_noise_zero_is_exact():
    ds = load_dataset(LinearData(source="linear", w=1.5, b=0.5, noise=0.0, n=10))
    np.testing.assert_allclose(ds.y, 1.5 * ds.X[:, 0] + 0.5, rtol=1e-6)


def test_linear_noise_level():
    ds = load_dataset(LinearData(source="linear", w=1.0, noise=2.0, n=2000))
    assert (ds.y - ds.X[:, 0]).std() == pytest.approx(2.0, rel=0.1)


def test_linear_range_and_size():
    ds = load_dataset(LinearData(source="linear", n=37, x_low=3.0, x_high=4.0))
    assert len(ds) == 37 and ds.X.min() >= 3.0 and ds.X.max() <= 4.0


def test_linear_seed():
    spec = LinearData(source="linear")
    a, b = load_dataset(spec, seed=1), load_dataset(spec, seed=1)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, load_dataset(spec, seed=2).X)
    # the data's own seed wins over the run seed
    own = LinearData(source="linear", seed=5)
    assert np.array_equal(load_dataset(own, seed=0).X, load_dataset(own, seed=99).X)
    assert np.array_equal(load_dataset(own, seed=0).X, load_dataset(spec, seed=5).X)


def test_linear_from_a_spec():
    spec = load_spec({"data": "linear", "model": "linear"}, overrides=["data.n=50", "data.w=4"])
    ds = load_dataset(spec.data, seed=spec.seed)
    assert len(ds) == 50 and fit_line(ds)[0] == pytest.approx(4.0, abs=0.1)
