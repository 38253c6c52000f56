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


def _penguins(n: int = 180, seed: int = 0):
    """A penguins-like table: string categories (island, sex), numeric columns, gaps in both
    kinds, a string target (species) that the features predict well."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    bill = np.select(
        [species == "Adelie", species == "Chinstrap"], [38.0, 49.0], 47.0
    ) + rng.normal(0, 1.5, n)
    mass = np.where(species == "Gentoo", 5000.0, 3700.0) + rng.normal(0, 250, n)
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], n))
    sex = rng.choice(["female", "male"], n).astype(object)
    bill[rng.choice(n, 9, replace=False)] = np.nan
    sex[rng.choice(n, 7, replace=False)] = None
    return pd.DataFrame(
        {
            "island": island,
            "bill_length_mm": bill.round(1),
            "body_mass_g": mass.round(0),
            "sex": sex,
            "species": species,
        }
    )


@pytest.fixture(scope="session")
def penguins():
    """``penguins(n=180, seed=0)``: a penguins-like DataFrame (categories and gaps)."""
    return _penguins
