"""The in-memory dataset every source produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]


@dataclass
class Dataset:
    """Features and targets as numpy arrays, plus what a model needs to know about them.

    Attributes:
        X: float32 features, ``(n, features)`` for tables or ``(n, C, H, W)`` for images.
        y: int64 class indices ``(n,)`` for classification; float32 ``(n,)`` or ``(n, d)``
            for regression.
        task: ``"classification"`` or ``"regression"``.
        name: a short label for messages and reports.
        classes: class names in index order (classification only).
        feature_names: column names for tables.
        groups: optional group label per sample (for group splits).
        source_test: indices of the source's own test part (e.g. MNIST's 10,000), if any.
    """

    X: np.ndarray
    y: np.ndarray
    task: Task
    name: str
    classes: list[str] | None = None
    feature_names: list[str] | None = None
    groups: np.ndarray | None = None
    source_test: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def is_image(self) -> bool:
        return self.X.ndim == 4

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)`` or ``(64,)``."""
        return tuple(int(s) for s in self.X.shape[1:])

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
