"""Fixtures of the tuning tests."""

from __future__ import annotations

import os
import uuid

import pytest

REQUIRE = "TUNELAB_REQUIRE_POSTGRES"


@pytest.fixture
def postgres_url(unavailable):
    """A throwaway PostgreSQL database on 127.0.0.1:5432 (``TUNELAB_TEST_POSTGRES``), dropped
    after the test; the test is skipped when no server answers, and fails instead in CI
    (``TUNELAB_REQUIRE_POSTGRES=1`` or ``CI=true``)."""
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
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    con.close()
