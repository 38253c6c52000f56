"""The sealed test part: fingerprinted when a study starts, every evaluation logged.

``seal.json`` holds the test part's size and content fingerprint, and a log of every
evaluation on it (time, command, run). Trials never read the test part; the refit of the best
reads it once; any later look is counted and warned about. Every spec the study writes names
its seal (``evaluate.seal``), so ``tunelab train best.yaml`` and ``tunelab evaluate`` /
``compare`` on its runs log their looks here too, wherever their run folders are.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tunelab.data import Dataset, Splits, fingerprint
from tunelab.errors import RunError
from tunelab.runs import (
    log_test_evaluation,
    missing_seal,
    read_json,
    seal_of_run,
    test_evaluations,
    write_json,
)
from tunelab.spec import Spec, parse_spec, set_values

__all__ = [
    "seal",
    "with_seal",
    "log_test_evaluation",
    "missing_seal",
    "seal_of_run",
    "test_evaluations",
]


def seal(folder: Path, ds: Dataset, splits: Splits) -> dict:
    """Create ``seal.json``, or check that an existing one matches this data's test part."""
    path = folder / "seal.json"
    current = {
        "dataset": ds.name,
        "test_size": int(len(splits.test)),
        "test_fingerprint": fingerprint(ds, splits.test),
    }
    if path.is_file():
        stored = read_json(path)
        if stored.get("test_fingerprint") != current["test_fingerprint"]:
            raise RunError(
                f"{path}: the test part no longer matches the study's seal (fingerprint "
                f"{stored.get('test_fingerprint')} at the start, {current['test_fingerprint']} "
                "now): the data or the split changed. Start a new study in another folder"
            )
        return stored
    record = current | {"sealed": _now(), "evaluations": []}
    write_json(path, record)
    return record


def with_seal(spec: Spec, folder: Path, record: dict) -> Spec:
    """The spec with ``evaluate.seal`` naming the study in ``folder`` and its test fingerprint:
    every spec derived from it (``best.yaml``, a refit's ``spec.yaml``) logs its looks there."""
    ref = {"study": str(folder.resolve()), "fingerprint": record["test_fingerprint"]}
    return parse_spec(set_values(spec.model_dump(mode="json"), {"evaluate.seal": ref}))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
