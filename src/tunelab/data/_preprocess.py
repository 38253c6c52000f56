"""Preprocessing statistics, fitted on a training part only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Standardizer", "fit_standardizer"]


@dataclass
class Standardizer:
    """``(x - mean) / std``: per feature for tables, per channel for images."""

    kind: str  # "features" | "channels" | "none"
    mean: np.ndarray
    std: np.ndarray

    def to_json(self) -> dict:
        return {"kind": self.kind, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Standardizer:
        return cls(
            data["kind"], np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32)
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
