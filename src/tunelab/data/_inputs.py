"""New data for predict, read by its suffix and checked against a run's schema; and the
predictions written by theirs.

Inputs: a table (``.csv``, ``.parquet``, ``.jsonl``: its feature columns are taken by name,
every other column is passed through to the output), arrays (``.npz`` with ``X``, or ``.npy``)
and an image folder (every image under it, sorted by path, decoded as in training). Outputs:
``.csv``, ``.parquet``, ``.jsonl`` (one row per sample) or ``.npz`` (arrays). Every problem is
a ``DataError`` that names the file and, for a table, the missing column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tunelab.data._file_checks import existing
from tunelab.data._schema import Schema
from tunelab.errors import DataError, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    Featurize = Callable[[pd.DataFrame, str], np.ndarray]

__all__ = [
    "NewData",
    "read_new_data",
    "frame_data",
    "frame_features",
    "array_features",
    "write_table",
    "INPUT_SUFFIXES",
    "OUTPUT_SUFFIXES",
]

INPUT_SUFFIXES = (".csv", ".parquet", ".jsonl", ".npz", ".npy", "an image folder")
OUTPUT_SUFFIXES = (".csv", ".parquet", ".jsonl", ".npz")
_TABLES = (".csv", ".parquet", ".jsonl")


@dataclass
class NewData:
    """Samples to predict: the model's input ``X`` (float32, ``(n, *in_shape)``; for a run on
    texts, the raw texts, which its saved featurizer transforms) and what is passed through to
    the output beside the predictions (a table's other columns, the image paths, an npz
    file's other arrays of length n)."""

    X: np.ndarray
    passthrough: dict[str, np.ndarray] = field(default_factory=dict)
    frame: pd.DataFrame | None = None  # a table's rows as read (for its own preprocessing)


def read_new_data(
    path: str | Path, schema: Schema, *, featurize: Featurize | None = None
) -> NewData:
    """Read ``path`` by its suffix (a folder: images) and check it against ``schema``
    (``featurize``: see :func:`frame_features`)."""
    path = existing(path, "input")
    if path.is_dir():
        return _image_folder(path, schema)
    suffix = path.suffix.lower()
    if suffix in _TABLES:
        return frame_data(_read_frame(path, suffix), schema, where=str(path), featurize=featurize)
    if featurize is not None:
        raise DataError(
            f"{path}: the run was trained on a table whose columns are encoded per training "
            f"part; give a table ({', '.join(_TABLES)}) with its columns: {schema.samples}"
        )
    if suffix in (".npz", ".npy"):
        return _arrays(path, suffix, schema)
    raise DataError(
        f"{path}: cannot read {suffix or 'a file without a suffix'} as input; use one of "
        f"{', '.join(INPUT_SUFFIXES)}"
    )


def _read_frame(path: Path, suffix: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True)
    except ImportError as e:
        raise DataError(
            f"reading {path} needs pyarrow: pip install 'tunelab[parquet]' ({e})"
        ) from None
    except Exception as e:  # parser errors of every kind: the message is what helps
        raise DataError(f"could not read {path}: {type(e).__name__}: {e}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def frame_data(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    where: str = "the input",
    featurize: Featurize | None = None,
) -> NewData:
    """A table's feature columns (or text column, for a run on texts) as the model's input;
    its other columns passed through."""
    if schema.kind == "text":
        from tunelab.data._featurize import texts_frame
        from tunelab.data._text_table import text_column

        texts = text_column(frame, schema.text, where=where)
        X = featurize(texts_frame(texts), where) if featurize is not None else texts
        others = [c for c in frame.columns if str(c) != schema.text]
        return NewData(X, {str(c): frame[c].to_numpy() for c in others}, frame)
    X = frame_features(frame, schema, where=where, featurize=featurize)
    others = [c for c in frame.columns if str(c) not in (schema.features or [])]
    return NewData(X, {str(c): frame[c].to_numpy() for c in others}, frame)


def frame_features(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    where: str = "the input",
    featurize: Featurize | None = None,
) -> np.ndarray:
    """The schema's feature columns of ``frame``, in training order, as float32; with
    ``featurize`` (a run's fitted featurizer: ``featurize(columns, where) -> X``) as it makes
    them (categories encoded, gaps filled)."""
    import pandas as pd

    if schema.kind != "table" or not schema.features:
        raise DataError(
            f"{where} is a table, but the run was trained on {schema.kind} samples of shape "
            f"{schema.in_shape}; give an .npz file (or an image folder) instead"
        )
    columns = [str(c) for c in frame.columns]
    for column in schema.features:
        if column not in columns:
            raise DataError(
                f"{where} has no column `{column}`{did_you_mean(column, columns)}; the run "
                f"was trained on the columns: {', '.join(schema.features)}"
            )
    table = frame[schema.features]
    if featurize is not None:
        return featurize(table, where)
    text = [c for c in schema.features if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise DataError(
            f"{where}: column(s) {', '.join(f'`{c}`' for c in text)} are not numeric, as "
            "they were in training"
        )
    X = np.array(table.to_numpy(dtype=np.float32, na_value=np.nan))  # writable, for torch
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(
            f"{where}: missing or infinite value in column `{schema.features[cols[0]]}` at data "
            f"row {rows[0] + 1} ({int(bad.sum())} in all); the run's model needs every value"
        )
    return X


def array_features(X: np.ndarray, schema: Schema, *, where: str = "the input") -> np.ndarray:
    """Numeric samples shaped ``(n, *in_shape)`` (a missing channel axis of one-channel
    images added) as float32."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: samples of dtype {X.dtype}; expected numbers")
    shape = tuple(schema.in_shape)
    if len(shape) == 3 and shape[0] == 1 and X.shape[1:] == shape[1:]:
        X = X[:, None]
    if X.ndim == len(shape) and tuple(X.shape) == shape:
        X = X[None]  # one sample
    if tuple(X.shape[1:]) != shape:
        raise DataError(
            f"{where}: samples of shape {tuple(X.shape[1:])}, but the run was trained on "
            f"samples of shape {shape}"
        )
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        first = int(np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))[0])
        raise DataError(f"{where}: missing or infinite values in sample {first}")
    return X


def _arrays(path: Path, suffix: str, schema: Schema) -> NewData:
    try:
        if suffix == ".npy":
            return NewData(
                array_features(np.load(path, allow_pickle=False), schema, where=str(path))
            )
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(
                f"{path} holds object arrays, which tunelab does not unpickle"
            ) from None
        raise DataError(f"could not read {path}: {e}") from None
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"could not read {path}: {type(e).__name__}: {e}") from None
    key = "X" if "X" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise DataError(
            f"{path} has no array `X`; it holds: {', '.join(arrays) or 'nothing'}. Save the "
            "samples with np.savez(path, X=samples)"
        )
    X = array_features(arrays.pop(key), schema, where=f"{path} (array {key})")
    kept = {k: v for k, v in arrays.items() if v.ndim >= 1 and len(v) == len(X)}
    return NewData(X, kept)


def _image_folder(folder: Path, schema: Schema) -> NewData:
    from tunelab.data._images import IMAGE_SUFFIXES, decode

    if schema.kind != "image":
        raise DataError(
            f"{folder} is a folder of images, but the run was trained on {schema.kind} samples "
            f"({schema.samples})"
        )
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    channels, height, width = schema.in_shape
    X = np.empty((len(files), channels, height, width), np.float32)
    for i, file in enumerate(files):
        X[i] = decode(file, grayscale=channels == 1, size=(height, width), resize=schema.resize)
    paths = np.array([str(f.relative_to(folder)) for f in files])
    return NewData(X, {"path": paths})


def write_table(path: str | Path, columns: dict[str, np.ndarray]) -> Path:
    """Write one row per sample, columns in order, by the suffix of ``path``."""
    import pandas as pd

    from tunelab._disk import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise DataError(
            f"{path}: cannot write {suffix or 'a file without a suffix'}; use one of "
            f"{', '.join(OUTPUT_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise DataError(f"{path}: the folder {path.parent} does not exist")
    if suffix == ".npz":  # object columns (a table's text) as fixed-width strings: no pickle
        plain = {k: v.astype(str) if v.dtype == object else v for k, v in columns.items()}
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, **plain)
        return path
    frame = pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in columns.items()})
    with atomic_write(path, "wb") as fh:
        if suffix == ".csv":
            fh.write(frame.to_csv(index=False).encode("utf-8"))
        elif suffix == ".jsonl":  # json, not pandas: its floats keep 10 decimals only
            names = list(columns)
            for row in zip(*(v.tolist() for v in columns.values()), strict=True):
                fh.write((json.dumps(dict(zip(names, row, strict=True))) + "\n").encode())
        else:
            frame.to_parquet(fh, index=False)
    return path
