"""The lock around counting and creating trials really holds, on a study's own storage.

A study's storage is Optuna's caching wrapper around the database storage; the lock must be
taken through it (a wrapper that hides the engine once made every machine of a PostgreSQL
study enqueue its own retry of the same interrupted trial).
"""

from __future__ import annotations

import fcntl
import hashlib
import threading

import optuna
import pytest
import sqlalchemy

from tunelab.tune._join import storage_lock
from tunelab.tune._study import storage_of


def _key(name: str) -> int:
    digest = hashlib.blake2b(f"tunelab:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def test_a_sqlite_study_holds_its_lock_file_while_inside(tmp_path):
    db = tmp_path / "study.db"
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}")
    lock = storage_lock(storage_of(study), "s")
    with lock, open(f"{db}.lock", "a+") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(f"{db}.lock", "a+") as other:  # free again once left
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)


def test_a_postgresql_study_holds_its_advisory_lock_while_inside(postgres_url):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.create_study(study_name="pg", storage=url)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as con:
            try_lock = sqlalchemy.text("SELECT pg_try_advisory_lock(:k)")
            unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:k)")
            with storage_lock(storage_of(study), "pg"):
                assert con.execute(try_lock, {"k": _key("pg")}).scalar() is False
            assert con.execute(try_lock, {"k": _key("pg")}).scalar() is True
            con.execute(unlock, {"k": _key("pg")})
    finally:
        engine.dispose()


def test_two_threads_never_inside_together(tmp_path):
    study = optuna.create_study(study_name="t", storage=f"sqlite:///{tmp_path / 't.db'}")
    inside, most = [0], [0]
    count = threading.Lock()

    def enter() -> None:
        for _ in range(20):
            with storage_lock(storage_of(study), "t"):
                with count:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                threading.Event().wait(0.001)
                with count:
                    inside[0] -= 1

    threads = [threading.Thread(target=enter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
