"""Safety: weights only from safetensors, YAML safe loading, hostile specs, foreign run folders.

Each test performs the real thing: a pickle whose payload would write a marker file, a YAML
tag that would run a command, an anchor bomb, a run folder from a newer tunelab.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch

import tunelab

IRIS = {
    "data": {"source": "iris"},
    "split": {"test": 0.3, "val": 0.2},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16},
}


class _Payload:
    """Unpickling this writes a marker file: proof that the pickle ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def run(tmp_path):
    return tunelab.train(IRIS, out=tmp_path / "run", quiet=True)


def test_a_planted_pickle_is_refused_and_never_runs(run, tmp_path, cli):
    marker = tmp_path / "pwned"
    (run.path / "model.safetensors").write_bytes(pickle.dumps(_Payload(str(marker))))
    result = cli("evaluate", str(run.path), "--split", "test")
    assert result.returncode == 2
    assert "not a valid safetensors file" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_torch_save_checkpoint_is_refused(run, tmp_path, cli):
    marker = tmp_path / "pwned"
    torch.save({"payload": _Payload(str(marker))}, run.path / "model.safetensors")
    result = cli("evaluate", str(run.path))
    assert result.returncode == 2 and "never loads pickled weights" in result.stderr
    assert not marker.exists()


def test_yaml_python_tags_do_not_execute(tmp_path, cli):
    marker = tmp_path / "pwned"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\nmodel: mlp\n")
    result = cli("train", str(spec))
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    assert not marker.exists()


def test_yaml_anchor_bomb_is_refused_without_expanding(tmp_path, cli):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\ndata: {source: iris}\nmodel: mlp\nbomb: *a8\n")
    result = cli("train", str(spec), timeout=60)  # a hang would run into the timeout
    assert result.returncode == 2 and "anchors" in result.stderr


@pytest.mark.parametrize("depth", [100, 20000])
def test_deeply_nested_yaml_is_refused(tmp_path, cli, depth):
    spec = tmp_path / "deep.yaml"
    spec.write_text("data: {source: iris}\nmodel: mlp\nx: " + "[" * depth + "]" * depth + "\n")
    result = cli("train", str(spec))
    assert result.returncode == 2 and "nested" in result.stderr and "Traceback" not in result.stderr


def test_a_run_from_a_newer_tunelab_is_refused(run):
    env = json.loads((run.path / "env.json").read_text())
    (run.path / "env.json").write_text(json.dumps(env | {"format": 99}))
    with pytest.raises(tunelab.RunError, match="newer tunelab"):
        tunelab.Run(run.path)


def test_changed_data_behind_a_run_is_refused(run):
    splits = json.loads((run.path / "splits.json").read_text())
    splits["test"]["fingerprint"] = "0" * 16  # as if the data behind the indices had changed
    (run.path / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(tunelab.DataError, match="fingerprint"):
        tunelab.evaluate_run(run, split="test", quiet=True)


def test_a_user_model_is_imported_only_when_named(tmp_path, monkeypatch):
    import sys

    (tmp_path / "sneaky_module.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tunelab.load_spec(IRIS)
    assert "sneaky_module" not in sys.modules
    with pytest.raises(tunelab.SpecError, match="unknown key `model.import`"):
        tunelab.load_spec(IRIS | {"model": {"name": "mlp", "import": "sneaky_module"}})
    assert "sneaky_module" not in sys.modules
