"""Optuna underneath: storage, samplers, pruners, and the bookkeeping around trials.

Samplers, pruners and storage are Optuna's own; this module only chooses and configures them.
SQLite (the default) runs in WAL mode with a long busy timeout so that several local workers
never see 'database is locked'. Trials are created under a file lock so that N workers produce
exactly the requested total, and a trial left RUNNING by a process that died is marked FAIL
with the reason ``interrupted``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tunelab.errors import SpecError
from tunelab.spec import PrunerSpec, SamplerSpec
from tunelab.tune._space import Param, grid_space

__all__ = [
    "open_storage",
    "redact",
    "build_sampler",
    "build_pruner",
    "study_lock",
    "fail_interrupted",
    "worker_token",
    "heartbeat",
    "HEARTBEAT_S",
]

HEARTBEAT_S = 5
GRACE_S = 30


def open_storage(folder: Path, url: str | None = None) -> tuple[optuna.storages.RDBStorage, str]:
    """The study's storage: ``folder/study.db`` (SQLite, WAL) or any SQLAlchemy URL."""
    if url is None:
        url = f"sqlite:///{folder / 'study.db'}"
    url = _driver(url)
    engine_kwargs: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        engine_kwargs = {"creator": functools.partial(_sqlite_connection, url[len("sqlite:///") :])}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError as exc:
        raise SpecError(
            f"storage {url.split('://')[0]}: a database driver is missing ({exc}). For PostgreSQL "
            "install `pip install tunelab[postgres]`"
        ) from None
    except Exception as exc:  # sqlalchemy errors: unreachable server, bad URL
        raise SpecError(
            f"cannot open study storage {redact(url)}: {type(exc).__name__}: {exc}"
        ) from None
    return storage, url


def _sqlite_connection(path: str) -> sqlite3.Connection:
    """A connection in WAL mode (readers never block the writer) with a long busy timeout.

    synchronous=NORMAL: in WAL mode a commit is not fsynced, only checkpoints are; a killed
    process loses nothing (the data is in the OS), a power cut may lose the last commits but
    never corrupts the file. This takes a trial's storage cost from tens of ms to a few.
    """
    con = sqlite3.connect(path, timeout=120, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA busy_timeout=120000")
    return con


def _driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 when that is the driver installed (tunelab[postgres])."""
    if url.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def build_sampler(
    spec: SamplerSpec, params: list[Param], *, seed: int
) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for a name; ``grid`` gets the finite space of every entry."""
    samplers = optuna.samplers
    if spec.name == "grid":
        return samplers.GridSampler(grid_space(params), seed=seed)
    if spec.name == "random":
        return samplers.RandomSampler(seed=seed)
    if spec.name == "tpe":
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return samplers.TPESampler(
            seed=seed,
            n_startup_trials=spec.n_startup_trials,
            multivariate=spec.multivariate,
            group=spec.multivariate,
            constant_liar=True,
        )
    if spec.name == "qmc":
        return samplers.QMCSampler(seed=seed)
    if spec.name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=spec.n_startup_trials)
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise SpecError(
            "tune.sampler cmaes needs the `cmaes` package: pip install cmaes (or use tpe)"
        ) from None
    return samplers.CmaEsSampler(seed=seed, n_startup_trials=spec.n_startup_trials)


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    pruners = optuna.pruners
    if spec.name == "none":
        return pruners.NopPruner()
    if spec.name == "median":
        return pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
        )
    if spec.name == "percentile":
        return pruners.PercentilePruner(
            spec.percentile,
            n_startup_trials=spec.n_startup_trials,
            n_warmup_steps=spec.n_warmup_steps,
        )
    if spec.name == "asha":
        return pruners.SuccessiveHalvingPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
        )
    if spec.name == "hyperband":
        return pruners.HyperbandPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
        )
    return pruners.WilcoxonPruner(
        p_threshold=spec.p_threshold, n_startup_steps=spec.n_startup_steps
    )


@contextmanager
def study_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock shared by the workers of this machine (creating trials, counting)."""
    with open(folder / "study.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_token() -> dict:
    """Who runs a trial: host, pid and the process start time."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": _start_time(os.getpid()),
        "time": time.time(),
    }


def fail_interrupted(study: optuna.Study) -> list[int]:
    """Mark FAIL (reason ``interrupted: ...``) every RUNNING trial whose process is gone.

    A trial run on this machine is checked by pid and process start time; a trial of another
    machine by its heartbeat, which is stale after GRACE_S seconds. Returns the trial numbers.
    """
    storage = study._storage
    marked = []
    host, now = socket.gethostname(), time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get("worker") or {}
        if who.get("host") == host:
            if who.get("start") and _start_time(int(who.get("pid", -1))) == who.get("start"):
                continue  # still running
            reason = f"interrupted: worker process {who.get('pid')} ended while the trial ran"
        else:
            last = trial.user_attrs.get("heartbeat") or who.get("time") or now
            if now - last < GRACE_S:
                continue
            reason = (
                f"interrupted: no heartbeat from worker {who.get('host')}:{who.get('pid')} "
                f"for {now - last:.0f}s (stale trial)"
            )
        _fail(storage, trial._trial_id, reason)
        marked.append(trial.number)
    return marked


def _fail(storage, trial_id: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError):  # it may have finished in the meantime
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


@contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Record a heartbeat (a user attribute with the time) every HEARTBEAT_S seconds."""
    storage = study._storage
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a transient storage error, or the trial ended
                storage.set_trial_user_attr(trial._trial_id, "heartbeat", time.time())

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{trial.number}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_S)
