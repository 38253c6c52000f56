"""Predictions of saved runs on new data: `Run.predict` and `tunelab predict`.

The promise: the model a run saved, given the run's own test rows in order, predicts exactly
the scores the run saved for them; new data is checked against what the model was trained on.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits, load_iris

import tunelab
from tunelab.errors import DataError, RunError
from tunelab.train import Console, Predictor

QUIET = {"console": Console(quiet=True, file=io.StringIO())}

IRIS = {
    "name": "iris_predict",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.3, "val": 0.2},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 15, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}},
}


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return tunelab.train(IRIS, out=tmp_path_factory.mktemp("iris") / "run", **QUIET)


def _iris_frame() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    frame.insert(0, "id", [f"flower-{i}" for i in range(len(frame))])
    return frame


def test_predictions_on_the_runs_own_test_rows_are_its_saved_scores_exactly(iris_run):
    saved = iris_run.predictions()
    X = load_iris().data.astype(np.float32)
    got = iris_run.predict(X[saved["test_index"]])
    assert got.scores.dtype == saved["test_score"].dtype
    assert np.array_equal(got.scores, saved["test_score"])
    assert got.classes == ["setosa", "versicolor", "virginica"]
    names = np.array(got.classes)[saved["test_score"].argmax(axis=1)]
    assert list(got.labels) == list(names)


def test_a_frame_is_read_by_column_name_and_its_other_columns_pass_through(iris_run):
    frame = _iris_frame()
    shuffled = frame[list(reversed(frame.columns))]  # columns in another order, id last
    got = iris_run.predict(shuffled)
    by_array = iris_run.predict(load_iris().data.astype(np.float32))
    assert np.array_equal(got.scores, by_array.scores)
    table = got.to_frame()
    assert list(table.columns) == [
        "id",
        "prediction",
        "proba_setosa",
        "proba_versicolor",
        "proba_virginica",
    ]
    assert list(table["id"]) == list(frame["id"])
    probs = table[["proba_setosa", "proba_versicolor", "proba_virginica"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # a fitted iris model is right on most flowers: the probabilities mean something
    truth = np.array(["setosa", "versicolor", "virginica"])[load_iris().target]
    assert (table["prediction"].to_numpy() == truth).mean() > 0.85


def test_a_missing_column_is_named_with_the_closest_one(iris_run):
    frame = _iris_frame().drop(columns=["petal width (cm)"])
    with pytest.raises(DataError, match=r"no column `petal width \(cm\)`.*did you mean"):
        iris_run.predict(frame)
    text = _iris_frame().astype({"sepal length (cm)": str})
    text.loc[0, "sepal length (cm)"] = "long"
    with pytest.raises(DataError, match="not numeric"):
        iris_run.predict(text)
    gaps = _iris_frame()
    gaps.loc[4, "petal length (cm)"] = np.nan
    with pytest.raises(DataError, match=r"`petal length \(cm\)` at data row 5"):
        iris_run.predict(gaps)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_cli_predict_writes_each_table_format(iris_run, tmp_path, cli, suffix):
    frame = _iris_frame()
    source = tmp_path / f"new{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(source, index=False)
    else:
        frame.to_json(source, orient="records", lines=True)
    out = tmp_path / f"predictions{suffix}"
    done = cli("predict", str(iris_run.path), str(source), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"150 predictions (classification) -> {out}" in done.stdout
    if suffix == ".csv":
        back = pd.read_csv(out)
    elif suffix == ".parquet":
        back = pd.read_parquet(out)
    else:
        back = pd.read_json(out, lines=True)
    expected = iris_run.predict(frame).to_frame()
    assert list(back.columns) == list(expected.columns)
    assert list(back["prediction"]) == list(expected["prediction"])
    np.testing.assert_allclose(back["proba_virginica"], expected["proba_virginica"], rtol=1e-6)


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_cli_predict_npz_out_and_bad_input_exit_2_without_output(iris_run, tmp_path, cli):
    source = tmp_path / "new.csv"
    _iris_frame().to_csv(source, index=False)
    out = tmp_path / "p.npz"
    assert cli("predict", str(iris_run.path), str(source), "-o", str(out)).returncode == 0
    with np.load(out, allow_pickle=False) as arrays:
        assert list(arrays["classes"]) == ["setosa", "versicolor", "virginica"]
        assert arrays["proba"].shape == (150, 3)
        assert list(arrays["id"][:2]) == ["flower-0", "flower-1"]
        assert arrays["prediction"][0] == "setosa"

    _iris_frame().drop(columns=["sepal width (cm)"]).to_csv(tmp_path / "bad.csv", index=False)
    for args, message in [
        ((str(tmp_path / "bad.csv"), "-o", str(tmp_path / "x.csv")), "no column `sepal width"),
        ((str(tmp_path / "nope.csv"), "-o", str(tmp_path / "x.csv")), "does not exist"),
        ((str(source), "-o", str(tmp_path / "x.xlsx")), "cannot write .xlsx"),
        ((str(tmp_path / "new.csv"), "-o", str(tmp_path / "no" / "x.csv")), "does not exist"),
    ]:
        done = cli("predict", str(iris_run.path), *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line
        assert not (tmp_path / "x.csv").exists()


def test_a_torch_dataset_of_pairs_and_a_tensor_predict_as_the_array(iris_run):
    X = torch.tensor(load_iris().data, dtype=torch.float32)
    pairs = torch.utils.data.TensorDataset(X, torch.zeros(len(X)))
    by_array = iris_run.predict(X.numpy())
    assert np.array_equal(iris_run.predict(pairs).scores, by_array.scores)
    assert np.array_equal(iris_run.predict(X).scores, by_array.scores)
    with pytest.raises(DataError, match=r"shape \(3,\), but the run was trained on .*\(4,\)"):
        iris_run.predict(X[:, :3].numpy())
    with pytest.raises(DataError, match="cannot predict on a dict"):
        iris_run.predict({"a": 1})


def test_a_run_without_its_schema_says_so(iris_run, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(iris_run.path, copy)
    (copy / "schema.json").unlink()
    with pytest.raises(RunError, match="no schema.json"):
        tunelab.load_run(copy).predict(load_iris().data)


def _digit_folder(root, n_per_class: int = 30) -> None:
    digits = load_digits()
    for label in range(3):
        folder = root / f"digit{label}"
        folder.mkdir(parents=True)
        images = digits.images[digits.target == label][:n_per_class]
        for i, image in enumerate(images):
            pixels = np.round(image * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")


def test_an_image_run_predicts_on_an_image_folder_and_on_arrays(tmp_path):
    _digit_folder(tmp_path / "digits")
    spec = {
        "name": "digit_images",
        "seed": 0,
        "data": {"source": "images", "path": str(tmp_path / "digits")},
        "split": {"test": 0.3, "val": 0.2},
        "model": {"name": "cnn", "channels": 4, "hidden": 16},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
    }
    run = tunelab.train(spec, out=tmp_path / "run", **QUIET)
    saved = run.predictions()
    got = run.predict(tmp_path / "digits")  # the whole folder, sorted by path
    assert np.array_equal(got.scores[saved["test_index"]], saved["test_score"])
    assert got.passthrough["path"][0] == "digit0/000.png"

    data = tunelab.data.load_image_folder(tmp_path / "digits")
    np.savez(tmp_path / "flat.npz", X=data.X[:, 0], ids=np.arange(len(data)))  # (n, H, W)
    from_npz = run.predict(tmp_path / "flat.npz")
    assert np.array_equal(from_npz.scores, got.scores)
    assert list(from_npz.passthrough["ids"]) == list(range(len(data)))
    np.savez(tmp_path / "wrong.npz", X=np.zeros((2, 1, 9, 9), np.float32))
    with pytest.raises(DataError, match=r"shape \(1, 9, 9\).*\(1, 8, 8\)"):
        run.predict(tmp_path / "wrong.npz")
    (tmp_path / "big").mkdir()
    Image.new("L", (12, 12)).save(tmp_path / "big" / "a.png")
    with pytest.raises(DataError, match="is 12x12 .* trained on 8x8"):
        run.predict(tmp_path / "big")
    with pytest.raises(DataError, match="table, but the run was trained on image samples"):
        run.predict(pd.DataFrame({"a": [1.0]}))


def test_a_regression_run_predicts_values_and_a_study_best_is_a_run(tmp_path):
    spec = {
        "name": "diabetes_predict",
        "seed": 0,
        "data": {"source": "diabetes"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "linear"},
        "train": {"epochs": 5, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.1}},
        "tune": {
            "sampler": "random",
            "pruner": "none",
            "trials": 2,
            "space": {"train.optimizer.lr": {"low": 0.01, "high": 0.5, "log": True}},
        },
    }
    result = tunelab.tune_study(spec, out=tmp_path / "study", quiet=True)
    best = tunelab.load_run(result.path / "best")
    saved = best.predictions()
    from sklearn.datasets import load_diabetes

    X = load_diabetes().data.astype(np.float32)
    got = best.predict(X[saved["test_index"]])
    assert got.task == "regression" and got.scores.ndim == 1
    assert np.array_equal(got.scores, saved["test_score"])
    assert list(got.columns()) == ["prediction"]
    schema = json.loads((best.path / "schema.json").read_text())
    assert schema["kind"] == "table" and len(schema["features"]) == 10


def test_the_predictor_is_built_once_and_reused(iris_run):
    predictor = Predictor(iris_run)
    X = load_iris().data.astype(np.float32)
    first = predictor.predict(X[:5]).scores
    assert np.array_equal(predictor.predict(X[:5]).scores, first)
    assert not predictor.model.training  # eval mode: dropout off, batch norm frozen
