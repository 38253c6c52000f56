"""The checks every file source shares: the path exists, the task is known, a target becomes
``(y, task, classes)``; every problem is a ``DataError`` that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunelab.data._dataset import Task
from tunelab.errors import DataError, did_you_mean

_TASKS = ("auto", "classification", "regression")
# Above this many distinct whole-number values, a float target is taken as a quantity.
_MAX_AUTO_CLASSES = 20


def existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{what} `{path}` does not exist; check data.path (relative paths start "
            f"from the current directory, {Path.cwd()})."
        )
    return path


def check_task(task: str, path: Path) -> None:
    if task not in _TASKS:
        raise DataError(
            f"unknown task `{task}` for {path}{did_you_mean(task, _TASKS)}; "
            f"use one of {', '.join(_TASKS)}."
        )


def count_non_finite(values: np.ndarray) -> int:
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _encode_classes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class indices into the sorted distinct labels, and those labels as strings."""
    if values.dtype.kind == "f" and np.all(values == np.round(values)):
        values = values.astype(np.int64)  # 1.0, 2.0 -> classes "1", "2"
    elif values.dtype.kind not in "biuf":
        values = values.astype(str)
    labels, y = np.unique(values, return_inverse=True)
    return y.astype(np.int64).reshape(-1), [str(label) for label in labels]


def target_of(
    values: np.ndarray, task: str, *, where: str
) -> tuple[np.ndarray, Task, list[str] | None]:
    """Turn raw target values into ``(y, task, classes)``; ``where`` names them in messages.

    ``task="auto"`` picks regression for floats that are not all whole numbers or that take
    more than 20 distinct values, and classification for everything else (strings, booleans,
    integers, a few whole-number floats).
    """
    numeric = values.dtype.kind in "biuf"
    if numeric and values.dtype.kind == "f" and (missing := count_non_finite(values)):
        raise DataError(
            f"{where} has {missing} missing (NaN) or infinite value(s); drop or fill "
            "those rows before loading."
        )
    if task == "auto":
        if values.dtype.kind == "f" and values.ndim == 1:
            whole = bool(np.all(values == np.round(values)))
            few = whole and len(np.unique(values)) <= _MAX_AUTO_CLASSES
            task = "classification" if few else "regression"
        else:
            task = "regression" if values.ndim > 1 else "classification"
    if task == "regression":
        if not numeric:
            raise DataError(
                f"{where} holds non-numeric values (dtype {values.dtype}), so it "
                "cannot be a regression target; set data.task: classification or "
                "encode the target as numbers."
            )
        return values.astype(np.float32), "regression", None
    if values.ndim != 1:
        raise DataError(
            f"{where} has shape {values.shape}; classification needs one label per "
            "sample, shape (n,). Set data.task: regression for a multi-output target."
        )
    y, classes = _encode_classes(values)
    if len(classes) < 2:
        raise DataError(
            f"{where} has a single class ({classes[0]!r}); classification needs at "
            "least two. Check the target column, or set data.task: regression."
        )
    return y, "classification", classes
