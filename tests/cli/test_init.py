"""`tunelab init` then `tunelab train` on what it wrote, as a new user would, with real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.mark.slow  # three processes; the messages themselves: tests/spec/test_starter.py
def test_init_refuses_bad_input_and_writes_nothing(cli, tmp_path):
    result = cli("init", "missing.csv", "--target", "y")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: `missing.csv` does not exist; expected a .csv or .parquet table, or a folder "
        "with one sub-folder of images or text files per class"
    )
    pd.DataFrame({"a": [1.0, 2.0], "label": ["x", "y"]}).to_csv(tmp_path / "t.csv", index=False)
    result = cli("init", "t.csv", "--target", "lable")
    assert result.returncode == 2 and "(did you mean `label`?)" in result.stderr
    assert not (tmp_path / "spec.yaml").exists()
    (tmp_path / "spec.yaml").write_text("kept")
    result = cli("init", "t.csv", "--target", "label")
    assert result.returncode == 2 and "spec.yaml exists" in result.stderr
    assert (tmp_path / "spec.yaml").read_text() == "kept"


@pytest.mark.slow
def test_init_then_train_a_table(cli, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["kind"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    frame["shop"] = rng.choice(["north", "south"], len(frame))  # text: one-hot, said
    frame.to_csv(tmp_path / "shop.csv", index=False)
    result = cli("init", "shop.csv", "--target", "kind", "-o", "spec.yaml")
    assert result.returncode == 0, result.stderr
    assert "spec: spec.yaml (table: 1200 samples, classification, 2 classes)" in result.stdout
    assert "one-hot: shop; fitted on each training part" in (tmp_path / "spec.yaml").read_text()
    result = cli("train", "spec.yaml", "--out", "runs/shop", "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "runs/shop/metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] > 0.85


@pytest.mark.slow
def test_init_then_train_an_image_folder(cli, tmp_path):
    rng = np.random.default_rng(2)
    for name, level in (("dark", 60), ("light", 190)):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(15):
            pixels = np.clip(rng.normal(level, 25, (10, 10)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pics" / name / f"{i}.png")
    result = cli("init", "pics", "-o", "specs/pics.yaml")
    assert result.returncode == 0, result.stderr
    result = cli("train", "specs/pics.yaml", "--out", "runs/pics", "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "runs/pics/metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] >= 0.8
