"""Fixtures of the tuning tests."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL database on 127.0.0.1:5432 (``TUNELAB_TEST_POSTGRES``), dropped
    after the test; the test is skipped when no server answers."""
    psycopg = pytest.importorskip("psycopg")
    admin = os.environ.get("TUNELAB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        con = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {admin}: {exc}")
    name = f"tunelab_{uuid.uuid4().hex[:12]}"
    con.execute(f"CREATE DATABASE {name}")
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    con.close()
