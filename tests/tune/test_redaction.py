"""A storage URL's password is never printed, stored or quoted in an error (README: "tunelab
never writes passwords to disk"). A real study on the local PostgreSQL, whose trust
authentication ignores the password, run by the real ``tunelab`` command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PASSWORD = "s3cr3t-Pa55"
SPEC = {
    "name": "redacted",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16},
    "tune": {
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": [0.01, 0.05]},
    },
}


def _tunelab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("tunelab")), *args],
        cwd=cwd,
        env=dict(os.environ, COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


@pytest.fixture(scope="module")
def study(module_postgres_url, tmp_path_factory):
    """A study stored in PostgreSQL with a password in its URL: (folder, url, process)."""
    folder = tmp_path_factory.mktemp("redacted")
    (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    url = _with_password(module_postgres_url)
    proc = _tunelab("tune", "spec.yaml", "--out", "s", "--storage", url, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder / "s", url, proc


def test_the_password_is_not_printed_and_study_json_hides_it(study):
    folder, url, proc = study
    assert "best: trial" in proc.stdout  # the study ran and said so
    assert PASSWORD not in proc.stdout + proc.stderr
    stored = json.loads((folder / "study.json").read_text())["storage"]
    assert stored.endswith(":***@" + url.split("@", 1)[1])
    for name in ("spec.yaml", "best.yaml", "result.json", "best/spec.yaml", "best/metrics.json"):
        assert PASSWORD not in (folder / name).read_text(), name


def test_no_file_of_the_study_holds_the_password(study):
    folder, _, _ = study
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 10
    holding = sorted(
        str(p.relative_to(folder)) for p in files if PASSWORD.encode() in p.read_bytes()
    )
    assert holding == []


def test_resume_asks_for_the_password_without_showing_one(study, tmp_path):
    folder, _, _ = study
    proc = _tunelab("tune", "../spec.yaml", "--out", str(folder), "--resume", cwd=folder)
    assert proc.returncode == 2
    assert "pass --storage again with the password" in proc.stderr
    assert ":***@" in proc.stderr and PASSWORD not in proc.stdout + proc.stderr


def test_an_unreachable_storage_is_an_error_without_the_password(study, tmp_path):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test"  # nothing listens on port 1
    proc = _tunelab("tune", "spec.yaml", "--out", "s", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot open study storage postgresql+psycopg://postgres:***@127.0.0.1:1/test" in (
        proc.stderr
    )
    assert PASSWORD not in proc.stdout + proc.stderr
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert not any(PASSWORD.encode() in p.read_bytes() for p in files)
