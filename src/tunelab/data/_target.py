"""The target's scale: regression targets standardised on a training part (``data.target_scale``).

The model learns the standardised target; its last layer (``models.Unscale``) maps its outputs
back to the original units, so every prediction, metric and saved file is in the data's own
units. The statistics are saved beside the input's (``target_scale.json``, JSON, never pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "TargetScale",
    "fit_target_scale",
    "read_target_scale",
    "TARGET_SCALE_FILE",
    "LOSS_SCALE",
]

TARGET_SCALE_FILE = "target_scale.json"
LOSS_SCALE = "the loss is on the standardised target scale; metrics are in the target's units"


@dataclass
class TargetScale:
    """``y = z * std + mean``: one mean and std per target column, fitted on a training part."""

    mean: np.ndarray
    std: np.ndarray

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "note": LOSS_SCALE}

    @classmethod
    def from_json(cls, data: dict) -> TargetScale:
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32))

    def describe(self) -> str:
        """``mean 152.1, std 77.06`` (the first target column's, for a console line)."""
        more = f" (first of {len(self.mean)} targets)" if len(self.mean) > 1 else ""
        return f"mean {self.mean[0]:.4g}, std {self.std[0]:.4g}{more}"


def fit_target_scale(y_train: np.ndarray, mode: str, *, task: str) -> TargetScale | None:
    """The target's statistics on a training part, or None (classification, ``mode: none``).

    ``mode``: auto (standardise regression targets) | none. A constant target keeps std 1.
    """
    if task != "regression" or mode == "none":
        return None
    y = np.asarray(y_train, np.float64)
    y = y.reshape(len(y), -1)
    mean, std = y.mean(axis=0), y.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return TargetScale(mean.astype(np.float32), std.astype(np.float32))


def read_target_scale(folder: Path) -> TargetScale | None:
    """A run's saved target scale; None for a run trained without one (or before it existed)."""
    path = Path(folder) / TARGET_SCALE_FILE
    if not path.is_file():
        return None
    return TargetScale.from_json(json.loads(path.read_text(encoding="utf-8")))
