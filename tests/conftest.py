"""Shared fixtures: the repository root and a runner for the real `tunelab` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def cli(tmp_path):
    """Run `tunelab ARGS` as a real process (console script), from ``tmp_path`` by default."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="120")
        exe = Path(sys.executable).with_name("tunelab")
        return subprocess.run(
            [str(exe), *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def unavailable():
    """``unavailable(message, variable=...)``: skip a test whose service (PostgreSQL, a mount
    namespace, a browser) this machine lacks, or fail it where the service is required: with
    ``VARIABLE=1`` (``.ci/run`` sets them) or anywhere ``CI=true``."""

    def stop(message: str, *, variable: str):
        if os.environ.get(variable) == "1" or os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (required here: {variable}=1 or CI=true)", pytrace=False)
        pytest.skip(message)

    return stop


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA; skip them (with the reason) where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
