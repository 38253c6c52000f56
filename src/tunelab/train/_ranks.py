"""Where this process stands among data-parallel processes (see :mod:`tunelab.train._ddp`):
its rank, the world size, its share of a global batch, and the reductions the loop needs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Ranks", "ranks", "from_torchrun"]


@dataclass(frozen=True)
class Ranks:
    """This process's place among the data-parallel processes."""

    rank: int
    world: int

    def share(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """The ``[start, end)`` of this rank's (or ``rank``'s) contiguous share of ``n`` items."""
        rank = self.rank if rank is None else rank
        base, extra = divmod(n, self.world)
        start = rank * base + min(rank, extra)
        return start, start + base + (1 if rank < extra else 0)

    def scale(self, share: int, n: int) -> float:
        """Of the rank's mean loss over ``share`` items of a global batch of ``n``."""
        return share * self.world / n

    def all_sum(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        import torch.distributed as dist

        reduce = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
        dist.all_reduce(t, op=reduce)
        return t

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """The rows of every rank's share of ``n`` items, in rank order, on every rank:
        ``part`` holds this rank's share (shares differ by at most one row, so each is padded
        to the longest for the collective and trimmed after it)."""
        import torch.distributed as dist

        longest = -(-n // self.world)
        padded = part.new_zeros((longest, *part.shape[1:]))
        padded[: len(part)] = part
        pieces = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(pieces, padded)
        sizes = [end - start for start, end in (self.share(n, r) for r in range(self.world))]
        return torch.cat([piece[:size] for piece, size in zip(pieces, sizes, strict=True)])


def ranks() -> Ranks | None:
    """The data-parallel ranks, when a process group of more than one is running."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Ranks(dist.get_rank(), dist.get_world_size())


def from_torchrun() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets
    ``RANK``/``WORLD_SIZE``) for more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
