"""An epoch's batches: slices of a shuffled index tensor over data on the device (the fast
path), or the same slices read through a DataLoader (a lazy part, see ``data._lazy``).

Both draw the same permutation from the same generator, so a lazy part trains on the same
batches, in the same order, as the same part held in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from tunelab.data._lazy import LazyPart
    from tunelab.train._plan import Plan

__all__ = ["Batches", "StreamBatches", "batches_of"]


class Batches:
    """An epoch's batches: slices of a shuffled index tensor over data on the device."""

    def __init__(self, train: tuple[torch.Tensor, torch.Tensor], plan: Plan, gen) -> None:
        self.X, self.y = train
        self.device = self.y.device
        self.n, self.gen = self.y.shape[0], gen
        self.size = self.n if plan.full_batch else min(plan.spec.train.batch_size, self.n)
        # a lone last sample joins the batch before it (batch norm cannot train on one sample)
        n, size = self.n, self.size
        self.steps = n // size if n % size == 1 else math.ceil(n / size)
        self.count = n * _target_dims(self.y)  # target values per epoch (metrics' finish)

    def order(self) -> torch.Tensor | None:
        if self.steps == 1:
            return None
        return torch.randperm(self.n, device=self.device, generator=self.gen)

    def slices(self, order: torch.Tensor) -> Iterator[torch.Tensor]:
        for s in range(self.steps):
            end = self.n if s == self.steps - 1 else (s + 1) * self.size
            yield order[s * self.size : end]

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's ``(inputs, targets)`` batches, in a fresh order."""
        order = self.order()
        if order is None:
            yield self.X, self.y
            return
        for idx in self.slices(order):
            yield self.X[idx], self.y[idx]


class StreamBatches(Batches):
    """The same batches as :class:`Batches`, their inputs read through a DataLoader (workers,
    pinned memory with CUDA) and moved to the device; the targets stay on the device."""

    def __init__(self, train: tuple[LazyPart, torch.Tensor], plan: Plan, gen) -> None:
        super().__init__(train, plan, gen)
        self.part: LazyPart = train[0]
        self.index_lists = _IndexLists()
        self.loader = self.part.loader(self.index_lists)  # reads each epoch's lists

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order()
        if order is None:
            order = torch.arange(self.n, device=self.device)
        slices = list(self.slices(order)) if self.steps > 1 else [order]
        positions = order.cpu().numpy()  # one sync per epoch: the loader's index lists
        cuts = np.cumsum([len(s) for s in slices])[:-1]
        self.index_lists.lists = [self.part.idx[p].tolist() for p in np.split(positions, cuts)]
        for idx, xb in zip(slices, self.loader, strict=True):
            yield xb.to(self.device, non_blocking=True), self.y[idx]


class _IndexLists:
    """The loader's batch sampler: this epoch's lists of data set indices."""

    def __init__(self) -> None:
        self.lists: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.lists)

    def __len__(self) -> int:
        return len(self.lists)


def batches_of(train, plan: Plan, gen) -> Batches:
    """The batches of a training part: in memory (tensors) or lazy (a ``LazyPart``)."""
    lazy = not isinstance(train[0], torch.Tensor)
    return (StreamBatches if lazy else Batches)(train, plan, gen)


def _target_dims(y: torch.Tensor) -> int:
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
