"""Bad input data through the real CLI: each a specific message, exit code 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.slow

ROWS = "sepal,petal,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20))


def table(text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "data.csv").write_text(text, encoding="utf-8")


def mixed_images(folder: Path) -> None:
    for name, (width, height) in {
        "a/1.png": (8, 8),
        "a/2.png": (8, 8),
        "b/1.png": (10, 12),
    }.items():
        (folder / "img" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (width, height)).save(folder / "img" / name)


CSV = {"source": "csv", "path": "data.csv", "target": "label"}
CASES = {
    "missing file": (
        lambda folder: None,
        CSV | {"path": "nowhere/data.csv"},
        None,
        ["table `nowhere/data.csv` does not exist", "check data.path"],
    ),
    "empty file": (
        table(""),
        CSV,
        None,
        ["data.csv is empty; expected a header row and at least one data row"],
    ),
    "header only": (
        table("sepal,petal,label\n"),
        CSV,
        None,
        ["data.csv has no data rows (columns: sepal, petal, label)"],
    ),
    "wrong target column": (
        table(ROWS),
        CSV | {"target": "lable"},
        None,
        [
            "target column `lable` not found in data.csv (did you mean `label`?)",
            "its columns are: sepal, petal, label",
        ],
    ),
    "wrong feature column": (
        table(ROWS),
        CSV | {"features": ["sepal", "petl"]},
        None,
        ["feature column `petl` not found in data.csv (did you mean `petal`?)"],
    ),
    "one class": (
        table("sepal,petal,label\n" + "".join(f"{i},{i * 2},cat\n" for i in range(20))),
        CSV,
        None,
        [
            "target column `label` of data.csv has a single class ('cat')",
            "classification needs at least two",
        ],
    ),
    "images of mixed sizes": (
        mixed_images,
        {"source": "images", "path": "img"},
        None,
        [
            "images in img differ in size: img/a/1.png is 8x8 (HxW) but img/b/1.png is 12x10",
            "set `data.size: [H, W]`",
        ],
    ),
    "NaN in features": (
        table(
            "sepal,petal,label\n"
            + "".join(f"{i},{'' if i in (3, 7) else i * 2},{i % 2}\n" for i in range(20))
        ),
        CSV | {"preprocess": {"impute": "none"}},  # by default gaps are filled per training part
        None,
        ["missing (NaN) or infinite values", "`petal` (2) at rows 4, 8", "Drop or fill"],
    ),
    "NaN in the target": (
        table("sepal,petal,label\n1,2,0\n3,4,\n5,6,1\n7,8,0\n"),
        CSV,
        None,
        ["target column `label` of data.csv has 1 missing value(s), at row 2"],
    ),
    "3 rows and 5 folds": (
        table("sepal,petal,label\n1,2,0\n3,4,1\n5,6,0\n"),
        CSV,
        {"test": 0, "cv": 5},
        [
            "3 rows cannot make 5 folds",
            "the non-test part has only 3 samples",
            "Use at most 3 folds, `split.cv: loo` or more rows",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_specific_message(cli, tmp_path, case):
    write, data, split, expected = CASES[case]
    write(tmp_path)
    spec = {
        "name": "bad",
        "data": data,
        "model": {"name": "mlp", "hidden": [4]},
        "train": {"epochs": 1},
    }
    if split is not None:
        spec["split"] = split
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    proc = cli("train", "bad.yaml", "--out", "run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
