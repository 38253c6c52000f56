"""A study shared by machines: the database-level lock around creating trials, what a study
publishes in its storage so that a worker elsewhere needs nothing else, and joining it.

``tunelab tune --storage URL`` publishes, as the study's user attribute ``tunelab``, the
resolved spec, the total, the deadline, the sampler seed and the fingerprints of the data and
of the split. ``tunelab worker --storage URL --study NAME`` on any machine reads them, loads the
data the spec names, refuses to run when its fingerprints differ (another file, another
version), and runs trials until the total is met, with the same loop as a local worker.

The file lock of ``study_lock`` serialises the workers of one machine; across machines the
count-then-create step runs under a PostgreSQL advisory lock held on its own connection
(released by the server when a worker dies), or, for SQLite, under a lock file beside the
database file, which every worker that can open the database can open too.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from tunelab.data import Splits, fingerprint
from tunelab.errors import RunError, SpecError, did_you_mean
from tunelab.runs import redact

__all__ = [
    "ATTR",
    "storage_lock",
    "publish",
    "published",
    "study_names",
    "data_fingerprints",
    "check_fingerprints",
    "worker_seed",
    "pick_study",
    "studies_in",
]

ATTR = "tunelab"  # the study's user attribute with what a joining worker needs

_held: dict[int, Any] = {}  # engine id -> the connection that takes the advisory lock
_guard = threading.Lock()  # the heartbeat thread never uses it; one connection per engine


@contextmanager
def storage_lock(storage: optuna.storages.BaseStorage, name: str) -> Iterator[None]:
    """Exclusive across every worker of the study ``name``, on any machine."""
    engine = _engine(storage)
    dialect = getattr(getattr(engine, "dialect", None), "name", None)
    if dialect == "postgresql":
        with _guard, _advisory(engine, name):
            yield
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _lock_file(Path(f"{engine.url.database}.lock")):
            yield
    else:  # another database (MySQL): the machine's own file lock is all there is
        yield


def _engine(storage: optuna.storages.BaseStorage):
    """The SQLAlchemy engine under ``storage``, or None (not a database).

    A study's storage is Optuna's caching wrapper around the RDB storage (private attribute
    ``_backend``, checked on Optuna 5.1): without unwrapping it no lock would be taken at all.
    """
    while getattr(storage, "engine", None) is None and hasattr(storage, "_backend"):
        storage = storage._backend
    return getattr(storage, "engine", None)


@contextmanager
def _advisory(engine, name: str) -> Iterator[None]:
    import sqlalchemy

    key = int.from_bytes(hashlib.blake2b(f"tunelab:{name}".encode(), digest_size=8).digest(),
                         "big", signed=True)  # fmt: skip
    con = _held.get(id(engine))
    if con is None or con.closed:
        con = _held[id(engine)] = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
    try:
        yield
    finally:
        con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@contextmanager
def _lock_file(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def data_fingerprints(ds, splits: Splits) -> dict[str, str]:
    """The content of the data and the split's indices, each as 16 hex digits."""
    h = hashlib.sha256(np.ascontiguousarray(splits.test, np.int64).tobytes())
    for fold in splits.folds:
        h.update(np.ascontiguousarray(fold.train, np.int64).tobytes())
        h.update(np.ascontiguousarray(fold.val, np.int64).tobytes())
    return {"data": fingerprint(ds, np.arange(len(ds))), "split": h.hexdigest()[:16]}


def publish(study: optuna.Study, record: dict) -> None:
    """Store what a worker elsewhere needs (see the module's docstring) in the study."""
    study.set_user_attr(ATTR, record)


def published(study: optuna.Study) -> dict:
    record = study.user_attrs.get(ATTR)
    if not record:
        raise RunError(
            f"study {study.study_name!r} was not started by `tunelab tune` (or by an older "
            "tunelab): it holds no spec for a worker; start it with tunelab tune --storage URL"
        )
    return record


def study_names(storage: optuna.storages.BaseStorage) -> list[tuple[str, int]]:
    """The studies in a storage that a worker can join, with their number of trials."""
    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if ATTR in summary.user_attrs:
            out.append((summary.study_name, summary.n_trials))
    return sorted(out)


def studies_in(url: str) -> list[tuple[str, int]]:
    """``tunelab worker --storage URL`` without ``--study``: the studies it could join."""
    from tunelab.tune._study import open_storage

    return study_names(open_storage(Path("."), url)[0])


def pick_study(storage: optuna.storages.BaseStorage, url: str, name: str) -> str:
    """The study to join; the error for an unknown one lists those there are."""
    names = study_names(storage)
    listing = ", ".join(f"{n} ({k} trials)" for n, k in names) or "none"
    if name not in {n for n, _ in names}:
        hint = did_you_mean(name, [n for n, _ in names])
        raise SpecError(f"--study: no study {name!r} in {redact(url)}{hint}; it holds: {listing}")
    return name


def check_fingerprints(record: dict, now: dict[str, str], name: str) -> None:
    """Refuse a worker whose data (or split) is not the study's."""
    for part in ("data", "split"):
        if record.get(part) != now[part]:
            raise RunError(
                f"study {name!r}: this machine's {part} fingerprint is {now[part]}, the study's "
                f"is {record.get(part)}: the data the spec names differs here (another file or "
                "version); a worker must see the same data, so it runs no trial"
            )


def worker_seed(seed: int, index: int) -> int:
    """A sampler seed per worker process that no other machine's worker shares."""
    salt = hashlib.blake2b(f"{socket.gethostname()}:{os.getpid()}".encode(), digest_size=4)
    return (seed + index + int.from_bytes(salt.digest(), "big")) % (2**31)
