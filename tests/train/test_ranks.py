"""The reductions data-parallel ranks share, in a real 2-process gloo group (a file store, so no
port is opened): the gathered validation outputs are every rank's share in rank order, for
uneven shares too, and equal what one process computes over the whole part."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tunelab.train._ranks import Ranks


def _gather_in_rank(rank: int, world: int, store: str, n: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        ranks = Ranks(rank, world)
        start, end = ranks.share(n)
        rows = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
        gathered = ranks.gather(rows[start:end] * 2, n)
        torch.save({"gathered": gathered, "share": (start, end)}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes: several seconds
def test_every_rank_gets_all_shares_in_order_for_uneven_shares(tmp_path):
    n, world = 7, 2  # shares of 4 and 3 rows
    out = str(tmp_path / "gathered")
    mp.spawn(_gather_in_rank, args=(world, str(tmp_path / "store"), n, out), nprocs=world)
    expected = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3) * 2
    shares = []
    for rank in range(world):
        result = torch.load(f"{out}.{rank}")
        assert torch.equal(result["gathered"], expected)
        shares.append(result["share"])
    assert shares == [(0, 4), (4, 7)]


def test_shares_of_any_rank_cover_the_items_once():
    ranks = Ranks(0, 3)
    shares = [ranks.share(10, r) for r in range(3)]
    assert shares == [(0, 4), (4, 7), (7, 10)]
    assert Ranks(2, 3).share(10) == shares[2]
