"""Data sets from the user's own files: CSV/Parquet tables, NPZ arrays and image folders.

Each loader reads the file once, checks what a model will need (numeric features, no missing
values, a usable target) and returns a ``Dataset``; every problem is a ``DataError`` that names
the file and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tunelab.data._dataset import Dataset, Task
from tunelab.errors import DataError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

# pandas and Pillow are imported inside the loaders that need them: together they add about
# half a second to every `import tunelab`.

__all__ = ["load_table", "load_npz", "load_image_folder"]

_TASKS = ("auto", "classification", "regression")
_TABLE_FORMATS = ("csv", "parquet")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Above this many distinct whole-number values, a float target is taken as a quantity.
_MAX_AUTO_CLASSES = 20


# ---------------------------------------------------------------------------------------------
# shared checks


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{what} `{path}` does not exist; check data.path (relative paths start "
            f"from the current directory, {Path.cwd()})."
        )
    return path


def _check_task(task: str, path: Path) -> None:
    if task not in _TASKS:
        raise DataError(
            f"unknown task `{task}` for {path}{did_you_mean(task, _TASKS)}; "
            f"use one of {', '.join(_TASKS)}."
        )


def _count_non_finite(values: np.ndarray) -> int:
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _encode_classes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class indices into the sorted distinct labels, and those labels as strings."""
    if values.dtype.kind == "f" and np.all(values == np.round(values)):
        values = values.astype(np.int64)  # 1.0, 2.0 -> classes "1", "2"
    elif values.dtype.kind not in "biuf":
        values = values.astype(str)
    labels, y = np.unique(values, return_inverse=True)
    return y.astype(np.int64).reshape(-1), [str(label) for label in labels]


def _target(
    values: np.ndarray, task: str, *, where: str
) -> tuple[np.ndarray, Task, list[str] | None]:
    """Turn raw target values into ``(y, task, classes)``; ``where`` names them in messages.

    ``task="auto"`` picks regression for floats that are not all whole numbers or that take
    more than 20 distinct values, and classification for everything else (strings, booleans,
    integers, a few whole-number floats).
    """
    numeric = values.dtype.kind in "biuf"
    if numeric and values.dtype.kind == "f" and (missing := _count_non_finite(values)):
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


# ---------------------------------------------------------------------------------------------
# tables


def _read_table(path: Path, fmt: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path} is empty; expected a header row and at least one data row."
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


def load_table(
    path: str | Path,
    *,
    fmt: str,
    target: str,
    features: Sequence[str] | None = None,
    task: str = "auto",
    groups: str | None = None,
) -> Dataset:
    """Load a CSV or Parquet table: one row per sample, numeric feature columns, one target.

    Args:
        path: the file.
        fmt: ``"csv"`` or ``"parquet"``.
        target: the target column.
        features: the feature columns; default every column but the target and ``groups``.
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (see below).
        groups: a column of group labels (e.g. patient id) for group splits; not a feature.

    With ``task="auto"`` a target of strings, booleans or integers means classification, as do
    floats that are all whole numbers with at most 20 distinct values; other floats mean
    regression. Class names are the sorted distinct target values, as strings.

    Example:
        >>> ds = load_table("houses.csv", fmt="csv", target="price")  # doctest: +SKIP
    """
    import pandas as pd

    if fmt not in _TABLE_FORMATS:
        raise DataError(
            f"unknown table format `{fmt}`{did_you_mean(fmt, _TABLE_FORMATS)}; "
            f"use one of {', '.join(_TABLE_FORMATS)}."
        )
    path = _existing(path, "table")
    _check_task(task, path)
    frame = _read_table(path, fmt)
    if len(frame) == 0:
        raise DataError(
            f"{path} has no data rows (columns: {', '.join(map(str, frame.columns))});"
            " expected one row per sample."
        )
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

    table = frame[features]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        kinds = ", ".join(f"`{c}` ({table[c].dtype})" for c in text)
        raise DataError(
            f"non-numeric feature column(s) in {path}: {kinds}. Encode them as "
            "numbers first (e.g. one-hot with pandas.get_dummies) or leave them out "
            "of data.features."
        )
    X = table.to_numpy(dtype=np.float32, na_value=np.nan)
    bad = ~np.isfinite(X)
    if bad.any():
        listed = "; ".join(
            f"`{c}` ({bad[:, j].sum()}) at {_rows(np.flatnonzero(bad[:, j]))}"
            for j, c in enumerate(features)
            if bad[:, j].any()
        )
        raise DataError(
            f"missing (NaN) or infinite values in feature column(s) of {path}: {listed} "
            "(data rows counted from 1 after the header). Drop or fill those rows before "
            "loading."
        )

    y_column = frame[target]
    if missing := int(y_column.isna().sum()):
        raise DataError(
            f"target column `{target}` of {path} has {missing} missing value(s), at "
            f"{_rows(np.flatnonzero(y_column.isna().to_numpy()))} (data rows counted from 1 "
            "after the header); drop those rows before loading."
        )
    y, task, classes = _target(
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
    path = _existing(path, "array file")
    _check_task(task, path)
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
    if missing := _count_non_finite(X):
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
    y, task, classes = _target(y, task, where=f"array `y` in {path}")
    return Dataset(X=X, y=y, task=task, name=path.stem, classes=classes, groups=group_values)


# ---------------------------------------------------------------------------------------------
# image folders


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def load_image_folder(
    path: str | Path,
    *,
    size: Sequence[int] | int | None = None,
    grayscale: bool | None = None,
) -> Dataset:
    """Load a folder with one sub-folder of images per class, e.g. ``pets/cat/1.jpg``.

    Args:
        path: the folder; its sub-folder names, sorted, are the classes.
        size: ``[H, W]`` (or one int for a square) to resize every image to, bilinearly.
            Needed when the images differ in size.
        grayscale: one channel (True) or RGB (False); by default one channel exactly when
            every image is grayscale.

    Images (png, jpg, jpeg, bmp, gif, tif, webp) become float32 in ``[0, 1]``, shape
    ``(n, C, H, W)``; other files are ignored.
    """
    from PIL import Image, UnidentifiedImageError

    root = _existing(path, "image folder")
    if not root.is_dir():
        raise DataError(f"{root} is a file; expected a folder with one sub-folder per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = len(_image_files(root))
        found = f" (found {loose} image(s) directly in it)" if loose else ""
        raise DataError(
            f"{root} has no class sub-folders{found}; expected one sub-folder per "
            "class, e.g. cats/ and dogs/, each holding that class's images."
        )
    if len(class_dirs) < 2:
        raise DataError(
            f"{root} has a single class sub-folder ({class_dirs[0].name}); "
            "classification needs at least two."
        )

    # First pass: headers only, to learn modes and sizes before decoding any pixels.
    files: list[Path] = []
    labels: list[int] = []
    modes: list[str] = []
    sizes: dict[tuple[int, int], Path] = {}
    for label, folder in enumerate(class_dirs):
        found = _image_files(folder)
        if not found:
            raise DataError(
                f"class folder {folder} holds no images; expected files ending in "
                f"{', '.join(sorted(_IMAGE_SUFFIXES))}. Add images or remove it."
            )
        for file in found:
            try:
                with Image.open(file) as image:
                    modes.append(image.mode)
                    sizes.setdefault((image.height, image.width), file)
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(
                    f"could not read image {file}: {e}. Replace or remove it."
                ) from None
            files.append(file)
            labels.append(label)

    if size is None and len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        raise DataError(
            f"images in {root} differ in size: {f1} is {s1[0]}x{s1[1]} (HxW) but "
            f"{f2} is {s2[0]}x{s2[1]}; set `data.size: [H, W]` to resize them all."
        )
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    else:
        height, width = next(iter(sizes))
    if grayscale is None:
        grayscale = all(
            mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") for mode in modes
        )

    channels = 1 if grayscale else 3
    X = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                X[i] = _pixels(image, grayscale, (height, width))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"could not read image {file}: {e}. Replace or remove it.") from None
    y = np.asarray(labels, dtype=np.int64)
    return Dataset(
        X=X, y=y, task="classification", name=root.name, classes=[p.name for p in class_dirs]
    )


def _pixels(image: Image.Image, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    """One image as float32 ``(C, H, W)`` in ``[0, 1]``, resized bilinearly to ``size``."""
    from PIL import Image

    if grayscale and image.mode.startswith(("I", "F")):
        # 16-bit and float grayscale: scale in float so no precision is lost to 8 bits.
        peak = 1.0 if image.mode == "F" else 65535.0
        image = Image.fromarray(np.asarray(image, dtype=np.float32) / peak)
        scale = 1.0
    else:
        image = image.convert("L" if grayscale else "RGB")
        scale = 1.0 / 255.0
    if (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) * scale
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
