"""One trial trained data-parallel (``tune.trial_nproc: N``): N rank processes train its folds
as ``tunelab train --nproc N`` trains one run (``train/_ddp.py``: the same shares of each
global batch, loss scaling, reductions and gathered validation, so N ranks follow one process).

The worker that asked the trial keeps it: it starts the ranks (gloo on 127.0.0.1 on the CPU,
nccl on CUDA with a GPU per rank, else gloo), forked from a fork server the worker starts once
with torch and tunelab imported, sends them its data set, splits and the trial's parameters,
and brokers the trial for them. Every rank runs the same fold loop on a stand-in trial
(:class:`RankTrial`): rank 0's reports and user attributes go through a pipe to the worker,
which calls the Optuna trial; at each pruning question rank 0 asks the worker and broadcasts
the answer, so every rank stops at the same epoch. Rank 0 writes the trial's files and returns
its outcome; the other ranks write into scratch folders the worker removes after the trial. A rank that
raises sends its exception before it exits; the worker then stops the others and the trial
fails with that rank's reason (a rank killed by a signal is named as the cause before the
peers that lost it), and the study goes on.

The fold loop and the error record come in as functions (``train``, ``describe``) from
``_objective``, which calls this module, so no import goes back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import wait
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tunelab.errors import SpecError

__all__ = ["run_ranks", "RankTrial", "refuse_parallel"]

# what a rank imports besides tunelab: torch's optimizers import torch._dynamo on first use,
# seconds a trial would pay each time its ranks start
_TORCH_PRELOAD = ("torch", "torch.distributed", "torch._dynamo", "torch.nn.parallel", "torch.optim")
_GRACE_S = 1.0  # after the first failure, how long the peers' messages may still arrive


def refuse_parallel(spec, *, nproc: int, lazy: bool) -> None:
    """What cannot train a trial data-parallel, said before any rank starts."""
    from tunelab.plugins import OPTIMIZERS

    if nproc < 2:
        return
    if lazy:
        raise SpecError(
            f"tune.trial_nproc: {nproc} needs the training data in memory, but this data set "
            "is read lazily (data.cache): set data.cache: memory or tune.trial_nproc: 1"
        )
    optimizer = spec.train.optimizer
    if OPTIMIZERS.for_options(type(optimizer)).extra.get("closure"):
        raise SpecError(
            f"train.optimizer: {optimizer.name} (a line search per step) cannot run with "
            f"tune.trial_nproc: {nproc}: its steps would differ per rank; set tune.trial_nproc: 1"
        )


class RankTrial:
    """The Optuna trial as a rank sees it: rank 0 forwards ``report`` and ``set_user_attr`` to
    the worker; ``should_prune`` is asked by rank 0 and its answer broadcast to every rank."""

    def __init__(self, number: int, rank: int, conn) -> None:
        self.number, self.rank, self.conn = number, rank, conn
        self.study = SimpleNamespace(pruner=SimpleNamespace(reasons={}))

    def report(self, value: float, step: int) -> None:
        if self.rank == 0:
            self.conn.send(("report", float(value), int(step)))

    def set_user_attr(self, key: str, value: Any) -> None:
        if self.rank == 0:
            self.conn.send(("attr", key, value))

    def should_prune(self) -> bool:
        import torch.distributed as dist

        answer: list = [False, None]
        if self.rank == 0:
            self.conn.send(("prune?",))
            answer = list(self.conn.recv())
        dist.broadcast_object_list(answer, src=0)  # every rank stops at the same epoch
        pruned, reason = answer
        if reason:
            self.study.pruner.reasons[self.number] = reason
        return bool(pruned)


def run_ranks(trial, ctx, outcome, folder: Path, *, train, describe):
    """Train the trial on ``ctx.nproc`` ranks; returns rank 0's outcome (a failed one with the
    failing rank's reason when a rank fails). ``train(trial, ctx, outcome, folder)`` is the
    fold loop each rank runs, ``describe(exc, text)`` the error record of an exception."""
    from tunelab.train import free_port, stop_processes

    nproc = ctx.nproc
    mp = _context()
    job = {
        "ctx": dataclasses.replace(ctx, prep=None),
        "ds": ctx.prep.ds,
        "splits": ctx.prep.splits,
        "device": str(ctx.prep.device),
        "number": trial.number,
        "outcome": outcome,
        "folder": str(folder),
        "threads": _threads(nproc),
        "train": train,
        "describe": describe,
    }
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(nproc)}
    pipes = [mp.Pipe() for _ in range(nproc)]
    procs = [
        mp.Process(target=_rank_main, args=(job, env | {"RANK": str(r)}, pipes[r][1]))
        for r in range(nproc)
    ]
    # the other ranks' trial folders: made and removed here, so a killed rank leaves none
    scratch = Path(tempfile.mkdtemp(prefix="tunelab-trial-ranks-"))
    job["scratch"] = str(scratch)
    try:
        for p in procs:
            p.start()
        for _, child in pipes:
            child.close()  # the ranks hold these ends: a rank gone reads as EOF here
        conns = [parent for parent, _ in pipes]
        return _broker(trial, conns, procs, outcome, nproc, folder)
    finally:
        stop_processes(procs)
        for parent, _ in pipes:
            parent.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _context():
    """Ranks are forked from a fork server started once per worker, a clean process (no
    threads, no CUDA) that imported torch and the tunelab modules this worker has imported
    (the data, metrics and training code a trial needs), so ranks start without importing."""
    mp = multiprocessing.get_context("forkserver")
    ours = sorted(m for m in sys.modules if m.startswith("tunelab.") and ".cli" not in m)
    mp.set_forkserver_preload([*_TORCH_PRELOAD, "tunelab.tune._objective", *ours])
    return mp


def _threads(nproc: int) -> int:
    import torch

    return max(1, torch.get_num_threads() // nproc)


def _broker(trial, conns: list, procs: list, outcome, nproc: int, folder: Path):
    """Answer the ranks until rank 0 returns its outcome or a rank fails."""
    open_conns = dict(enumerate(conns))
    errors: list[tuple[int, dict, str, str]] = []
    failed_at = None
    while True:
        waiting = [*open_conns.values(), *(p.sentinel for p in procs if p.exitcode is None)]
        if not waiting:  # every rank ended: only the grace period is left to wait out
            time.sleep(0.05)
        ready = wait(waiting, timeout=0.5) if waiting else []
        for rank, conn in list(open_conns.items()):
            if conn not in ready:
                continue
            try:
                message = conn.recv()
            except EOFError:
                del open_conns[rank]
                continue
            if message[0] == "done":
                for p in procs:  # the others end as rank 0 did (no collective is left)
                    p.join(timeout=30)
                return message[1]
            if message[0] == "error":
                errors.append(message[1:])
                failed_at = failed_at or time.monotonic()
            else:
                _answer(trial, conn, message)
        if failed_at is None and any(p.exitcode not in (0, None) for p in procs):
            failed_at = time.monotonic()
        if failed_at is None and all(p.exitcode == 0 for p in procs):
            failed_at = time.monotonic()  # every rank ended, none with an outcome
        if failed_at is not None and time.monotonic() - failed_at >= _GRACE_S:
            return _failed(outcome, errors, procs, nproc, folder)


def _answer(trial, conn, message: tuple) -> None:
    """A request of rank 0 for the Optuna trial."""
    kind, *args = message
    if kind == "report":
        trial.report(*args)
    elif kind == "attr":
        trial.set_user_attr(*args)
    elif kind == "prune?":
        pruned = trial.should_prune()
        reason = getattr(trial.study.pruner, "reasons", {}).get(trial.number) if pruned else None
        conn.send((pruned, reason))


def _failed(outcome, errors: list, procs: list, nproc: int, folder: Path):
    """The failed trial: the rank killed by a signal, else the first rank that raised."""
    killed = [(r, p.exitcode) for r, p in enumerate(procs) if (p.exitcode or 0) < 0]
    outcome.state = "FAIL"
    if killed:
        rank, code = killed[0]
        outcome.reason = (
            f"data-parallel rank {rank} of {nproc} ended with signal {signal.Signals(-code).name}"
        )
    elif errors:
        rank, error, reason, text = errors[0]
        outcome.reason, outcome.error = f"rank {rank} of {nproc}: {reason}", error
        (folder / "traceback.txt").write_text(text, encoding="utf-8")
    else:
        codes = [p.exitcode for p in procs]
        outcome.reason = f"data-parallel ranks ended without a result (exit codes {codes})"
    return outcome


def _rank_main(job: dict, env: dict, conn) -> None:
    """One rank of a trial: train its share, rank 0 sends the outcome; an exception is sent
    (type, message, traceback) before the process exits."""
    os.environ.update(env)
    rank = int(env["RANK"])
    try:
        outcome = _rank_trial(job, rank, conn)
        if rank == 0:
            conn.send(("done", outcome))
    except BaseException as exc:  # noqa: BLE001 - the worker records it, the trial fails
        text = "".join(traceback.format_exception(exc))
        reason = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            conn.send(("error", rank, job["describe"](exc, text), reason, text))
            conn.close()
        os._exit(2)  # no barrier waits for the others: the worker stops them
    with contextlib.suppress(Exception):
        import torch.distributed as dist

        dist.destroy_process_group()
    conn.close()


def _rank_trial(job: dict, rank: int, conn):
    import torch
    import torch.distributed as dist

    from tunelab.spec import parse_spec
    from tunelab.train import Prepared, resolve

    torch.set_num_threads(job["threads"])
    world = int(os.environ["WORLD_SIZE"])
    device = torch.device(job["device"])
    backend = "gloo"
    if device.type == "cuda":  # a GPU per rank where there are enough, from the worker's own
        count = torch.cuda.device_count()
        device = torch.device("cuda", ((device.index or 0) + rank) % count)
        torch.cuda.set_device(device)
        if count >= world and os.environ.get("TUNELAB_DDP_BACKEND") != "gloo":
            backend = "nccl"
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
    if rank == 0:  # the trial says how it was trained, as a run's env.json does
        conn.send(("attr", "data_parallel", {"world": world, "backend": backend}))
    ctx, ds = job["ctx"], job["ds"]
    spec = parse_spec(ctx.base)
    X = torch.tensor(ds.X, dtype=torch.float32, device=device)
    y = torch.tensor(ds.y, device=device)
    ctx.prep = Prepared(ds, job["splits"], X, y, resolve(spec, ds, device=device))
    folder = Path(job["folder"]) if rank == 0 else Path(job["scratch"]) / f"rank{rank}"
    folder.mkdir(parents=True, exist_ok=True)
    return job["train"](RankTrial(job["number"], rank, conn), ctx, job["outcome"], folder)
