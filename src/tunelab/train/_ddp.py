"""Data-parallel training of one model on several processes (``--nproc N``, or under
``torchrun``): torch.distributed with gloo on CPU, nccl on CUDA.

Every rank loads the same data and splits, and shuffles with the same seeded generator, so all
ranks agree on each epoch's order; each optimizer step takes one global batch of the size the
spec says, and every rank trains on its own contiguous share of it. A rank's mean loss is
scaled by ``share * world / batch`` before backward, so the gradients DistributedDataParallel
averages are exactly the gradient of the global batch's mean loss, even when the shares are
uneven: N processes follow the 1-process run. The epoch's sums (loss, device metrics) are
all-reduced once per epoch, the non-finite check at its rare sync points, so every rank prints
and decides the same.

Rank 0 writes the run folder (spec, splits, history, checkpoints, weights, the one look at the
test part); every other rank trains into a temporary folder that is removed at its end and
never evaluates the test part. Validation is sharded like a batch and the outputs gathered
on every rank (the same numbers everywhere, so early stopping decides the same). Not supported under
DDP: L-BFGS (its line search would differ per rank); batch norm statistics stay per rank
(no SyncBatchNorm on CPU); augmentation and dropout draw per rank, so with them the run is
not bit-equal to one process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import torch

from tunelab._disk import read_json, write_json
from tunelab.errors import RunError, SpecError

__all__ = ["launch", "run_rank", "free_port", "stop_processes"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(job: dict, nproc: int) -> Path:
    """Run ``job`` (see :func:`run_rank`) on ``nproc`` processes on this machine; returns the
    run folder. A rank that dies ends the others, with a message that says how to go on."""
    import multiprocessing

    if nproc < 1:
        raise SpecError(f"--nproc: expected at least 1 process; got {nproc}")
    _refuse(job)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(nproc)}
    mp = multiprocessing.get_context("spawn")
    procs = [
        mp.Process(target=_rank_process, args=(job, env | {"RANK": str(r), "LOCAL_RANK": str(r)}))
        for r in range(nproc)
    ]
    for p in procs:
        p.start()
    try:
        failed = _watch(procs)
    except BaseException:
        stop_processes(procs)
        raise
    if failed is not None:
        rank, code = failed
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        out = Path(job["out"])
        again = (
            f"continue with: tunelab train --resume {out} --nproc {nproc}"
            if (out / "checkpoint.safetensors").is_file()
            else "no checkpoint was written yet: start it again"
        )
        raise RunError(f"data-parallel rank {rank} of {nproc} ended with {how}; the other "
                       f"ranks were stopped. The run's last checkpoint is kept; {again}")  # fmt: skip
    return Path(job["out"])


def _watch(procs) -> tuple[int, int] | None:
    """Wait for every rank; after the first that fails, stop the rest and return the
    (rank, exit code) to blame: one killed by a signal before one that saw its peer go."""
    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(timeout=0.2)
            if p.exitcode not in (0, None):
                time.sleep(1.0)  # the peers of a dead rank fail too: let the cause show
                failed = [
                    (r, q.exitcode) for r, q in enumerate(procs) if q.exitcode not in (0, None)
                ]
                stop_processes(procs)
                return min(failed, key=lambda f: (f[1] >= 0, f[0]))
    bad = [(r, p.exitcode) for r, p in enumerate(procs) if p.exitcode != 0]
    return bad[0] if bad else None


def stop_processes(procs) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()


def _rank_process(job: dict, env: dict) -> None:
    os.environ.update(env)
    code = 0
    try:
        run_rank(job)
    except Exception as exc:  # noqa: BLE001 - one line per rank, the parent says the rest
        print(f"error: rank {env['RANK']}: {type(exc).__name__}: {exc}", flush=True)
        code = 2
    finally:
        with contextlib.suppress(Exception):
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    if code:
        os._exit(code)  # no barrier waits for the others: the parent stops them


# what a resumed run reads (rank 0 rewrites some of them while the others copy: they copy
# before their first collective, and rank 0 writes no checkpoint before that)
_RESUME_FILES = ("spec.yaml", "splits.json", "env.json", "schema.json", "history.jsonl",
                 "checkpoint.safetensors")  # fmt: skip


def _refuse(job: dict) -> None:
    """What cannot run data-parallel, said before any process starts."""
    if job.get("resume"):
        return
    from tunelab.plugins import OPTIMIZERS
    from tunelab.spec import load_spec

    spec = load_spec(job["spec"], overrides=job.get("overrides") or [])
    if OPTIMIZERS.for_options(type(spec.train.optimizer)).extra.get("closure"):
        raise SpecError(
            f"train.optimizer: {spec.train.optimizer.name} (a line search per step) cannot run "
            "data-parallel: its steps would differ per rank; use --nproc 1"
        )


def run_rank(job: dict) -> Path:
    """This process's part of a data-parallel run (env: ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``): ``job`` holds ``spec`` and ``out`` (train) or
    ``resume`` (a run folder), ``overrides`` and ``quiet``."""
    import torch.distributed as dist

    from tunelab.train._record import resume, train

    _refuse(job)  # under torchrun too (launch checked it already)
    rank = int(os.environ["RANK"])
    cuda = torch.cuda.is_available() and os.environ.get("TUNELAB_DDP_BACKEND") != "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", init_method="env://")
    threads = max(1, (os.cpu_count() or 1) // dist.get_world_size())
    torch.set_num_threads(threads)
    scratch = None if rank == 0 else Path(tempfile.mkdtemp(prefix=f"tunelab-rank{rank}-"))
    try:
        if job.get("resume"):
            folder = Path(job["resume"])
            if scratch is not None:  # the other ranks continue from a copy of rank 0's state
                (scratch / "run").mkdir()
                for name in _RESUME_FILES:
                    if (folder / name).is_file():
                        shutil.copy2(folder / name, scratch / "run" / name)
                folder = scratch / "run"
            return resume(folder, quiet=job["quiet"] or rank > 0).path
        overrides = list(job.get("overrides") or [])
        out = job["out"] if scratch is None else scratch / "run"
        path = train(job["spec"], out=out, overrides=overrides, quiet=job["quiet"] or rank > 0).path
        if rank == 0:  # the run says how it was trained
            env = read_json(path / "env.json")
            env["data_parallel"] = {"world": dist.get_world_size(), "backend": dist.get_backend()}
            write_json(path / "env.json", env)
        return path
    finally:
        if scratch is not None:  # the other ranks' folders are scratch: nothing of them is kept
            shutil.rmtree(scratch, ignore_errors=True)
