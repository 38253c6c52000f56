"""An epoch of training: the batches, and the loop of optimizer steps over them.

The batches are slices of a shuffled index tensor over data on the device (the fast path),
the same slices read through a DataLoader (a lazy part, see ``data._lazy``), or, under DDP, a
rank's share of each. All draw the same permutation from the same generator, so a lazy part
trains on the same batches, in the same order, as the same part held in memory.

Token-id sequences (an integer matrix: a text's ids, padded with id 0 at the end, the only
integer inputs tunelab makes) are padded per batch: each batch is cut to its longest sequence
(:func:`cut_to_longest`), so a batch of short texts costs what short texts cost. Their mask is
``ids != 0``, which the sequence models (``sequences=True`` in the model registry) derive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from tunelab.errors import SpecError
from tunelab.train._ranks import Ranks

if TYPE_CHECKING:
    from tunelab.data._lazy import LazyPart
    from tunelab.train._plan import Plan

__all__ = [
    "Batches",
    "StreamBatches",
    "batches_of",
    "epoch_runner",
    "is_sequences",
    "sequence_lengths",
    "cut_to_longest",
]


def is_sequences(X) -> bool:
    """Whether ``X`` holds token-id sequences: an integer matrix (one padded row per text)."""
    return isinstance(X, torch.Tensor) and X.ndim == 2 and not X.is_floating_point()


def sequence_lengths(X: torch.Tensor) -> np.ndarray:
    """Each row's length: the position after its last non-padding id (0 for an empty text),
    on the CPU (one sync, once per part)."""
    real = X != 0
    last = X.shape[1] - real.flip(1).to(torch.uint8).argmax(dim=1)
    return torch.where(real.any(dim=1), last, 0).cpu().numpy()


def cut_to_longest(xb: torch.Tensor, lengths: np.ndarray) -> torch.Tensor:
    """A batch of sequences cut to its longest one (``lengths``: the batch rows'; at least one
    position is kept, for a batch of empty texts)."""
    return xb[:, : max(1, int(lengths.max(initial=0)))]


class Batches:
    """An epoch's batches: slices of a shuffled index tensor over data on the device; under
    DDP, this rank's contiguous share of each global batch (and its loss factor ``scale``)."""

    def __init__(
        self, train: tuple[torch.Tensor, torch.Tensor], plan: Plan, gen, ranks: Ranks | None = None
    ) -> None:
        self.X, self.y = train
        self.device = self.y.device
        self.n, self.gen, self.ranks = self.y.shape[0], gen, ranks
        self.size = self.n if plan.full_batch else min(plan.spec.train.batch_size, self.n)
        # a lone last sample joins the batch before it (batch norm cannot train on one
        # sample); data-parallel: a last batch too small to give every rank a share, too
        n, size, world = self.n, self.size, ranks.world if ranks else 1
        small = n % size == 1 or (ranks is not None and 0 < n % size < world)
        self.steps = n // size if small and n > size else math.ceil(n / size)
        self.count = n * _target_dims(self.y)  # target values per epoch (metrics' finish)
        self.aug_gen, self.scale = gen, 1.0  # per rank under DDP; the rank's loss factor
        self.draws_augment = plan.augment is not None
        # token sequences: every batch cut to its longest (the lengths read once, here)
        self.lengths = sequence_lengths(self.X) if is_sequences(self.X) else None
        self.bucket = plan.spec.train.bucket

    def order(self) -> torch.Tensor | None:
        if self.ranks is not None and self.draws_augment:
            # augmentation draws per rank from its own stream, seeded from the shared one
            seed = int(torch.randint(2**62, (1,), generator=self.gen, device=self.gen.device))
            self.aug_gen = torch.Generator(device=self.gen.device)
            self.aug_gen.manual_seed(seed + self.ranks.rank)
        if self.steps == 1:
            return None
        order = torch.randperm(self.n, device=self.device, generator=self.gen)
        if self.bucket and self.lengths is not None:
            order = self._buckets(order)
        return order

    def _buckets(self, order: torch.Tensor) -> torch.Tensor:
        """Length bucketing: pools of ``bucket`` batches of the shuffled order, each sorted
        by length (stable), then every full batch moved to a place drawn from the same
        generator (the last, possibly larger, batch stays last)."""
        where = order.cpu().numpy()
        pool = self.bucket * self.size
        for start in range(0, self.n, pool):
            chunk = where[start : start + pool]
            where[start : start + pool] = chunk[np.argsort(self.lengths[chunk], kind="stable")]
        full = self.steps - 1
        moved = torch.randperm(full, generator=self.gen, device=self.gen.device).cpu().numpy()
        blocks = where[: full * self.size].reshape(full, self.size)[moved]
        where = np.concatenate([blocks.reshape(-1), where[full * self.size :]])
        return torch.as_tensor(where, device=self.device)

    def bounds(self) -> Iterator[tuple[int, int]]:
        """Each step's ``(start, end)`` in the epoch's order."""
        for s in range(self.steps):
            yield s * self.size, self.n if s == self.steps - 1 else (s + 1) * self.size

    def slices(self, order: torch.Tensor) -> Iterator[torch.Tensor]:
        for start, end in self.bounds():
            yield order[start:end]

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's ``(inputs, targets)`` batches, in a fresh order."""
        order = self.order()
        if order is None:  # one batch: the whole part (a rank's share of it under DDP)
            lo, hi = self.ranks.share(self.n) if self.ranks is not None else (0, self.n)
            if self.ranks is not None:
                self.scale = self.ranks.scale(hi - lo, self.n)
            yield self._cut(self.X[lo:hi], lo, hi, None), self.y[lo:hi]
            return
        where = order.cpu().numpy() if self.lengths is not None else None  # once an epoch
        for start, end in self.bounds():
            if self.ranks is not None:  # data-parallel: this rank's contiguous share
                lo, hi = self.ranks.share(end - start)
                self.scale = self.ranks.scale(hi - lo, end - start)
                start, end = start + lo, start + hi
            idx = order[start:end]
            yield self._cut(self.X[idx], start, end, where), self.y[idx]

    def _cut(self, xb: torch.Tensor, start: int, end: int, where: np.ndarray | None):
        """Sequences cut to the batch's longest (rows ``where[start:end]`` of the part, or
        ``start:end`` itself without an order); other inputs as they are."""
        if self.lengths is None:
            return xb
        rows = slice(start, end) if where is None else where[start:end]
        return cut_to_longest(xb, self.lengths[rows])


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


def batches_of(train, plan: Plan, gen, ranks: Ranks | None = None) -> Batches:
    """The batches of a training part: in memory (tensors) or lazy (a ``LazyPart``)."""
    if isinstance(train[0], torch.Tensor):
        return Batches(train, plan, gen, ranks)
    if ranks is not None:
        raise SpecError(
            "data-parallel training (--nproc) needs the training data in memory: set "
            "data.cache: memory, or train lazily on one process"
        )
    return StreamBatches(train, plan, gen)


def epoch_runner(model, optimizer, loss_fn, schedule, batches: Batches, plan: Plan, progress):
    """``run_epoch(step) -> (sums, lr, step)``: one epoch of optimizer steps; ``sums`` holds
    the summed loss, the first non-finite step (-1: none) and each device metric's sum, all
    still on the device (the caller reads them at its sync point)."""
    device, counted, steps = batches.device, plan.device_metrics, batches.steps
    take_step = _stepper(model, optimizer, loss_fn, plan, batches)
    ranks = batches.ranks
    check_every = max(1, steps // 10)

    def run_epoch(step: int) -> tuple[torch.Tensor, float, int]:
        model.train()
        loss_sum = torch.zeros((), device=device)
        sums = torch.zeros(len(counted), device=device)
        bad_step = torch.full((), -1, device=device, dtype=torch.long)
        for s, (xb, yb) in enumerate(batches.epoch()):
            if plan.augment is not None:
                xb = plan.augment(xb, batches.aug_gen)
            lr = schedule.apply(optimizer, step)
            out, data_loss = take_step(xb, yb)
            # on-device bookkeeping: no .item() inside the step
            loss_sum += data_loss * yb.shape[0]
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(data_loss), s, bad_step)
            if counted:  # the metrics' device forms (evaluate's registry)
                pred = plan.predictions(out, yb)
                sums += torch.stack([m.batch(pred, yb).float() for m in counted])
            step += 1
            if progress is not None and steps > 20 and s % max(1, steps // 50) == 0:
                progress(s + 1, steps)
            # rare sync point (about ten per epoch): a diverged run stops within its epoch
            if s % check_every == check_every - 1 and s + 1 < steps and _bad(bad_step, ranks):
                break
        if ranks is not None:  # the epoch's sums over every rank's share, once per epoch
            loss_sum, bad_step = ranks.all_sum(loss_sum), ranks.all_sum(bad_step, "max")
            sums = ranks.all_sum(sums) if counted else sums
        return torch.cat([loss_sum.reshape(1), bad_step.reshape(1).float(), sums]), lr, step

    return run_epoch


def _stepper(model: torch.nn.Module, optimizer, loss_fn, plan: Plan, batches: Batches):
    """``take_step(xb, yb) -> (outputs, data loss)``, both detached: forward, loss with the
    penalties, backward and one optimizer step (a closure for L-BFGS). Data-parallel: the
    forward runs through DistributedDataParallel and the rank's loss is scaled by its share
    (see :mod:`tunelab.train._ddp`)."""
    cfg = plan.spec.train
    penalised = [p for p in model.parameters() if p.ndim > 1] if cfg.l1 else []
    forward = model
    if batches.ranks is not None:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model)

    def forward_loss(xb, yb) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=plan.bf16):
            out = forward(xb)
        data_loss = loss_fn(out, yb)
        total = data_loss if batches.ranks is None else data_loss * batches.scale
        if penalised:
            total = total + cfg.l1 * sum(p.abs().sum() for p in penalised)
        if plan.l2:
            total = total + 0.5 * plan.l2 * sum(p.pow(2).sum() for p in model.parameters())
        return out, data_loss, total

    def closure_step(xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        kept: list = []

        def closure():
            optimizer.zero_grad(set_to_none=True)
            out, data_loss, total = forward_loss(xb, yb)
            total.backward()
            kept[:] = [out, data_loss]
            return total

        optimizer.step(closure)
        return kept[0].detach(), kept[1].detach()

    def plain_step(xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        out, data_loss, total = forward_loss(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        return out.detach(), data_loss.detach()

    return closure_step if plan.closure else plain_step


def _bad(bad_step: torch.Tensor, ranks: Ranks | None) -> bool:
    """Whether a step so far was non-finite, on any rank (every rank breaks together)."""
    if ranks is None:
        return bad_step.item() >= 0
    return ranks.all_sum(bad_step.clone(), "max").item() >= 0


def _target_dims(y: torch.Tensor) -> int:
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
