"""What a user's data looks like before any spec exists: the facts ``tunelab init`` proposes a
spec from. A table (csv, parquet), an image folder or a text folder (one sub-folder per class).

Only what the proposal needs is read: a table once, the image headers (no pixels), the words of
each text file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunelab.data._file_checks import target_of
from tunelab.errors import DataError, did_you_mean

__all__ = ["TableFacts", "FolderFacts", "inspect_data", "TEXT_SUFFIXES"]

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md"})


@dataclass
class TableFacts:
    """A table: its target, task and the columns a model can take."""

    path: Path
    format: str
    rows: int
    target: str
    task: str
    classes: list[str] | None  # classification: the labels, sorted
    class_counts: list[int] | None
    features: list[str]  # every column a model can take (strings one-hot, gaps filled)
    text_columns: list[str] = field(default_factory=list)  # strings: one-hot per training part
    missing: dict[str, int] = field(default_factory=dict)  # columns with gaps: filled per part
    target_missing: int = 0
    ids: list[str] = field(default_factory=list)  # strings, a different one per row: left out

    kind = "table"


@dataclass
class FolderFacts:
    """A folder with one sub-folder per class, of images or of text files."""

    path: Path
    kind: str  # images | text
    classes: list[str]
    class_counts: list[int]
    size: tuple[int, int] | None = None  # images: the most common [H, W]
    sizes: int = 1  # images: how many different sizes
    grayscale: bool = False
    words: int = 0  # text: the median number of words per file

    @property
    def rows(self) -> int:
        return sum(self.class_counts)

    task = "classification"


def inspect_data(path: str | Path, *, target: str | None) -> TableFacts | FolderFacts:
    """The facts of the data at ``path``; a ``DataError`` naming the path when it cannot be."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"`{path}` does not exist; expected a .csv or .parquet table, or a folder with "
            "one sub-folder of images or text files per class"
        )
    if path.is_dir():
        if target is not None:
            raise DataError(
                f"--target names a table's column; {path} is a folder, whose classes are its "
                "sub-folders: leave --target out"
            )
        return _folder(path)
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: expected a .csv or .parquet file (or a folder); got `{path.suffix}`"
        )
    if target is None:
        raise DataError(f"{path} is a table: name its target column with --target COLUMN")
    return _table(path, fmt, target)


def _table(path: Path, fmt: str, target: str) -> TableFacts:
    import pandas as pd

    from tunelab.data._files import _read_table

    frame = _read_table(path, fmt)
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(
            f"--target `{target}` is not a column of {path}{did_you_mean(target, columns)}; "
            f"its columns are: {', '.join(columns)}"
        )
    values = frame[target]
    target_missing = int(values.isna().sum())
    known = values.dropna().to_numpy()
    if known.dtype == object:
        known = known.astype(str)
    y, task, classes = target_of(known, "auto", where=f"target column `{target}` of {path}")
    counts = None if classes is None else np.bincount(y, minlength=len(classes)).tolist()
    features, text, missing, ids = [], [], {}, []
    for column in columns:
        if column == target:
            continue
        if not pd.api.types.is_numeric_dtype(frame[column]):
            if len(frame) >= 20 and frame[column].nunique(dropna=True) == len(frame):
                ids.append(column)
                continue
            text.append(column)
        if n := int(frame[column].isna().sum()):
            missing[column] = n
        features.append(column)
    if not features:
        raise DataError(
            f"{path} has no feature column besides the target `{target}` (left out as ids, "
            f"a different string in every row: {', '.join(ids) or 'none'})"
        )
    return TableFacts(
        path, fmt, len(frame), target, task, classes, counts, features, text, missing,
        target_missing, ids,
    )  # fmt: skip


def _folder(root: Path) -> FolderFacts:
    from tunelab.data._images import IMAGE_SUFFIXES

    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"{root} has {len(classes)} class sub-folder(s); expected one sub-folder per "
            "class (at least two), e.g. cats/ and dogs/, each holding that class's files"
        )
    files = {c.name: sorted(p for p in c.iterdir() if p.is_file()) for c in classes}
    suffixes = Counter(p.suffix.lower() for found in files.values() for p in found)
    images = sum(n for s, n in suffixes.items() if s in IMAGE_SUFFIXES)
    texts = sum(n for s, n in suffixes.items() if s in TEXT_SUFFIXES)
    if not images and not texts:
        raise DataError(
            f"{root}: its class sub-folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            f" and no text files ({', '.join(sorted(TEXT_SUFFIXES))})"
        )
    kind = "images" if images >= texts else "text"
    wanted = IMAGE_SUFFIXES if kind == "images" else TEXT_SUFFIXES
    kept = {name: [p for p in found if p.suffix.lower() in wanted] for name, found in files.items()}
    empty = [name for name, found in kept.items() if not found]
    if empty:
        raise DataError(f"{root}: class folder(s) {', '.join(empty)} hold no {kind} files")
    facts = FolderFacts(root, kind, list(kept), [len(v) for v in kept.values()])
    every = [p for found in kept.values() for p in found]
    if kind == "images":
        _image_facts(facts, every)
    else:
        facts.words = int(np.median([len(p.read_text(errors="replace").split()) for p in every]))
    return facts


def _image_facts(facts: FolderFacts, files: list[Path]) -> None:
    from PIL import Image

    sizes: Counter = Counter()
    gray = True
    for file in files:
        try:
            with Image.open(file) as image:
                sizes[(image.height, image.width)] += 1
                gray = gray and image.mode in ("1", "L", "LA", "I", "I;16", "F")
        except OSError as e:
            raise DataError(f"could not read image {file}: {e}. Replace or remove it.") from None
    facts.size = sizes.most_common(1)[0][0]
    facts.sizes = len(sizes)
    facts.grayscale = gray
