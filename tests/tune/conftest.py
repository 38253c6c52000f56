"""Fixtures of the tuning tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

REQUIRE = "TUNELAB_REQUIRE_POSTGRES"


@contextlib.contextmanager
def _throwaway_database(unavailable) -> Iterator[str]:
    """A new PostgreSQL database on 127.0.0.1:5432 (``TUNELAB_TEST_POSTGRES``), dropped at the
    end; a skip when no server answers, a failure in CI (``TUNELAB_REQUIRE_POSTGRES=1`` or
    ``CI=true``)."""
    admin = os.environ.get("TUNELAB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg is not installed: pip install tunelab[postgres]", variable=REQUIRE)
    try:
        con = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"no PostgreSQL at {admin}: {exc}", variable=REQUIRE)
    name = f"tunelab_{uuid.uuid4().hex[:12]}"
    con.execute(f"CREATE DATABASE {name}")
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.close()


@pytest.fixture
def postgres_url(unavailable):
    """A throwaway PostgreSQL database for one test (see ``_throwaway_database``)."""
    with _throwaway_database(unavailable) as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url(unavailable):
    """A throwaway PostgreSQL database shared by the tests of one module."""
    with _throwaway_database(unavailable) as url:
        yield url
