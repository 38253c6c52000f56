"""Lazy data: samples read one by one through a DataLoader, never all in memory at once.

A lazy :class:`~tunelab.data.Dataset` keeps only its targets, group labels and one 16-byte
hash per sample in memory (:func:`scan` reads every sample once, streaming, to get them and
to check the shapes). Fingerprints and the leakage check read the hashes; preprocessing
statistics are fitted by streaming over a training part (:func:`fit_stats`); training and
prediction read a part through a DataLoader with workers and pinned memory (:class:`LazyPart`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tunelab.data._dataset import Dataset, Lazy
from tunelab.data._preprocess import Standardizer, fit_standardizer
from tunelab.errors import DataError

__all__ = ["Samples", "scan", "fit_stats", "LazyPart", "digest_of", "parse_bytes"]

_STATS_BATCH = 256  # samples per batch while fitting statistics or scanning


def parse_bytes(text: str | int) -> int:
    """``"512MB"``, ``"2GB"``, ``"300k"`` or a plain number of bytes, as bytes."""
    if isinstance(text, int):
        return text
    units = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9}
    value = text.strip().lower()
    number = value.rstrip("kmgb ")
    unit = value[len(number) :].strip()
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise ValueError(f"expected a size such as 512MB or 2GB; got {text!r}") from None


def as_input(x: Any) -> torch.Tensor:
    """One sample's input as a float32 tensor (from a tensor, an array or a list)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    array = np.asarray(x, dtype=np.float32)
    if not array.flags.writeable:  # a read-only view (a memory map...): torch wants its own
        array = array.copy()
    return torch.from_numpy(array)


class Samples(torch.utils.data.Dataset):
    """The inputs of a lazy data set's samples, as float32 tensors (targets stay in memory)."""

    def __init__(self, samples: Any) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> torch.Tensor:
        return as_input(self.samples[int(i)][0])


def digest_of(x: torch.Tensor) -> bytes:
    """The 16-byte hash of one sample's float32 bytes (the leakage check's sample id)."""
    return hashlib.blake2b(x.contiguous().numpy().tobytes(), digest_size=16).digest()


def _pair(item: Any, i: int, where: str) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(
            f"{where}: sample {i} is a {type(item).__name__}, not an (input, target) pair; "
            "__getitem__ must return (input, target)"
        )
    return item[0], item[1]


def _items(samples: Any, workers: int) -> Iterator[Any]:
    """Every sample of ``samples`` in order, read by ``workers`` processes (0: here)."""
    if workers == 0:
        return (samples[i] for i in range(len(samples)))
    loader = torch.utils.data.DataLoader(
        _Indexed(samples), batch_size=None, num_workers=workers, collate_fn=_keep
    )
    return iter(loader)


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, samples: Any) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        return self.samples[i]


def _keep(item: Any) -> Any:
    return item


def scan(
    samples: Any, *, where: str, workers: int = 0, keep: bool = False
) -> tuple[Lazy, list[Any], np.ndarray | None]:
    """Read every sample once: check each is ``(input, target)`` with the first one's input
    shape, hash it, collect its target. Returns ``(lazy, targets, X)``; ``X`` (the inputs
    stacked, float32) only with ``keep``, else None."""
    try:
        n = len(samples)
    except TypeError:
        raise DataError(f"{where} has no len(); a map-style torch Dataset needs __len__") from None
    if n < 2:
        raise DataError(f"{where} has {n} sample(s); training needs at least two")
    digests = np.empty(n, dtype="S16")
    targets: list[Any] = []
    X, shape = None, None
    for i, item in enumerate(_items(samples, workers)):
        raw, target = _pair(item, i, where)
        try:
            x = as_input(raw)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataError(f"{where}: the input of sample {i} is not numeric ({exc})") from None
        if shape is None:
            shape = tuple(x.shape)
            X = np.empty((n, *shape), np.float32) if keep else None
        elif tuple(x.shape) != shape:
            raise DataError(
                f"{where}: sample {i} has input shape {tuple(x.shape)} but sample 0 has "
                f"{shape}; every sample needs the same shape (resize or pad them in the Dataset)"
            )
        digests[i] = digest_of(x)
        targets.append(target.cpu().numpy() if isinstance(target, torch.Tensor) else target)
        if X is not None:
            X[i] = x.numpy()
    return Lazy(samples, shape, digests, workers), targets, X


def _loader(lazy: Lazy, batches: Iterable[Sequence[int]]) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        Samples(lazy.samples),
        batch_sampler=batches,
        num_workers=lazy.workers,
        pin_memory=torch.cuda.is_available(),
        # not persistent: each pass starts its workers and stops them at its end, so no
        # worker outlives the pass (a collected persistent loader stalled later code)
    )


def fit_stats(ds: Dataset, idx: np.ndarray, mode: str) -> Standardizer:
    """:func:`fit_standardizer` of the samples at ``idx``, streamed for a lazy data set.

    Per batch the mean and sum of squared deviations (float64), combined across batches
    exactly as one pass over all samples would give them (Chan et al.)."""
    if ds.lazy is None:
        return fit_standardizer(ds.X[idx], mode)
    if mode == "none":
        return fit_standardizer(np.zeros((1, 1), np.float32), mode)
    kind, axes = ("channels", (0, 2, 3)) if len(ds.lazy.shape) == 3 else ("features", (0,))
    count, mean, m2 = 0, 0.0, 0.0
    chunks = [idx[s : s + _STATS_BATCH].tolist() for s in range(0, len(idx), _STATS_BATCH)]
    for xb in _loader(ds.lazy, chunks):
        x = xb.to(torch.float64).reshape(xb.shape[0], *ds.lazy.shape)
        k = int(np.prod([x.shape[a] for a in axes]))
        b_mean = x.mean(dim=axes).numpy()
        b_m2 = ((x - torch.as_tensor(b_mean).reshape(_shape(kind, x))) ** 2).sum(dim=axes).numpy()
        delta, total = b_mean - mean, count + k
        mean = mean + delta * k / total
        m2 = m2 + b_m2 + delta**2 * count * k / total
        count = total
    std = np.sqrt(np.asarray(m2) / count)
    std = np.where(std > 1e-12, std, 1.0)
    return Standardizer(
        kind,
        np.asarray(mean).astype(np.float32).reshape(-1),
        std.astype(np.float32).reshape(-1),
    )


def _shape(kind: str, x: torch.Tensor) -> tuple[int, ...]:
    return (1, x.shape[1], 1, 1) if kind == "channels" else (1, *x.shape[1:])


@dataclass
class LazyPart:
    """A part of a lazy data set (its samples at ``idx``), read in batches onto ``device``."""

    lazy: Lazy
    idx: np.ndarray
    device: torch.device
    _sequential: dict[int, torch.utils.data.DataLoader] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.idx)

    def loader(self, batches: Iterable[Sequence[int]]) -> torch.utils.data.DataLoader:
        """A DataLoader over the data set's indices that ``batches`` yields, batch by batch."""
        return _loader(self.lazy, batches)

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """The part's inputs in order, ``size`` at a time, on the device (one loader per size,
        kept for every validation pass)."""
        if size not in self._sequential:
            order = [self.idx[s : s + size].tolist() for s in range(0, len(self.idx), size)]
            self._sequential[size] = self.loader(order)
        for xb in self._sequential[size]:
            yield xb.to(self.device, non_blocking=True)
