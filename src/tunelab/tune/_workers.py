"""Worker processes on this machine: spawned, each with its own torch threads and data, sharing
the study's storage; the main process only watches and prints."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np
import optuna

from tunelab.data import Fold, Splits
from tunelab.errors import StudyFailed, TunelabError, raise_on_sigterm
from tunelab.spec import parse_spec
from tunelab.train import prepare
from tunelab.tune._console import StudyConsole
from tunelab.tune._open import OpenStudy, trial_context
from tunelab.tune._samplers import build_pruner, build_sampler
from tunelab.tune._search import run_worker
from tunelab.tune._space import parse_space
from tunelab.tune._study import open_storage, quiet_optuna

__all__ = ["run_processes", "worker_process"]


def run_processes(
    opened: OpenStudy, *, workers: int, deadline: float | None, console: StudyConsole
) -> None:
    """Spawn ``workers`` processes on this machine; the main process only watches."""
    mp = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    payload = {
        "spec": opened.spec.model_dump(mode="json"),
        "folder": str(opened.folder),
        "storage": opened.storage,
        "total": opened.total,
        "deadline": deadline,
        "threads": max(1, cores // workers),
        "seed": opened.seed,
        "splits": _splits_payload(opened.prep.splits),
    }
    procs = [
        mp.Process(target=worker_process, args=(payload | {"index": i},), daemon=False)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            console.poll()
            for p in procs:
                p.join(timeout=0.5 / workers)
        console.poll()
    except BaseException:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed and len(crashed) == len(procs) and not console.finished():
        raise StudyFailed(
            f"every worker exited with an error (exit codes {crashed}) before finishing a trial; "
            "run with --workers 1 to see the error"
        )
    if crashed:
        console.note(f"{len(crashed)} worker(s) exited with codes {crashed}; their trials are kept")


def worker_process(payload: dict) -> None:
    """A worker process: its own torch threads, data loaded once, trials until done."""
    import torch

    raise_on_sigterm()  # the parent stops its workers with SIGTERM: their trials say so
    torch.set_num_threads(payload["threads"])
    spec = parse_spec(payload["spec"])
    if spec.train.device == "auto" and torch.cuda.is_available():  # spread workers over GPUs
        spec.train.device = f"cuda:{payload['index'] % torch.cuda.device_count()}"
    folder = Path(payload["folder"])
    params = parse_space(spec.tune, spec)
    splits = _splits_from(payload["splits"])
    ctx = trial_context(spec, params, prepare(spec, splits=splits), folder)
    storage, _ = open_storage(folder, payload["storage"])
    # one grid order for all workers (grid point = trial number); other samplers differ
    seed = payload["seed"] + (0 if spec.tune.sampler.name == "grid" else payload["index"])
    with quiet_optuna():
        study = optuna.load_study(
            study_name=spec.name,
            storage=storage,
            sampler=build_sampler(spec.tune.sampler, params, seed=seed),
            pruner=build_pruner(spec.tune.pruner),
        )
        try:
            run_worker(ctx, study, folder, total=payload["total"], deadline=payload["deadline"])
        except TunelabError as exc:  # a message for a person (a full disk), not a traceback
            print(f"error: worker {payload['index']}: {exc}", file=sys.stderr, flush=True)
            sys.exit(exc.exit_code)


def _splits_payload(splits: Splits) -> dict:
    """The main process's splits, for the workers (nested CV makes its own per outer fold)."""
    return {
        "kind": splits.kind,
        "seed": splits.seed,
        "test": splits.test.tolist(),
        "folds": [[f.train.tolist(), f.val.tolist()] for f in splits.folds],
    }


def _splits_from(parts: dict) -> Splits:
    return Splits(
        parts["kind"],
        np.asarray(parts["test"], np.int64),
        [Fold(np.asarray(t, np.int64), np.asarray(v, np.int64)) for t, v in parts["folds"]],
        parts["seed"],
    )
