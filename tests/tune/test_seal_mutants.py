"""The seal itself, in process (the study tests reach it through subprocesses only): what
``seal.json`` holds when a study starts, the check on resume and its exact message, and the
reference every derived spec carries. Found unguarded by scripts/mutation.py."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from tunelab.data import Dataset, Splits, fingerprint
from tunelab.errors import RunError
from tunelab.spec import load_spec
from tunelab.tune._seal import seal, with_seal


def data(shift: float = 0.0) -> tuple[Dataset, Splits]:
    X = np.arange(40, dtype=np.float32).reshape(10, 4) + shift
    ds = Dataset(X=X, y=np.arange(10) % 2, task="classification", name="tiny")
    return ds, Splits(kind="holdout", test=np.array([7, 8, 9]), folds=[], seed=0)


def test_a_new_seal_holds_the_test_part_and_no_evaluation(tmp_path):
    ds, splits = data()
    record = seal(tmp_path, ds, splits)
    stored = json.loads((tmp_path / "seal.json").read_text())
    assert stored == record
    assert set(stored) == {"dataset", "test_size", "test_fingerprint", "sealed", "evaluations"}
    assert stored["dataset"] == "tiny"
    assert stored["test_size"] == 3
    assert stored["test_fingerprint"] == fingerprint(ds, splits.test)
    assert stored["evaluations"] == []
    sealed = datetime.fromisoformat(stored["sealed"])
    assert sealed.utcoffset().total_seconds() == 0
    assert stored["sealed"] == sealed.isoformat(timespec="seconds")


def test_the_same_test_part_keeps_the_stored_seal(tmp_path):
    ds, splits = data()
    first = seal(tmp_path, ds, splits)
    stored = json.loads((tmp_path / "seal.json").read_text())
    stored["evaluations"].append({"run": "best"})
    (tmp_path / "seal.json").write_text(json.dumps(stored))
    again = seal(tmp_path, ds, splits)
    assert again == stored  # the stored record, with its log, not a fresh one
    assert again["sealed"] == first["sealed"]


def test_a_changed_test_part_is_refused_with_both_fingerprints(tmp_path):
    ds, splits = data()
    before = seal(tmp_path, ds, splits)["test_fingerprint"]
    changed, _ = data(shift=1.0)
    after = fingerprint(changed, splits.test)
    text = (tmp_path / "seal.json").read_bytes()
    with pytest.raises(RunError) as err:
        seal(tmp_path, changed, splits)
    assert str(err.value) == (
        f"{tmp_path / 'seal.json'}: the test part no longer matches the study's seal "
        f"(fingerprint {before} at the start, {after} now): the data or the split changed. "
        "Start a new study in another folder"
    )
    assert (tmp_path / "seal.json").read_bytes() == text


def test_a_derived_spec_names_the_study_folder_and_its_fingerprint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec({"data": {"source": "iris"}, "model": {"name": "mlp"}})
    sealed = with_seal(spec, tmp_path.relative_to(tmp_path), {"test_fingerprint": "f00d"})
    ref = sealed.evaluate.seal
    assert ref.study == str(tmp_path.resolve())  # absolute: the run folders may be elsewhere
    assert ref.fingerprint == "f00d"
    assert sealed.model_dump(exclude={"evaluate"}) == spec.model_dump(exclude={"evaluate"})
