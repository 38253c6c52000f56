"""Pooled embeddings of a frozen encoder, computed once and kept on disk.

:func:`embed` runs an encoder over token ids without gradients, in eval mode, in chunks sorted
by length (each chunk cut to its longest text, so padding is minimal), under bf16 autocast on
CUDA and on the CPU's threads otherwise, with a progress bar on a terminal.
:class:`EmbeddingTable` holds the embeddings of a set of id rows, found again by a row key
(:func:`row_keys`: a position-weighted sum of the ids, computed on the device, the same for a
row however far it is padded). :func:`cached_table` reads the table of a data set's rows from
the cache folder, or computes and writes it there: the file name is the encoder's files hash,
the pooling, the ids' width and a fingerprint of the rows (``TUNELAB_CACHE``, else
``~/.cache/tunelab``; safetensors).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["EmbeddingTable", "row_keys", "embed", "cached_table", "cache_dir", "CHUNK"]

CHUNK = 64  # texts per encoder pass
_POSITIONS = 4096
_WEIGHTS: dict[str, torch.Tensor] = {}  # per device: the fixed random weights of row_keys


def cache_dir() -> Path:
    """Where embeddings are kept: ``$TUNELAB_CACHE``, else ``~/.cache/tunelab``."""
    root = os.environ.get("TUNELAB_CACHE") or Path.home() / ".cache" / "tunelab"
    return Path(root) / "embeddings"


def row_keys(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """One int64 key per row of ids (wrapping arithmetic): padding adds nothing, so a text
    padded to any width has the same key."""
    key = str(ids.device)
    if key not in _WEIGHTS:
        gen = torch.Generator().manual_seed(20141025)
        weights = torch.randint(-(2**62), 2**62, (_POSITIONS,), generator=gen, dtype=torch.int64)
        _WEIGHTS[key] = weights.to(ids.device)
    ids = ids.long()
    codes = torch.where(ids == pad_id, torch.zeros_like(ids), ids + 1)
    return (codes * _WEIGHTS[key][: ids.shape[1]]).sum(dim=1)


class EmbeddingTable:
    """Embeddings of known rows, looked up by :func:`row_keys` (sorted, on the device)."""

    def __init__(self, keys: torch.Tensor, vectors: torch.Tensor) -> None:
        order = torch.argsort(keys)
        self.keys, self.vectors = keys[order], vectors[order]

    def to(self, device: torch.device) -> EmbeddingTable:
        if self.keys.device != device:
            self.keys, self.vectors = self.keys.to(device), self.vectors.to(device)
        return self

    def lookup(self, keys: torch.Tensor) -> torch.Tensor | None:
        """The rows' embeddings, or None when any row is not in the table (one host sync)."""
        self.to(keys.device)
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        if not bool((self.keys[pos] == keys).all()):  # sync point: one per batch
            return None
        return self.vectors[pos]


def _progress(total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "embedding texts",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty() or total <= CHUNK,
        console=None,
    )


@torch.no_grad()
def embed(
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ids: torch.Tensor,
    pad_id: int,
    *,
    show: bool = True,
) -> torch.Tensor:
    """``encode(ids, mask)`` over every row of ``ids``, in chunks sorted by length; float32
    embeddings in the rows' order."""
    ids = ids.long()
    mask = ids != pad_id
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    limits = lengths.tolist()
    out: torch.Tensor | None = None
    cuda = ids.device.type == "cuda"
    with _progress(len(order) if show else 0) as bar:
        task = bar.add_task("embed", total=len(order))
        for start in range(0, len(order), CHUNK):
            rows = torch.as_tensor(order[start : start + CHUNK], device=ids.device)
            width = max(1, limits[order[start]])  # the longest of this chunk
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                vectors = encode(ids[rows, :width], mask[rows, :width]).float()
            if out is None:
                out = torch.empty(len(ids), vectors.shape[1], device=ids.device)
            out[rows] = vectors
            bar.advance(task, len(rows))
    return out if out is not None else torch.empty(0, 0)


def cached_table(
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ids: torch.Tensor,
    pad_id: int,
    *,
    identity: str,
    disk: bool,
) -> EmbeddingTable:
    """The table of every distinct row of ``ids``: read from the cache folder when a file of
    this ``identity`` (encoder files hash and pooling) and these rows is there, else computed
    (and, with ``disk``, written there)."""
    from safetensors.torch import load_file, save_file

    keys = row_keys(ids, pad_id)
    unique, first = _first_rows(keys)
    digest = hashlib.blake2b(unique.cpu().numpy().tobytes(), digest_size=16).hexdigest()
    path = cache_dir() / f"{identity}-w{ids.shape[1]}-{digest}.safetensors"
    if disk and path.is_file():
        stored = load_file(path, device=str(ids.device))
        if torch.equal(stored["keys"], unique):
            return EmbeddingTable(stored["keys"], stored["vectors"])
    vectors = embed(encode, ids[first], pad_id)
    if disk:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}")
        save_file({"keys": unique.cpu(), "vectors": vectors.cpu().contiguous()}, part)
        os.replace(part, path)
    return EmbeddingTable(unique, vectors)


def _first_rows(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted distinct keys and, for each, the index of a row that has it."""
    unique, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    first = torch.empty(len(unique), dtype=torch.long, device=keys.device)
    first.scatter_(0, inverse, torch.arange(len(keys), device=keys.device))
    return unique, first
