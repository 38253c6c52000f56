"""The dataset every source produces: features in memory, or read sample by sample (lazy)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Task = Literal["classification", "regression"]


def text_dataset(texts: np.ndarray, y: np.ndarray, featurizer: Any, **kwargs: Any) -> Dataset:
    """A data set of raw texts: ``table`` their one-column frame for ``featurizer`` (fitted
    per training part), ``X`` each text's 16-byte hash as 16 numbers (a row code, as a
    featurized table's ``X``)."""
    from tunelab.data._featurize import texts_frame

    digests = text_digests(texts)
    codes = np.frombuffer(digests.tobytes(), np.uint8).reshape(len(texts), 16)
    return Dataset(
        X=codes.astype(np.float32),
        y=y,
        texts=texts,
        table=texts_frame(texts),
        featurizer=featurizer,
        **kwargs,
    )


def text_digests(texts: np.ndarray) -> np.ndarray:
    """blake2b (16 bytes) of each text's UTF-8 bytes, as ``S16``."""
    return np.array(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16"
    )


@dataclass(frozen=True)
class Lazy:
    """Features read sample by sample, through a DataLoader, instead of held in memory.

    Attributes:
        samples: a map-style dataset: ``samples[i]`` is ``(x, target)``; ``x`` becomes float32.
        shape: the shape of one sample ``x`` (every sample has it; checked at load).
        digests: a 16-byte hash of each sample's float32 bytes (``S16``, one per sample): the
            fingerprints and the leakage check read these instead of the features.
        workers: DataLoader worker processes (0: read in the main process).
    """

    samples: Any
    shape: tuple[int, ...]
    digests: np.ndarray
    workers: int = 0


@dataclass
class Dataset:
    """Features and targets as numpy arrays, plus what a model needs to know about them.

    Attributes:
        X: float32 features, ``(n, features)`` for tables or ``(n, C, H, W)`` for images;
            None when they are read sample by sample (``lazy``).
        y: int64 class indices ``(n,)`` for classification; float32 ``(n,)`` or ``(n, d)``
            for regression.
        task: ``"classification"`` or ``"regression"``.
        name: a short label for messages and reports.
        classes: class names in index order (classification only).
        feature_names: column names for tables.
        groups: optional group label per sample (for group splits).
        source_test: indices of the source's own test part (e.g. MNIST's 10,000), if any.
        test_is_sealed: the source's test part must be the sealed test (``split.test: source``),
            as for a factory that returns ``(train, test)``.
        lazy: the features read sample by sample (see :class:`Lazy`), with ``X`` None.
        texts: raw texts (a text data set: ``table`` holds them as its ``text`` column for
            the featurizer, ``X`` codes each by its hash; ``data/_featurize.py``).
        drop_duplicates: exact duplicate samples are dropped before the split (all copies
            but the first; recorded in ``splits.json``), the default for text.
        table: the raw feature columns (a DataFrame) when they are fitted per training part
            (``featurizer``); ``X`` then holds a numeric code of each row (for fingerprints
            and the leakage check), not the model's inputs.
        featurizer: fitted on each training part's rows of ``table`` (``data._tabular``).
    """

    X: np.ndarray | None
    y: np.ndarray
    task: Task
    name: str
    classes: list[str] | None = None
    feature_names: list[str] | None = None
    groups: np.ndarray | None = None
    source_test: np.ndarray | None = field(default=None, repr=False)
    test_is_sealed: bool = False
    lazy: Lazy | None = field(default=None, repr=False)
    texts: np.ndarray | None = field(default=None, repr=False)
    drop_duplicates: bool = False
    table: Any = field(default=None, repr=False)
    featurizer: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def is_image(self) -> bool:
        return len(self.in_shape) == 3

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)`` or ``(64,)``."""
        shape = self.lazy.shape if self.X is None else self.X.shape[1:]
        return tuple(int(s) for s in shape)

    @functools.cached_property
    def digests(self) -> np.ndarray | None:
        """A 16-byte hash per sample (``S16``) where the samples are not an array: each raw
        text's (of its UTF-8 bytes), or a lazy set's; None when ``X`` holds them."""
        if self.texts is not None:
            return text_digests(self.texts)
        return self.lazy.digests if self.lazy is not None else None

    @property
    def in_features(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    @property
    def out_features(self) -> int:
        """Number of model outputs: classes for classification, target dims for regression."""
        if self.task == "classification":
            return int(self.num_classes or 0)
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])
