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
from tunelab.errors import SpecError, StudyFailed, TunelabError, raise_on_sigterm
from tunelab.spec import parse_spec
from tunelab.train import Prepared, prepare
from tunelab.tune._console import StudyConsole
from tunelab.tune._join import (
    check_fingerprints,
    data_fingerprints,
    pick_study,
    published,
    worker_seed,
)
from tunelab.tune._objective import TrialContext
from tunelab.tune._open import OpenStudy, trial_context
from tunelab.tune._samplers import build_pruner, build_sampler
from tunelab.tune._search import run_worker
from tunelab.tune._space import parse_space
from tunelab.tune._study import open_storage, quiet_optuna

__all__ = ["run_processes", "worker_process", "worker_state", "worker_payload", "join_study"]


def run_processes(
    opened: OpenStudy, *, workers: int, deadline: float | None, console: StudyConsole
) -> None:
    """Spawn ``workers`` processes on this machine; the main process only watches."""
    mp = multiprocessing.get_context("spawn")
    payload = worker_payload(opened, deadline, workers=workers)
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


def worker_payload(opened: OpenStudy, deadline: float | None, *, workers: int) -> dict:
    """What a worker process (or a Ray task) needs to run the study's trials."""
    return {
        "spec": opened.spec.model_dump(mode="json"),
        "folder": str(opened.folder),
        "storage": opened.storage,
        "total": opened.total,
        "deadline": deadline,
        "threads": max(1, (os.cpu_count() or 1) // workers),
        "seed": opened.seed,
        "splits": _splits_payload(opened.prep.splits),
    }


def worker_process(payload: dict) -> None:
    """A worker process: its own torch threads, data loaded once, trials until done."""
    try:
        _work(payload)
    except TunelabError as exc:  # a message for a person (a full disk), not a traceback
        print(f"error: worker {payload['index']}: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


def _work(payload: dict, prep: Prepared | None = None) -> None:
    """Run trials as ``payload`` says; ``prep``: the data when already prepared here."""
    raise_on_sigterm()  # the parent stops its workers with SIGTERM: their trials say so
    with quiet_optuna():
        ctx, study, folder = worker_state(payload, prep)
        run_worker(ctx, study, folder, total=payload["total"], deadline=payload["deadline"])


def worker_state(
    payload: dict, prep: Prepared | None = None
) -> tuple[TrialContext, optuna.Study, Path]:
    """What a worker needs to run the study's trials: its context, the study with this
    worker's sampler, the folder of its trial files. Sets this process's torch threads."""
    import torch

    torch.set_num_threads(payload["threads"])
    spec = parse_spec(payload["spec"])
    if spec.train.device == "auto" and torch.cuda.is_available():  # spread workers over GPUs
        spec.train.device = f"cuda:{payload['index'] % torch.cuda.device_count()}"
    folder = Path(payload["folder"])
    params = parse_space(spec.tune, spec)
    if prep is None:
        prep = prepare(spec, splits=_splits_from(payload["splits"]))
    ctx = trial_context(spec, params, prep, folder)
    storage, _ = open_storage(folder, payload["storage"])
    # one grid order for all workers (grid point = trial number); other samplers differ, and
    # a worker that joined from elsewhere shares its seed with no other machine's
    seed = payload["seed"]
    if spec.tune.sampler.name != "grid":
        joined = payload.get("joined")
        seed = worker_seed(seed, payload["index"]) if joined else seed + payload["index"]
    with quiet_optuna():
        study = optuna.load_study(
            study_name=spec.name,
            storage=storage,
            sampler=build_sampler(spec.tune.sampler, params, seed=seed),
            pruner=build_pruner(spec.tune.pruner),
        )
    return ctx, study, folder


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


def join_study(
    storage: str, name: str, *, out: Path | None = None, workers: int = 1
) -> tuple[str, int, Path]:
    """``tunelab worker``: join the study ``name`` in ``storage`` from this machine and run its
    trials until the total is met. Returns the study's name, how many trials it holds, and the
    folder of this machine's trial files (``out``, default ``studies/<name>``)."""
    if workers < 1:
        raise SpecError(f"--workers: expected at least 1; got {workers}")
    storage_obj, url = open_storage(Path("."), storage)
    name = pick_study(storage_obj, storage, name)
    with quiet_optuna():
        study = optuna.load_study(study_name=name, storage=storage_obj)
    record = published(study)
    spec = parse_spec(record["spec"])
    prep = prepare(spec)  # the data the spec names, on this machine
    check_fingerprints(record, data_fingerprints(prep.ds, prep.splits), name)
    folder = Path(out) if out is not None else Path("studies") / name
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "spec": record["spec"],
        "folder": str(folder),
        "storage": url,
        "total": record["total"],
        "deadline": record["deadline"],
        "threads": max(1, (os.cpu_count() or 1) // workers),
        "seed": record["seed"],
        "splits": _splits_payload(prep.splits),
        "joined": True,
    }
    if workers == 1:
        _work(payload | {"index": 0}, prep)
    else:
        mp = multiprocessing.get_context("spawn")
        procs = [mp.Process(target=worker_process, args=(payload | {"index": i},))
                 for i in range(workers)]  # fmt: skip
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except BaseException:
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(timeout=10)
            raise
    return name, len(study.get_trials(deepcopy=False)), folder
