from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tunelab.data import load_image_folder, load_npz, load_table
from tunelab.errors import DataError


def iris_like(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "sepal_length": rng.normal(5, 1, n),
            "sepal_width": rng.normal(3, 0.5, n),
            "petals": rng.integers(1, 6, n),
            "patient": np.arange(n) // 3,
            "species": np.array(["virginica", "setosa", "versicolor"])[np.arange(n) % 3],
            "price": rng.normal(100, 20, n),
        }
    )


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "flowers.csv"
    iris_like().to_csv(path, index=False)
    return path


def message(excinfo) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# tables


def test_csv_classification_with_string_labels(table_csv):
    ds = load_table(table_csv, fmt="csv", target="species", features=["sepal_length", "petals"])
    assert ds.task == "classification"
    assert ds.classes == ["setosa", "versicolor", "virginica"]
    assert ds.X.dtype == np.float32 and ds.X.shape == (30, 2)
    assert ds.y.dtype == np.int64
    assert ds.y[:3].tolist() == [2, 0, 1]
    assert ds.feature_names == ["sepal_length", "petals"]
    assert ds.name == "flowers"
    assert ds.groups is None


def test_default_features_leave_out_target_and_groups(table_csv):
    frame = pd.read_csv(table_csv).drop(columns=["species"])
    frame.to_csv(table_csv, index=False)
    ds = load_table(table_csv, fmt="csv", target="price", groups="patient")
    assert ds.feature_names == ["sepal_length", "sepal_width", "petals"]
    assert ds.task == "regression"
    assert ds.y.dtype == np.float32
    assert ds.classes is None
    np.testing.assert_allclose(ds.y, frame["price"].to_numpy(), rtol=1e-6)
    assert ds.groups.tolist() == (np.arange(30) // 3).tolist()


def test_parquet_matches_csv(tmp_path):
    frame = iris_like()
    frame.to_parquet(tmp_path / "flowers.parquet")
    frame.to_csv(tmp_path / "flowers.csv", index=False)
    features = ["sepal_length", "sepal_width"]
    a = load_table(tmp_path / "flowers.parquet", fmt="parquet", target="species", features=features)
    b = load_table(tmp_path / "flowers.csv", fmt="csv", target="species", features=features)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.classes == b.classes
    assert a.name == "flowers"


@pytest.mark.parametrize(
    ("values", "task", "classes"),
    [
        ([0.5, 1.25, 2.0, 3.5], "regression", None),
        ([1.0, 2.0, 1.0, 10.0], "classification", ["1", "2", "10"]),
        (list(range(25)), "classification", None),  # integers: classes
        ([float(v) for v in range(25)], "regression", None),  # > 20 whole-number floats
        ([True, False, True, True], "classification", ["False", "True"]),
        (["b", "a", "b", "c"], "classification", ["a", "b", "c"]),
    ],
)
def test_task_inference(tmp_path, values, task, classes):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(len(values), dtype=float), "y": values}).to_csv(path, index=False)
    ds = load_table(path, fmt="csv", target="y")
    assert ds.task == task
    if classes is not None:
        assert ds.classes == classes
    if task == "classification":
        assert ds.y.dtype == np.int64
        assert [ds.classes[i] for i in ds.y] == [str(v).removesuffix(".0") for v in values]


def test_task_can_be_forced(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 2, 3]}).to_csv(path, index=False)
    assert load_table(path, fmt="csv", target="y", task="regression").task == "regression"
    with pytest.raises(DataError, match="did you mean `regression`"):
        load_table(path, fmt="csv", target="y", task="regresion")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", target="y")
    assert str(path) in message(e) and "does not exist" in message(e)


def test_unknown_format(table_csv):
    with pytest.raises(DataError, match="did you mean `parquet`"):
        load_table(table_csv, fmt="parqet", target="species")


def test_empty_file_and_no_rows(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError) as e:
        load_table(empty, fmt="csv", target="y")
    assert str(empty) in message(e) and "empty" in message(e)
    header = tmp_path / "header.csv"
    header.write_text("a,b,y\n")
    with pytest.raises(DataError) as e:
        load_table(header, fmt="csv", target="y")
    assert str(header) in message(e) and "no data rows" in message(e)


def test_target_not_found_names_closest_and_lists_columns(table_csv):
    with pytest.raises(DataError) as e:
        load_table(table_csv, fmt="csv", target="specie")
    text = message(e)
    assert "target column `specie`" in text and str(table_csv) in text
    assert "did you mean `species`" in text
    assert "sepal_length, sepal_width, petals, patient, species, price" in text


def test_feature_and_groups_not_found(table_csv):
    with pytest.raises(DataError) as e:
        load_table(table_csv, fmt="csv", target="species", features=["sepal_lenght"])
    text = message(e)
    assert "feature column `sepal_lenght`" in text and "did you mean `sepal_length`" in text
    assert str(table_csv) in text and "price" in text
    with pytest.raises(DataError, match=r"groups column `patients`.*did you mean `patient`"):
        load_table(table_csv, fmt="csv", target="price", groups="patients")


def test_non_numeric_features_are_named_when_not_encoded(table_csv):
    with pytest.raises(DataError) as e:
        load_table(table_csv, fmt="csv", target="price", preprocess={"categorical": "none"})
    text = message(e)
    assert "`species`" in text and "non-numeric" in text and "Encode" in text
    assert "categorical: onehot" in text
    assert "`sepal_length`" not in text and str(table_csv) in text


def test_missing_values_in_features_are_counted_when_not_imputed(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("a,b,c,y\n1,,3,0\n4,5,,1\n7,,9,0\n1,2,3,1\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", target="y", preprocess={"impute": "none"})
    text = message(e)
    assert "`b` (2)" in text and "`c` (1)" in text and "`a`" not in text and str(path) in text
    assert "impute: auto" in text


def test_infinite_values_are_refused_even_when_imputing(tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("a,b,y\n1,inf,0\n4,,1\n7,2,0\n1,2,1\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", target="y")
    text = message(e)
    assert "infinite values" in text and "`b` (1) at row 1" in text and "missing" not in text


def test_missing_values_in_target(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("a,y\n1,cat\n2,\n3,dog\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", target="y")
    assert "target column `y`" in message(e) and "1 missing" in message(e)
    assert str(path) in message(e)


def test_single_class_target(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a,y\n1,cat\n2,cat\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", target="y")
    assert "single class" in message(e) and "'cat'" in message(e) and str(path) in message(e)


def test_target_listed_as_feature(table_csv):
    with pytest.raises(DataError, match="also listed in data.features"):
        load_table(table_csv, fmt="csv", target="price", features=["price", "petals"])


def test_regression_needs_numeric_target(table_csv):
    with pytest.raises(DataError, match="non-numeric"):
        load_table(table_csv, fmt="csv", target="species", features=["petals"], task="regression")


# ---------------------------------------------------------------------------------------------
# npz


def test_npz_table(tmp_path):
    path = tmp_path / "arrays.npz"
    X = np.random.default_rng(0).normal(size=(10, 4))
    np.savez(path, X=X, y=np.arange(10) % 2, groups=np.arange(10) // 2)
    ds = load_npz(path)
    assert ds.X.dtype == np.float32 and ds.X.shape == (10, 4)
    assert ds.task == "classification" and ds.classes == ["0", "1"]
    assert ds.groups.tolist() == (np.arange(10) // 2).tolist()
    assert ds.name == "arrays"


def test_npz_images_get_a_channel_axis(tmp_path):
    path = tmp_path / "imgs.npz"
    np.savez(path, X=np.zeros((6, 8, 9), dtype=np.uint8), y=np.array(list("abcabc")))
    ds = load_npz(path)
    assert ds.X.shape == (6, 1, 8, 9) and ds.is_image
    assert ds.classes == ["a", "b", "c"]
    np.savez(path, X=np.zeros((6, 3, 8, 9)), y=np.linspace(0, 1, 6))
    ds = load_npz(path)
    assert ds.X.shape == (6, 3, 8, 9) and ds.task == "regression"


def test_npz_multi_output_regression(tmp_path):
    path = tmp_path / "multi.npz"
    np.savez(path, X=np.zeros((5, 2)), y=np.ones((5, 3)))
    ds = load_npz(path)
    assert ds.task == "regression" and ds.y.shape == (5, 3) and ds.out_features == 3


def test_npz_missing_key_lists_keys(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, features=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(DataError) as e:
        load_npz(path)
    text = message(e)
    assert "no array `X`" in text and "features, y" in text and str(path) in text


def test_npz_refuses_pickles(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.zeros((2, 2)), y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError) as e:
        load_npz(path)
    assert "object arrays" in message(e) and str(path) in message(e)


def test_npz_checks_nan_lengths_and_shape(tmp_path):
    path = tmp_path / "a.npz"
    X = np.zeros((4, 2))
    X[1, 0] = np.nan
    np.savez(path, X=X, y=np.arange(4))
    with pytest.raises(DataError, match="1 missing"):
        load_npz(path)
    np.savez(path, X=np.zeros((4, 2)), y=np.arange(3))
    with pytest.raises(DataError, match=r"`y`.*\(3,\).*4 samples"):
        load_npz(path)
    np.savez(path, X=np.zeros((4, 2)), y=np.arange(4), groups=np.arange(5))
    with pytest.raises(DataError, match="`groups`"):
        load_npz(path)
    np.savez(path, X=np.zeros(4), y=np.arange(4))
    with pytest.raises(DataError, match=r"shape \(4,\)"):
        load_npz(path)
    np.savez(path, X=np.zeros((4, 2)), y=np.array([0, 1, np.nan, 1]))
    with pytest.raises(DataError, match="array `y`"):
        load_npz(path)
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match="single class"):
        load_npz(path)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")


# ---------------------------------------------------------------------------------------------
# image folders


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).convert(mode or "L").save(path)


def test_image_folder_grayscale(tmp_path):
    root = tmp_path / "digits"
    save(root / "zero" / "a.png", np.full((6, 5), 255))
    save(root / "zero" / "b.PNG", np.zeros((6, 5)))
    save(root / "one" / "c.png", np.full((6, 5), 51))
    (root / "one" / "notes.txt").write_text("not an image")
    ds = load_image_folder(root)
    assert ds.classes == ["one", "zero"]
    assert ds.X.shape == (3, 1, 6, 5) and ds.X.dtype == np.float32
    assert ds.y.tolist() == [0, 1, 1]
    np.testing.assert_allclose(ds.X[:, 0, 0, 0], [0.2, 1.0, 0.0], atol=1e-6)
    assert ds.task == "classification" and ds.name == "digits"


def test_image_folder_rgb_when_any_image_has_colour(tmp_path):
    root = tmp_path / "pets"
    save(root / "cat" / "a.png", np.zeros((4, 4)))
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    save(root / "dog" / "b.jpg", rgb, mode="RGB")
    ds = load_image_folder(root)
    assert ds.X.shape == (2, 3, 4, 4)
    assert ds.X[1, 0].min() > 0.9 and ds.X[1, 1].max() < 0.1
    assert load_image_folder(root, grayscale=True).X.shape == (2, 1, 4, 4)


def test_image_folder_mixed_sizes(tmp_path):
    root = tmp_path / "mixed"
    save(root / "a" / "small.png", np.zeros((4, 6)))
    save(root / "b" / "big.png", np.full((8, 12), 255))
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    text = message(e)
    assert "small.png is 4x6" in text and "big.png is 8x12" in text
    assert "data.size: [H, W]" in text
    ds = load_image_folder(root, size=[5, 7])
    assert ds.X.shape == (2, 1, 5, 7)
    np.testing.assert_allclose(ds.X[1], 1.0, atol=1e-6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    flat = tmp_path / "flat"
    save(flat / "x.png", np.zeros((2, 2)))
    with pytest.raises(DataError) as e:
        load_image_folder(flat)
    assert "no class sub-folders" in message(e) and "1 image" in message(e)

    root = tmp_path / "root"
    save(root / "cat" / "a.png", np.zeros((2, 2)))
    (root / "dog").mkdir()
    (root / "dog" / "readme.md").write_text("")
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    assert str(root / "dog") in message(e) and "no images" in message(e)

    (root / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    assert str(root / "dog" / "broken.png") in message(e)


def test_image_folder_truncated_image_is_named(tmp_path):
    # The header reads fine; decoding the pixels fails.
    root = tmp_path / "root"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64))
    save(root / "cat" / "a.png", noise)
    save(root / "dog" / "b.png", noise)
    data = (root / "dog" / "b.png").read_bytes()
    (root / "dog" / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    assert "could not read image" in message(e) and str(root / "dog" / "b.png") in message(e)
