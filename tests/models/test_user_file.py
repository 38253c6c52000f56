"""A user model named by a file next to the spec trains with no PYTHONPATH set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.errors import SpecError
from tunelab.spec import load_spec

EXE = str(Path(sys.executable).with_name("tunelab"))

MODEL_FILE = """
import torch
from torch import nn


class WideMLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, width: int = 8):
        super().__init__()
        self.width = width
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(),
                                 nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
"""


def _project(tmp_path: Path, model: dict) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "mymodels.py").write_text(MODEL_FILE, encoding="utf-8")
    spec = {"name": "userfile", "data": "iris", "model": model, "train": {"epochs": 2}}
    (folder / "spec.yaml").write_text(json.dumps(spec), encoding="utf-8")
    return folder / "spec.yaml"


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_a_model_file_next_to_the_spec_trains_without_pythonpath(tmp_path):
    spec = _project(tmp_path, {"name": "./mymodels.py:WideMLP", "width": 12})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [EXE, "train", str(spec), "--out", "run", "--quiet"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    resolved = (elsewhere / "run" / "spec.yaml").read_text()
    assert f"{spec.parent / 'mymodels.py'}:WideMLP" in resolved  # made absolute: re-runnable
    assert "width: 12" in resolved
    rows = (elsewhere / "run" / "history.jsonl").read_text().splitlines()
    assert len(rows) == 2


def test_options_are_checked_against_the_constructor_when_the_spec_is_read(tmp_path):
    spec = _project(tmp_path, {"name": "./mymodels.py:WideMLP", "widht": 12})
    with pytest.raises(SpecError, match=r"takes no parameter 'widht'.*did you mean `width`"):
        load_spec(spec)


@pytest.mark.parametrize(
    "name, message",
    [
        ("./nothere.py:WideMLP", "model file not found"),
        ("./mymodels.py:WideMPL", "has no attribute 'WideMPL'.*did you mean `WideMLP`"),
    ],
)
def test_a_missing_file_or_class_is_named(tmp_path, name, message):
    spec = _project(tmp_path, {"name": name})
    with pytest.raises(SpecError, match=message):
        load_spec(spec)
