"""Preprocessing statistics, fitted on a training part only.

A data set whose samples need fitting before they are numbers (a table with categories or
gaps: ``_tabular``) carries a featurizer; its fitted state rides on the :class:`Standardizer`
of the same part and is saved with it in ``preprocess.json``. ``FEATURIZERS`` maps each
state's ``kind`` to the function that rebuilds it from its JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab.errors import RunError

__all__ = ["Standardizer", "fit_standardizer", "FEATURIZERS", "register_featurizer"]

FEATURIZERS: dict[str, Callable[[dict], Any]] = {}


def register_featurizer(kind: str, from_json: Callable[[dict], Any]) -> None:
    """Name the function that rebuilds a fitted featurizer state of ``kind`` from its JSON."""
    FEATURIZERS[kind] = from_json


@dataclass
class Standardizer:
    """``(x - mean) / std``: per feature for tables, per channel for images.

    ``featurizer``: the part's fitted featurizer state (``kind``, ``width``, ``transform``,
    ``to_json``), or None when the samples are numbers as loaded; ``inputs``: its float32
    output for every row of the data set, kept while the part is trained and evaluated."""

    kind: str  # "features" | "channels" | "none"
    mean: np.ndarray
    std: np.ndarray
    featurizer: Any = field(default=None, repr=False, compare=False)
    inputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    on_device: dict = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "mean": self.mean.tolist(), "std": self.std.tolist()}
        if self.featurizer is not None:
            out["featurizer"] = self.featurizer.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> Standardizer:
        featurizer = None
        if "featurizer" in data:
            kind = data["featurizer"].get("kind")
            if kind not in FEATURIZERS:
                raise RunError(
                    f"preprocess.json holds a featurizer of kind `{kind}` that this tunelab "
                    f"does not know (known: {', '.join(sorted(FEATURIZERS)) or 'none'})"
                )
            featurizer = FEATURIZERS[kind](data["featurizer"])
        return cls(
            data["kind"],
            np.asarray(data["mean"], np.float32),
            np.asarray(data["std"], np.float32),
            featurizer=featurizer,
        )

    def broadcast_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of mean/std that broadcasts against a batch ``(N, *in_shape)``."""
        if self.kind == "channels":
            return (1, in_shape[0]) + (1,) * (len(in_shape) - 1)
        return (1, *in_shape) if self.kind == "features" else (1,)


def fit_standardizer(X_train: np.ndarray, mode: str) -> Standardizer:
    """Statistics of the training part alone. ``mode``: auto | standardize | none.

    Images (4-D) get one mean/std per channel; tables one per feature. A constant feature keeps
    std 1 so that it passes through unchanged instead of dividing by zero.
    """
    if mode == "none":
        return Standardizer("none", np.zeros(1, np.float32), np.ones(1, np.float32))
    if X_train.ndim == 4:
        axes, kind = (0, 2, 3), "channels"
    else:
        axes, kind = 0, "features"
    X = X_train.astype(np.float64, copy=False)
    mean = X.mean(axis=axes)
    std = X.std(axis=axes)
    std = np.where(std > 1e-12, std, 1.0)
    return Standardizer(
        kind, mean.astype(np.float32).reshape(-1), std.astype(np.float32).reshape(-1)
    )
