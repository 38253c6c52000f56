"""A test whose service is missing (PostgreSQL, a mount namespace) is skipped on a developer's
machine, and fails in CI: ``TUNELAB_REQUIRE_POSTGRES=1`` / ``TUNELAB_REQUIRE_NAMESPACES=1``
(set by ``.ci/run``) or ``CI=true``. Checked by running pytest itself on two such tests, with
the services taken away: a PostgreSQL URL where nothing listens, and no ``unshare`` on PATH.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TESTS = {
    "postgres": "tests/tune/test_concurrency.py::test_eight_workers_on_postgres",
    "namespace": "tests/tune/test_disk.py::test_read_only_output_folder_is_refused_up_front",
}
REQUIRE = ("TUNELAB_REQUIRE_POSTGRES", "TUNELAB_REQUIRE_NAMESPACES", "TUNELAB_REQUIRE_BROWSER")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


def _outcomes(root, **env: str) -> dict[str, str]:
    """Run the two tests with the services missing; ``{"postgres": "SKIPPED", ...}``."""
    base = {k: v for k, v in os.environ.items() if k not in ("CI", *REQUIRE)}
    base |= {
        "TUNELAB_TEST_POSTGRES": f"postgresql://postgres@127.0.0.1:{_closed_port()}/test",
        "PATH": str(root / "no-such-folder"),  # no unshare: no mount namespace
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *TESTS.values()],
        cwd=root,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = {}
    for name, node in TESTS.items():
        match = re.search(
            rf"^(PASSED|FAILED|ERROR|SKIPPED)\b.*{re.escape(node)}", proc.stdout, re.M
        )
        if match is None:  # a skip is reported by file and line, with its reason
            file = node.split("::")[0]
            match = re.search(rf"^(SKIPPED) \[\d+\] {re.escape(file)}", proc.stdout, re.M)
        assert match, proc.stdout[-3000:]
        found[name] = match.group(1)
    return found


def test_a_missing_service_is_a_skip_outside_ci(root):
    assert _outcomes(root) == {"postgres": "SKIPPED", "namespace": "SKIPPED"}


def test_a_missing_service_fails_where_ci_requires_it(root):
    required = {"TUNELAB_REQUIRE_POSTGRES": "1", "TUNELAB_REQUIRE_NAMESPACES": "1"}
    assert _outcomes(root, **required) == {"postgres": "ERROR", "namespace": "ERROR"}


def test_a_missing_service_fails_anywhere_ci_is_true(root):
    assert _outcomes(root, CI="true") == {"postgres": "ERROR", "namespace": "ERROR"}
