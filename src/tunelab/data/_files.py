"""Data sets from the user's own files: CSV/Parquet tables and NPZ arrays (image folders:
``_images.py``).

Each loader reads the file once, checks what a model will need (numbers, or a table's string
columns and gaps handed to the featurizer fitted per training part, ``_tabular``; a usable
target) and returns a ``Dataset``; every problem is a ``DataError`` that names the file and
says how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.data._file_checks import check_task, count_non_finite, existing, target_of
from tunelab.data._tabular import TableFeaturizer, as_categories, table_options
from tunelab.errors import DataError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported inside the loader that needs it: with Pillow it adds about half a second
# to every `import tunelab`.

__all__ = ["load_table", "load_npz"]

_TABLE_FORMATS = ("csv", "parquet", "jsonl")


# ---------------------------------------------------------------------------------------------
# tables


def _read_table(path: Path, fmt: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path} is empty; expected a header row and at least one data row."
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not utf-8 text (byte {e.start}: {e.reason}); re-save it as utf-8"
        ) from None
    except ImportError as e:
        raise DataError(
            f"reading {path} needs pyarrow: pip install 'tunelab[parquet]' ({e})."
        ) from None
    except Exception as e:  # parser errors of every kind: the message is what helps
        raise DataError(
            f"could not read {path} as {fmt}: {type(e).__name__}: {e}. Check that "
            f"the file is {fmt} (data.format)."
        ) from None


def _rows(index: np.ndarray, *, shown: int = 5) -> str:
    """``row 3`` or ``rows 3, 8, 9, ...``: 0-based positions as 1-based data rows."""
    numbers = ", ".join(str(i + 1) for i in index[:shown]) + (", ..." if len(index) > shown else "")
    return f"row {numbers}" if len(index) == 1 else f"rows {numbers}"


def _missing_column(column: str, role: str, columns: list[str], path: Path) -> DataError:
    return DataError(
        f"{role} column `{column}` not found in {path}{did_you_mean(column, columns)}; "
        f"its columns are: {', '.join(columns)}."
    )


def _feature_columns(
    frame: pd.DataFrame,
    path: Path,
    target: str,
    features: Sequence[str] | None,
    groups: str | None,
) -> list[str]:
    """The feature columns, each checked to exist (as the target and groups columns), the target
    not among them; the frame's column names become strings."""
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    for column, role in ((target, "target"), (groups, "groups")):
        if column is not None and column not in frame.columns:
            raise _missing_column(column, role, columns, path)
    if features is None:
        features = [c for c in columns if c not in (target, groups)]
    features = [str(f) for f in features]
    for column in features:
        if column not in frame.columns:
            raise _missing_column(column, "feature", columns, path)
    if target in features:
        raise DataError(
            f"target column `{target}` is also listed in data.features for {path}; "
            "remove it from the features."
        )
    if not features:
        raise DataError(
            f"{path} has no feature columns besides the target `{target}`; expected "
            "at least one numeric column."
        )
    return features


def _features(
    table: pd.DataFrame, path: Path, preprocess: Any
) -> tuple[np.ndarray, TableFeaturizer | None]:
    """The feature columns as float32, and the featurizer fitted per training part when some
    are strings or have gaps (``X`` then codes each row for fingerprints, see ``Dataset``).

    Refused, named with their data rows: infinite values; string columns under
    ``categorical: none``; gaps under ``impute: none``."""
    import pandas as pd

    options = table_options(preprocess)
    features = list(table.columns)
    text = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if text and options.categorical == "none":
        kinds = ", ".join(f"`{c}` ({table[c].dtype})" for c in text)
        raise DataError(
            f"non-numeric feature column(s) in {path}: {kinds}. Encode them as "
            "numbers first, leave them out of data.features, or one-hot encode them per "
            "training part (data.preprocess: {categorical: onehot})."
        )
    numeric = [c for c in features if c not in text]
    X = table[numeric].to_numpy(dtype=np.float32, na_value=np.nan)
    impute = options.impute != "none"
    bad = np.isinf(X) if impute else ~np.isfinite(X)
    if bad.any():
        listed = "; ".join(
            f"`{c}` ({bad[:, j].sum()}) at {_rows(np.flatnonzero(bad[:, j]))}"
            for j, c in enumerate(numeric)
            if bad[:, j].any()
        )
        what = "infinite values" if impute else "missing (NaN) or infinite values"
        raise DataError(
            f"{what} in feature column(s) of {path}: {listed} (data rows counted from 1 "
            "after the header). Drop or fill those rows before loading"
            + ("." if impute else ", or impute them (data.preprocess: {impute: auto}).")
        )
    gaps = [c for c in text if table[c].isna().any()]
    if gaps and not impute:
        raise DataError(
            f"missing values in feature column(s) of {path}: "
            + "; ".join(f"`{c}` at {_rows(np.flatnonzero(table[c].isna()))}" for c in gaps)
            + ", and data.preprocess.impute is none."
        )
    if not text and not np.isnan(X).any():
        return X, None
    _warn_id_like(table, text, path)
    codes = {c: X[:, j] for j, c in enumerate(numeric)}
    for c in text:  # each category's rank among the file's categories, gaps NaN
        index = pd.factorize(as_categories(table[c]), sort=True)[0].astype(np.float32)
        codes[c] = np.where(index < 0, np.nan, index)
    X = np.stack([codes[c] for c in features], axis=1).astype(np.float32)
    return X, TableFeaturizer(options, numeric=numeric, categorical=text)


def _warn_id_like(table: pd.DataFrame, text: list[str], path: Path) -> None:
    """A string column with a different value in every row names rows, it is no category."""
    n = len(table)
    for c in text:
        if n >= 20 and table[c].nunique(dropna=True) == n:
            warnings.warn(
                f"{path}: column `{c}` has a different value in each of its {n} rows; it looks "
                "like an id, not a category (one-hot would make one column per row). Leave it "
                "out of data.features, or use it as data.groups.",
                UserWarning,
                stacklevel=4,
            )


def load_table(
    path: str | Path,
    *,
    fmt: str,
    target: str,
    features: Sequence[str] | None = None,
    task: str = "auto",
    groups: str | None = None,
    preprocess: Any = "auto",
) -> Dataset:
    """Load a CSV or Parquet table: one row per sample, feature columns, one target.

    Args:
        path: the file.
        fmt: ``"csv"`` or ``"parquet"``.
        target: the target column.
        features: the feature columns; default every column but the target and ``groups``.
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (see below).
        groups: a column of group labels (e.g. patient id) for group splits; not a feature.
        preprocess: ``data.preprocess`` (``auto``, or its full form ``TablePreprocess`` or a
            mapping of it): string columns and gaps need a featurizer, fitted on each
            training part (``_tabular``); a table of numbers without gaps needs none.

    With ``task="auto"`` a target of strings, booleans or integers means classification, as do
    floats that are all whole numbers with at most 20 distinct values; other floats mean
    regression. Class names are the sorted distinct target values, as strings.

    Example:
        >>> ds = load_table("houses.csv", fmt="csv", target="price")  # doctest: +SKIP
    """
    if fmt not in _TABLE_FORMATS:
        raise DataError(
            f"unknown table format `{fmt}`{did_you_mean(fmt, _TABLE_FORMATS)}; "
            f"use one of {', '.join(_TABLE_FORMATS)}."
        )
    path = existing(path, "table")
    check_task(task, path)
    frame = _read_table(path, fmt)
    if len(frame) == 0:
        raise DataError(
            f"{path} has no data rows (columns: {', '.join(map(str, frame.columns))});"
            " expected one row per sample."
        )
    features = _feature_columns(frame, path, target, features, groups)
    X, featurizer = _features(frame[features], path, preprocess)

    y_column = frame[target]
    if missing := int(y_column.isna().sum()):
        raise DataError(
            f"target column `{target}` of {path} has {missing} missing value(s), at "
            f"{_rows(np.flatnonzero(y_column.isna().to_numpy()))} (data rows counted from 1 "
            "after the header); drop those rows before loading."
        )
    y, task, classes = target_of(
        y_column.to_numpy(), task, where=f"target column `{target}` of {path}"
    )

    group_values = None
    if groups is not None:
        if missing := int(frame[groups].isna().sum()):
            raise DataError(
                f"groups column `{groups}` of {path} has {missing} missing value(s);"
                " every sample needs a group."
            )
        group_values = frame[groups].to_numpy()
    return Dataset(
        X=X,
        y=y,
        task=task,
        name=path.stem,
        classes=classes,
        feature_names=features,
        groups=group_values,
        table=frame[features] if featurizer is not None else None,
        featurizer=featurizer,
    )


# ---------------------------------------------------------------------------------------------
# arrays


def load_npz(path: str | Path, *, task: str = "auto") -> Dataset:
    """Load arrays ``X`` and ``y`` (and optionally ``groups``) from an ``.npz`` file.

    ``X`` is ``(n, features)`` for tables, ``(n, H, W)`` for one-channel images (a channel axis
    is added) or ``(n, C, H, W)``. ``y`` is ``(n,)``, or ``(n, d)`` for a multi-output regression.
    The task is inferred as in ``load_table``. Object arrays are refused: nothing is unpickled.

    Example:
        >>> np.savez("digits.npz", X=images, y=labels)  # doctest: +SKIP
        >>> ds = load_npz("digits.npz")  # doctest: +SKIP
    """
    path = existing(path, "array file")
    check_task(task, path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            for key in ("X", "y"):
                if key not in keys:
                    raise DataError(
                        f"{path} has no array `{key}`; it holds: "
                        f"{', '.join(keys) or 'nothing'}. Save with "
                        "np.savez(path, X=features, y=targets)."
                    )
            X, y = archive["X"], archive["y"]
            group_values = archive["groups"] if "groups" in keys else None
    except DataError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(
                f"{path} holds object arrays, which tunelab does not unpickle; save "
                "numeric (or, for labels, fixed-width string) arrays instead."
            ) from None
        raise DataError(f"could not read {path} as .npz: {e}") from None
    except Exception as e:
        raise DataError(f"could not read {path} as .npz: {type(e).__name__}: {e}") from None

    if X.dtype.kind not in "biuf":
        raise DataError(f"array `X` in {path} has dtype {X.dtype}; expected numbers.")
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim not in (2, 4):
        raise DataError(
            f"array `X` in {path} has shape {X.shape}; expected (n, features), "
            "(n, H, W) or (n, C, H, W)."
        )
    X = X.astype(np.float32)
    if missing := count_non_finite(X):
        samples = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        shown = ", ".join(map(str, samples[:5])) + (", ..." if len(samples) > 5 else "")
        raise DataError(
            f"array `X` in {path} has {missing} missing (NaN) or infinite value(s), in "
            f"{len(samples)} sample(s): X[{shown}]; drop or fill them before loading."
        )
    n = len(X)
    if n == 0:
        raise DataError(f"array `X` in {path} has no samples; expected at least one.")
    for key, values in (("y", y), ("groups", group_values)):
        if values is not None and (values.ndim == 0 or len(values) != n):
            raise DataError(
                f"array `{key}` in {path} has shape {values.shape} but `X` has {n} "
                f"samples; expected one `{key}` entry per sample."
            )
    y, task, classes = target_of(y, task, where=f"array `y` in {path}")
    return Dataset(X=X, y=y, task=task, name=path.stem, classes=classes, groups=group_values)
