"""A third-party package adds a model, a metric and an augmentation through entry points.

The package is written here, one file per plug-in, installed with pip into a folder of its own
(``pip install --no-deps --target``), and put on the path of real ``tunelab`` processes: its
plug-ins appear in ``tunelab plugins``, train and tune, and their names get did-you-means.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("tunelab"))

FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tlplug"
        version = "0.1"

        [project.entry-points."tunelab.plugins"]
        wide = "tlplug.wide"
        error_rate = "tlplug.metric"
        jitter = "tlplug.jitter"

        [tool.setuptools]
        packages = ["tlplug"]
    """,
    "tlplug/__init__.py": "",
    "tlplug/wide.py": '''
        import math
        from typing import Literal

        from torch import nn

        from tunelab.plugins import MODELS, Options


        class WideOptions(Options):
            """One wide hidden layer (a test plug-in)."""

            name: Literal["wide"]
            width: int = 32


        def build(options, *, in_shape, out_features, **_):
            return nn.Sequential(
                nn.Flatten(),
                nn.Linear(math.prod(in_shape), options.width),
                nn.ReLU(),
                nn.Linear(options.width, out_features),
            )


        MODELS.register("wide", WideOptions, build)
    ''',
    "tlplug/metric.py": '''
        import numpy as np

        from tunelab.evaluate import register_metric


        def error_rate(y_true, y_score):
            """Fraction of samples misclassified (a test plug-in)."""
            return float(np.mean(np.argmax(np.asarray(y_score), axis=1) != np.asarray(y_true)))


        register_metric("error_rate", error_rate, task="classification", greater_is_better=False)
    ''',
    "tlplug/jitter.py": '''
        from typing import Literal

        import torch

        from tunelab.plugins import AUGMENTATIONS, Options

        CALLS = []


        class JitterStep(Options):
            """Scale each sample by a random factor near 1 (a test plug-in)."""

            name: Literal["jitter"]
            amount: float = 0.1


        def jitter(x, *, generator, amount):
            u = torch.rand(x.shape[0], generator=generator, device=x.device)
            factor = 1 + amount * (2 * u - 1)
            return x * factor.view(-1, *([1] * (x.ndim - 1)))


        AUGMENTATIONS.register("jitter", JitterStep, jitter)
    ''',
}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("tlplug-src")
    for name, text in FILES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    target = tmp_path_factory.mktemp("tlplug-installed")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "tlplug" / "wide.py").is_file()
    assert list(target.glob("tlplug-0.1.dist-info/entry_points.txt"))
    return target


def _run(args: list[str], cwd: Path, plugin_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(plugin_path), COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


SPEC = {
    "name": "plug",
    "seed": 0,
    "data": "iris",
    "model": {"name": "wide", "width": 16},
    "train": {
        "epochs": 3,
        "metrics": ["accuracy", "error_rate"],
        "augment": [{"name": "jitter", "amount": 0.05}],
    },
    "evaluate": {"metrics": ["accuracy", "error_rate"], "ci": {"resamples": 50}},
}


def _write(folder: Path, spec: dict) -> Path:
    path = folder / "spec.json.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_the_plugins_are_listed(plugin_path, tmp_path):
    done = _run(["plugins"], tmp_path, plugin_path)
    assert done.returncode == 0, done.stderr
    for kind, name, origin in (
        ("model", "wide", "tlplug.wide"),
        ("metric", "error_rate", "tlplug.metric"),
        ("augmentation", "jitter", "tlplug.jitter"),
    ):
        rows = [line for line in done.stdout.splitlines() if line.strip().startswith(name + " ")]
        assert rows, f"{kind} {name} not listed"
        assert origin in rows[0]
    one = _run(["plugins", "model.wide"], tmp_path, plugin_path)
    assert one.returncode == 0 and "width" in one.stdout and "32" in one.stdout


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_a_run_trains_with_the_plugin_model_metric_and_augmentation(plugin_path, tmp_path):
    spec = _write(tmp_path, SPEC)
    done = _run(["train", str(spec), "--out", "runs/plug", "--quiet"], tmp_path, plugin_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / "plug"
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("val_error_rate" in r for r in rows)
    assert all(abs(r["val_error_rate"] + r["val_accuracy"] - 1) < 1e-9 for r in rows)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]["error_rate"]
    assert abs(test["value"] + metrics["test"]["accuracy"]["value"] - 1) < 1e-9
    assert test["ci"]["low"] <= test["value"] <= test["ci"]["high"]


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_a_study_tunes_the_plugin_model_on_the_plugin_metric(plugin_path, tmp_path):
    spec = dict(SPEC, name="plugtune")
    spec["tune"] = {
        "trials": 2,
        "sampler": "grid",
        "pruner": "none",
        "objective": "val.error_rate",
        "space": {"model.width": [8, 16]},
    }
    done = _run(
        ["tune", str(_write(tmp_path, spec)), "--out", "s", "--quiet"], tmp_path, plugin_path
    )
    assert done.returncode == 0, done.stderr
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study["direction"] == "minimize"  # error_rate declared lower is better
    best = json.loads((tmp_path / "s" / "best" / "metrics.json").read_text())
    assert "error_rate" in best["test"]


@pytest.mark.parametrize(
    "change, hint",
    [
        ({"model": {"name": "wde"}}, "did you mean `wide`"),
        ({"train": {"augment": ["jiter"]}}, "did you mean `jitter`"),
        ({"train": {"metrics": ["error_rat"]}}, "did you mean `error_rate`"),
    ],
)
def test_a_typo_in_a_plugin_name_gets_a_did_you_mean(plugin_path, tmp_path, change, hint):
    spec = _write(tmp_path, SPEC | change)
    done = _run(["train", str(spec), "--out", "runs/typo"], tmp_path, plugin_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert hint in done.stderr
    assert not (tmp_path / "runs" / "typo").exists()
