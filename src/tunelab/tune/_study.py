"""Optuna underneath: storage, samplers, pruners, and the bookkeeping around trials.

Samplers, pruners and storage are Optuna's own; this module only chooses and configures them.
SQLite (the default) runs in WAL mode with a long busy timeout so that several local workers
never see 'database is locked'. Trials are created under a file lock so that N workers produce
exactly the requested total, and a trial left RUNNING by a process that died is marked FAIL
with the reason ``interrupted``: by every live worker's heartbeat thread (so within about
HEARTBEAT_S seconds on this machine, GRACE_S + HEARTBEAT_S for another machine's worker), and
when a study starts or resumes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.errors import RunError, SpecError
from tunelab.runs import redact

__all__ = [
    "ask",
    "storage_of",
    "trial_id",
    "quiet_optuna",
    "disk_stopped",
    "open_storage",
    "redact",
    "study_lock",
    "fail_interrupted",
    "mark_failed",
    "worker_token",
    "heartbeat",
    "disk_trouble",
    "HEARTBEAT_S",
]


def _seconds(variable: str, default: float) -> float:
    """A duration from the environment (``TUNELAB_HEARTBEAT_S``, ``TUNELAB_GRACE_S``): every
    worker of a study, on every machine, should be started with the same values."""
    text = os.environ.get(variable)
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SpecError(f"{variable}={text!r}: expected a number of seconds above 0")
    return value


HEARTBEAT_S = _seconds("TUNELAB_HEARTBEAT_S", 5)  # a running trial's sign of life, this often
GRACE_S = _seconds("TUNELAB_GRACE_S", 30)  # another machine's trial is stale after this long


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The study's storage object.

    Private attribute: a ``Study`` has no public accessor of its storage (checked on Optuna
    5.1), and marking another worker's trial FAIL, or creating a trial with its worker token in
    one commit, needs the storage's own (public) methods.
    """
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (the storage's methods take it, not the trial's number).

    Private attribute: neither ``Trial`` nor ``FrozenTrial`` has a public accessor of it
    (checked on Optuna 5.1); ``storage.get_trial_id_from_study_id_trial_number`` would cost a
    query each time.
    """
    return trial._trial_id


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's log level at WARNING while a study runs (it announces every trial at INFO);
    the caller's level is restored after."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


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
        cause = getattr(exc, "orig", None) or exc  # the driver's own words, without the wrapper's
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        said = " ".join(line for line in lines if not line.startswith("(Background on"))
        raise SpecError(
            f"cannot open study storage {redact(url)}: {type(cause).__name__}: {said}"
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


def ask(study: optuna.Study, token: dict) -> optuna.Trial:
    """``study.ask()``, with the worker's token stored in the commit that creates the trial.

    A worker killed between creating a trial and recording who runs it would leave a RUNNING
    trial that nobody could judge; created from a template, the trial and its token are one
    transaction. A trial the user enqueued is taken first, as ``ask`` does, and gets the
    token right after (:func:`fail_interrupted` judges one left without it by its age).
    """
    # Private attribute: `ask()` clears this per-thread cache of the trials so that the sampler
    # reads fresh ones; there is no public way to clear it (checked on Optuna 5.1).
    study._thread_local.cached_all_trials = None
    storage = storage_of(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    tid = _pop_waiting(storage, study_id)
    if tid is None:
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={"worker": token},
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        tid = storage.create_new_trial(study_id, template_trial=template)
    else:
        storage.set_trial_user_attr(tid, "worker", token)
    return optuna.Trial(study, tid)


def _pop_waiting(storage: optuna.storages.BaseStorage, study_id: int) -> int | None:
    """The id of an enqueued (WAITING) trial this worker now runs, as ``Study.ask`` takes it
    (its ``_pop_waiting_trial_id`` is private): the state change to RUNNING succeeds for one
    worker only."""
    for waiting in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial_id(waiting), state=TrialState.RUNNING):
                return trial_id(waiting)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def fail_interrupted(study: optuna.Study) -> list[int]:
    """Mark FAIL (reason ``interrupted: ...``) every RUNNING trial whose process is gone.

    A trial run on this machine is checked by pid and process start time; a trial of another
    machine by its heartbeat, which is stale after GRACE_S seconds. Returns the trial numbers.
    """
    storage = storage_of(study)
    marked = []
    host, now = socket.gethostname(), time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get("worker") or {}
        if who.get("host") == host:
            if who.get("start") and _start_time(int(who.get("pid", -1))) == who.get("start"):
                continue  # still running
            reason = f"interrupted: worker process {who.get('pid')} ended while the trial ran"
        else:  # another machine's, or one without a token: judged by its last sign of life
            last = trial.user_attrs.get("heartbeat") or who.get("time")
            if last is None and trial.datetime_start is not None:
                last = trial.datetime_start.timestamp()
            last = last or now
            if now - last < GRACE_S:
                continue
            worker = f"worker {who.get('host')}:{who.get('pid')}" if who else "an unknown worker"
            reason = f"interrupted: no heartbeat from {worker} for {now - last:.0f}s (stale trial)"
        mark_failed(storage, trial_id(trial), reason)
        marked.append(trial.number)
    return marked


def interrupted(trial: FrozenTrial) -> bool:
    """A trial that failed because its process or machine stopped, not because of its code."""
    reason = trial.user_attrs.get("fail_reason") or ""
    return trial.state == TrialState.FAIL and reason.startswith("interrupted")


def counted_trials(trials: list[FrozenTrial]) -> int:
    """Of a study's trials, those that count toward the total: started ones, less the
    interrupted (each is run again, see :func:`retry_interrupted`)."""
    started = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.state in started and not interrupted(t) for t in trials)


def retry_interrupted(study: optuna.Study, trials: list[FrozenTrial]) -> list[int]:
    """Enqueue, once, the parameters of every interrupted trial (of ``trials``, the study's)
    as a new trial linked to it (user attribute ``retry_of``); a retry that is interrupted
    again is not retried. Returns the numbers of the trials retried now."""
    done = {t.user_attrs.get("retry_of") for t in trials}
    retried = []
    for trial in trials:
        if interrupted(trial) and "retry_of" not in trial.user_attrs and trial.number not in done:
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
            retried.append(trial.number)
    return retried


def mark_failed(storage, trial_id: int, reason: str) -> None:
    """FAIL with ``fail_reason``; nothing happens to a trial that has finished meanwhile."""
    with contextlib.suppress(RuntimeError):  # it may have finished in the meantime
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


@contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Every HEARTBEAT_S seconds: record a heartbeat (a user attribute with the time), and
    mark FAIL the trials of workers that died (see :func:`fail_interrupted`).

    The second keeps the time until a dead worker's trial is marked bounded while the
    surviving workers are inside long trials.
    """
    storage = storage_of(study)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a transient storage error, or the trial ended
                storage.set_trial_user_attr(trial_id(trial), "heartbeat", time.time())
            with contextlib.suppress(Exception):
                fail_interrupted(study)

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{trial.number}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_S)


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
}
_DISK_MESSAGES = {  # SQLite and PostgreSQL say it in words
    "database or disk is full": "the disk is full",
    "no space left on device": "the disk is full",
    "attempt to write a readonly database": "the file system is read-only",
}


def disk_trouble(exc: BaseException) -> str | None:
    """``"the disk is full (...)"`` when ``exc`` or an exception it chains says the disk is
    full or read-only (an OSError, or the database's own words); otherwise None.

    Such an error stops a study (no later trial could be recorded either) instead of
    failing one trial. The innermost such exception is quoted: the database driver's, not
    the wrappers'.
    """
    found, seen = None, set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            found = f"{_DISK_ERRNOS[current.errno]} ({current.strerror}{where})"
        else:
            text = str(current).strip()
            said = text.lower()
            if getattr(current, "sqlstate", None) == "53100":  # PostgreSQL's disk_full
                said += " no space left on device"
            for words, what in _DISK_MESSAGES.items():
                if words in said:
                    first = text.splitlines()[0] if text else words
                    kind = type(current).__name__
                    if type(current).__module__ != "builtins":
                        kind = f"{type(current).__module__}.{kind}"
                    found = f"{what} ({kind}: {first})"
                    break
        current = current.__cause__ or current.__context__
    return found


def disk_stopped(why: str, folder: Path) -> RunError:
    """The error that stops a study whose disk is full or read-only (see ``disk_trouble``)."""
    return RunError(
        f"{why}; the study in {folder} stopped. Every finished trial is kept in its storage: "
        "free some space (or make the folder writable) and run the same `tunelab tune` command "
        "with --resume"
    )
