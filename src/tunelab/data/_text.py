"""A text folder (one sub-folder of ``.txt`` files per class) as hashed bag-of-words vectors,
for the ``python`` source: ``data: {source: python, factory: tunelab.data:text_folder,
kwargs: {path: reviews, features: 4096}}`` (what ``tunelab init`` writes for a text folder).

Each file becomes a float32 vector of ``features`` counts: its lower-cased words, each hashed
(CRC-32, the same on every machine and every run) into one of ``features`` slots, then
``log(1 + count)``. The targets are the class indices of the sorted sub-folder names.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from tunelab.errors import DataError

__all__ = ["text_folder", "hashed_words"]

_WORD = re.compile(r"\w+")


def hashed_words(text: str, features: int) -> np.ndarray:
    """One text as ``log1p`` of its hashed word counts, shape ``(features,)``."""
    slots = [zlib.crc32(w.encode()) % features for w in _WORD.findall(text.lower())]
    counts = np.bincount(np.asarray(slots, dtype=np.int64), minlength=features)
    return np.log1p(counts).astype(np.float32)


def text_folder(path: str | Path, features: int = 4096) -> list[tuple[np.ndarray, int]]:
    """Every text file under ``path/<class>/`` as ``(vector, class index)``, classes sorted."""
    from tunelab.data._inspect import TEXT_SUFFIXES

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"text folder `{root}` does not exist or is not a folder")
    if features < 2:
        raise DataError(f"text_folder: features must be at least 2; got {features}")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples = [
        (hashed_words(file.read_text(errors="replace"), features), label)
        for label, folder in enumerate(classes)
        for file in sorted(folder.iterdir())
        if file.is_file() and file.suffix.lower() in TEXT_SUFFIXES
    ]
    if len(classes) < 2 or not samples:
        raise DataError(f"{root}: expected at least two class sub-folders of text files")
    return samples
