"""`tunelab init`'s proposal: the task, columns, split and model it infers from real files, a
comment on every line, a spec that loads; bad input named in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tunelab.errors import TunelabError
from tunelab.spec import load_spec, starter_spec


def _table(path, rows=150, *, text=False, regression=False, missing=False):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows)})
    if regression:
        frame["price"] = frame.x1 * 3 + rng.normal(size=rows)
    else:
        frame["species"] = np.where(frame.x1 > 0, "big", "small")
    if text:
        frame["city"] = rng.choice(["Oslo", "Lima"], rows)
    if missing:
        frame.loc[3, "x2"] = np.nan
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def _every_line_commented(text: str) -> None:
    for line in text.splitlines():
        assert "#" in line, line


def test_a_small_classification_table(tmp_path):
    starter = starter_spec(_table(tmp_path / "flowers.csv"), target="species")
    _every_line_commented(starter.text)
    raw = yaml.safe_load(starter.text)
    assert raw["data"] == {
        "source": "csv", "path": str(tmp_path / "flowers.csv"), "target": "species",
        "task": "classification", "preprocess": "auto",
    }  # fmt: skip
    assert raw["split"] == {"test": 0.2, "stratify": True, "cv": {"kind": "stratified", "folds": 5}}
    assert raw["model"] == {"name": "linear"}
    assert raw["name"] == "flowers" and starter.notes == []
    assert load_spec(raw).data.target == "species"


def test_a_large_regression_parquet_gets_a_holdout_and_an_mlp(tmp_path):
    starter = starter_spec(_table(tmp_path / "h.parquet", 1500, regression=True), target="price")
    raw = yaml.safe_load(starter.text)
    assert raw["data"]["task"] == "regression" and raw["data"]["source"] == "parquet"
    assert raw["split"] == {"test": 0.2, "val": 0.2}  # no stratify for a regression
    assert raw["model"]["name"] == "mlp" and raw["train"]["metrics"] == ["rmse", "mae"]
    assert "many distinct numbers: regression" in starter.text


def test_text_and_incomplete_columns_are_encoded_per_training_part_and_said(tmp_path):
    path = _table(tmp_path / "t.csv", text=True, missing=True)
    starter = starter_spec(path, target="species")
    raw = yaml.safe_load(starter.text)
    assert "features" not in raw["data"] and raw["data"]["preprocess"] == "auto"
    assert "one-hot: city; gaps filled: x2 (1 missing); fitted on each training part" in (
        starter.text
    )
    assert starter.notes == [
        "missing values filled per training part (data.preprocess): x2 (1 missing)"
    ]


def test_a_string_column_with_a_value_per_row_is_left_out_as_an_id(tmp_path):
    frame = pd.read_csv(_table(tmp_path / "t.csv", text=True))
    frame.insert(0, "code", [f"r{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "ids.csv", index=False)
    starter = starter_spec(tmp_path / "ids.csv", target="species")
    raw = yaml.safe_load(starter.text)
    assert raw["data"]["features"] == ["x1", "x2", "city"]
    assert "# left out, a different string in every row (an id?): code" in starter.text
    assert starter.notes == ["id-like column(s) left out of data.features: code"]


def _images(root, per_class=12, size=(12, 12), mode="L"):
    rng = np.random.default_rng(0)
    for name, level in (("cat", 50), ("dog", 200)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 30, size), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / name / f"{i}.png")
    return root


def test_an_image_folder_gets_a_cnn(tmp_path):
    starter = starter_spec(_images(tmp_path / "pets"))
    _every_line_commented(starter.text)
    raw = yaml.safe_load(starter.text)
    assert raw["data"]["source"] == "images" and "size" not in raw["data"]
    assert raw["model"]["name"] == "cnn"
    assert raw["split"]["cv"] == {"kind": "stratified", "folds": 5}
    assert "cat (12), dog (12)" in starter.text and "grayscale images" in starter.text


def test_large_images_are_resized(tmp_path):
    starter = starter_spec(_images(tmp_path / "big", per_class=3, size=(128, 96), mode="RGB"))
    raw = yaml.safe_load(starter.text)
    assert raw["data"]["size"] == [64, 48]
    assert raw["model"]["blocks"] == 2 and "colour images" in starter.text


def test_a_text_folder_uses_the_hashed_words_factory(tmp_path):
    for name, words in (("pos", "good great"), ("neg", "bad awful")):
        (tmp_path / "reviews" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "reviews" / name / f"{i}.txt").write_text(f"{words} film {i}")
    starter = starter_spec(tmp_path / "reviews")
    raw = yaml.safe_load(starter.text)
    assert raw["data"]["factory"] == "tunelab.data:text_folder"
    assert raw["data"]["kwargs"]["path"] == str(tmp_path / "reviews")
    assert "0 = neg, 1 = pos" in starter.notes[0]
    from tunelab.data import text_folder

    samples = text_folder(tmp_path / "reviews", features=64)
    assert len(samples) == 8 and samples[0][0].shape == (64,) and samples[-1][1] == 1


BAD = {
    "missing file": (lambda p: p / "nope.csv", "species", "`{p}/nope.csv` does not exist"),
    "not a column": (lambda p: _table(p / "a.csv"), "specis", "(did you mean `species`?)"),
    "no target": (lambda p: _table(p / "a.csv"), None, "name its target column with --target"),
    "wrong suffix": (lambda p: (p / "a.xlsx").write_text("x") and p / "a.xlsx", "y", ".xlsx"),
    "one class folder": (
        lambda p: (p / "d" / "only").mkdir(parents=True) or p / "d",
        None,
        "1 class sub-folder",
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_clear_line(tmp_path, case):
    make, target, expected = BAD[case]
    path = make(tmp_path)
    with pytest.raises(TunelabError) as caught:
        starter_spec(path, target=target)
    message = str(caught.value)
    assert expected.format(p=tmp_path) in message and "\n" not in message
