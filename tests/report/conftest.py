"""Real runs and a real study, made once per test session, for the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import tunelab
from tunelab.cli import main

# what every run report and study report must show (section ids of the page)
RUN_SECTIONS = [
    "metrics",
    "diagnosis",
    "curves",
    "confusion",
    "per-class",
    "confused",
    "roc-pr",
    "calibration",
    "splits",
    "spec",
]
STUDY_SECTIONS = ["summary", "test", "significance", "top", "trials", "spec"]

CLASSIFY = {
    "name": "digits_report",
    "seed": 0,
    "data": {"source": "digits"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32], "dropout": 0.1},
    "train": {"epochs": 6, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003}},
    "evaluate": {"ci": {"resamples": 200}},
}
CROSS_VALIDATED = {
    "name": "iris_cv_report",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "cv": 3},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 8, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
    "evaluate": {"ci": {"resamples": 200}},
}
REGRESSION = {
    "name": "linear_report",
    "seed": 0,
    "data": {"source": "linear"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "linear"},
    "train": {"epochs": 15, "optimizer": {"name": "gd", "lr": 0.1}},
    "evaluate": {"ci": {"resamples": 200}},
}


def study_spec(trials: int, *, epochs: int = 5) -> dict:
    """A small random search with a median pruner: complete and pruned trials both appear."""
    return {
        "name": f"iris_study_{trials}",
        "seed": 0,
        "data": {"source": "iris"},
        "split": {"test": 0.2, "val": 0.25},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
        "evaluate": {"ci": {"resamples": 200}},
        "tune": {
            "trials": trials,
            "sampler": {"name": "random", "seed": 0},
            "pruner": {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
            "objective": "val.loss",
            "space": {
                "train.optimizer.lr": {"low": 1e-4, "high": 0.3, "log": True},
                "model.hidden": [[4], [16], [64]],
                "model.dropout": {"low": 0.0, "high": 0.5},
            },
        },
    }


@pytest.fixture(scope="session")
def sections() -> dict[str, list[str]]:
    """The section ids a run's page and a study's page must have."""
    return {"run": RUN_SECTIONS, "study": STUDY_SECTIONS}


@pytest.fixture(scope="session")
def make_study_spec():
    """The spec of a small study with ``trials`` trials (a factory)."""
    return study_spec


@pytest.fixture(scope="session")
def report_folders(tmp_path_factory) -> dict:
    """``name -> folder`` of three runs (holdout, cross-validated, regression) and a study."""
    root = tmp_path_factory.mktemp("reports")
    folders = {}
    for key, spec in (("run", CLASSIFY), ("cv", CROSS_VALIDATED), ("regression", REGRESSION)):
        folders[key] = tunelab.train(spec, out=root / key, quiet=True).path
    result = tunelab.tune_study(study_spec(12), out=root / "study", quiet=True)
    folders["study"] = result.path
    return folders


TOPICS = {
    "business": ["bank", "shares", "market", "profit", "price"],
    "entertainment": ["film", "music", "actor", "award", "singer"],
    "tech": ["phone", "software", "chip", "network", "web"],
}
# every text is long (its excerpt is cut) and holds markup that the page must show as text
TAIL = " <b>Tom & Jerry</b> " + " ".join(["filler"] * 40)


def _write_news(root: Path, n: int = 14) -> Path:
    """``n`` texts per topic, each with two words of its topic and one of another: some are
    misclassified."""
    rng = np.random.default_rng(0)
    names = list(TOPICS)
    for k, topic in enumerate(names):
        (root / topic).mkdir(parents=True)
        for i in range(n):
            other = TOPICS[names[(k + 1 + i % 2) % 3]]
            words = [*rng.choice(TOPICS[topic], 2), rng.choice(other), "the", "news"]
            (root / topic / f"{i:03d}.txt").write_text(
                " ".join(words) + "\n\n" + TAIL, encoding="utf-8"
            )
    return root


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    """A run on a text folder trained by `tunelab train` (which writes its report.html)."""
    root = tmp_path_factory.mktemp("confused")
    spec = {
        "name": "news",
        "seed": 0,
        "data": {"source": "text-folder", "path": str(_write_news(root / "news"))},
        "split": {"test": 0.3, "val": 0.2},
        "model": {"name": "linear"},
        "train": {"epochs": 6, "batch_size": 8, "optimizer": {"name": "adam", "lr": 0.1}},
        "evaluate": {"ci": {"resamples": 0}},
    }
    (root / "news.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["train", str(root / "news.yaml"), "--out", str(root / "run"), "--quiet"])
    assert done.value.code in (0, None)
    return root / "run"
