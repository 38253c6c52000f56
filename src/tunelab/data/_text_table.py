"""A table (CSV, Parquet, JSONL) whose input is one column of raw texts (``data.text``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.data._dataset import Dataset, text_dataset
from tunelab.data._featurize import TextFeaturizer
from tunelab.data._file_checks import check_task, existing, target_of
from tunelab.data._files import _missing_column, _read_table, _rows
from tunelab.errors import DataError

__all__ = ["load_text_table", "text_column", "check_texts"]


def check_texts(texts: np.ndarray, where: list[str] | str) -> None:
    """Refuse an empty (or blank) text, naming it: ``where`` is one name per text (its path)
    or the column's description (rows are then counted from 1)."""
    blank = np.flatnonzero([not t.strip() for t in texts])
    if len(blank):
        i = int(blank[0])
        at = where[i] if isinstance(where, list) else f"{where}, data row {i + 1}"
        more = f" ({len(blank)} in all)" if len(blank) > 1 else ""
        raise DataError(f"empty text in {at}{more}; every sample needs some text")


def text_column(frame: Any, column: str, *, where: str) -> np.ndarray:
    """The column ``column`` of ``frame`` as an object array of str: refused when it is
    missing, numeric, or holds a missing or blank text (named with its data row)."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    if column not in columns:
        raise _missing_column(column, "text", columns, where)
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"text column `{column}` of {where} is numeric ({values.dtype}); data.text names "
            "a column of texts (numeric columns are data.features)"
        )
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"text column `{column}` of {where} has a missing text at "
            f"{_rows(np.flatnonzero(missing))}; every sample needs some text"
        )
    texts = np.array([str(v) for v in values], dtype=object)
    check_texts(texts, f"text column `{column}` of {where}")
    return texts


def load_text_table(spec: Any) -> Dataset:
    """One sample per row: the text column ``spec.text``, the target ``spec.target``."""
    path = existing(spec.path, "table")
    check_task(spec.task, path)
    frame = _read_table(path, spec.source)
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{path} has no data rows; expected one row per sample")
    if spec.features is not None:
        raise DataError(
            f"{path}: data.text and data.features are both set; a text table's input is its "
            "text column alone"
        )
    texts = text_column(frame, spec.text, where=str(path))
    if spec.target not in frame.columns:
        raise _missing_column(spec.target, "target", list(frame.columns), path)
    y_column = frame[spec.target]
    if y_column.isna().any():
        raise DataError(
            f"target column `{spec.target}` of {path} has a missing value at "
            f"{_rows(np.flatnonzero(y_column.isna().to_numpy()))}; drop those rows"
        )
    where = f"target column `{spec.target}` of {path}"
    y, task, classes = target_of(y_column.to_numpy(), spec.task, where=where)
    groups = None
    if spec.groups is not None:
        if spec.groups not in frame.columns:
            raise _missing_column(spec.groups, "groups", list(frame.columns), path)
        groups = frame[spec.groups].to_numpy()
    return text_dataset(
        texts,
        y,
        TextFeaturizer(spec.featurize),
        task=task,
        name=path.stem,
        classes=classes,
        groups=groups,
        drop_duplicates=spec.duplicates == "drop",
    )
