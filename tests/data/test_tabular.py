"""Tables with categories and gaps: the featurizer fitted on a training part, its JSON state,
and scikit-learn's ColumnTransformer as the oracle of its transform."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tunelab.data import Standardizer, fit_part, load_table, new_rows
from tunelab.errors import DataError


@pytest.fixture
def table(tmp_path, penguins):
    path = tmp_path / "penguins.csv"
    penguins().to_csv(path, index=False)
    return path


def _load(path, **preprocess):
    return load_table(path, fmt="csv", target="species", preprocess=preprocess or "auto")


def test_a_table_of_numbers_without_gaps_needs_no_featurizer(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    ds = load_table(path, fmt="csv", target="y")
    assert ds.featurizer is None and ds.table is None
    assert ds.X.dtype == np.float32 and ds.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]


def test_strings_and_gaps_get_a_featurizer_and_x_codes_each_row(table):
    ds = _load(table)
    assert ds.featurizer.numeric == ["bill_length_mm", "body_mass_g"]
    assert ds.featurizer.categorical == ["island", "sex"]
    assert (
        list(ds.table.columns)
        == ds.feature_names
        == [
            "island",
            "bill_length_mm",
            "body_mass_g",
            "sex",
        ]
    )
    raw = pd.read_csv(table)
    # X: the codes behind fingerprints and the leakage check, gaps NaN, categories ranked
    assert np.array_equal(np.isnan(ds.X[:, 3]), raw["sex"].isna().to_numpy())
    ranks = {"Biscoe": 0, "Dream": 1, "Torgersen": 2}
    assert ds.X[:, 0].tolist() == [ranks[v] for v in raw["island"]]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"missing_indicator": True},
        {"impute": "mean", "missing_indicator": True},
        {"impute": "most_frequent"},
    ],
)
def test_the_transform_is_scikit_learns_column_transformer(table, options):
    ds = _load(table, **options)
    train = np.arange(0, len(ds), 2)  # every other row: the training part
    state = ds.featurizer.fit(ds.table.iloc[train])
    X, unknown = state.transform(ds.table, where="t")
    oracle = ds.featurizer.transformer().fit(ds.featurizer.frame(ds.table.iloc[train], where="t"))
    expected = oracle.transform(ds.featurizer.frame(ds.table, where="t"))
    assert X.dtype == np.float32 and X.shape == expected.shape == (len(ds), state.width)
    assert np.array_equal(X, expected.astype(np.float32))
    assert unknown == {}
    assert not np.isnan(X).any()


def test_the_json_round_trip_gives_identical_transforms(table):
    ds = _load(table, missing_indicator=True)
    stats = fit_part(ds, np.arange(120), ds_preprocess := {"missing_indicator": True})
    saved = json.loads(json.dumps(stats.to_json()))  # as preprocess.json holds it
    back = Standardizer.from_json(saved)
    assert back.to_json() == saved
    assert np.array_equal(back.mean, stats.mean) and np.array_equal(back.std, stats.std)
    X, _ = back.featurizer.transform(ds.table, where="t")
    assert np.array_equal(X, stats.inputs)
    assert saved["featurizer"]["names"] == [
        "bill_length_mm",
        "body_mass_g",
        "island=Biscoe",
        "island=Dream",
        "island=Torgersen",
        "sex=female",
        "sex=male",
        "bill_length_mm_missing",
        "sex_missing",
    ]
    assert ds_preprocess == {"missing_indicator": True}


def test_the_state_holds_only_what_the_training_part_had(table):
    ds = _load(table, impute="mean", missing_indicator=True)
    raw = ds.table.copy()
    held_out = np.arange(150, len(raw))
    raw.loc[held_out[:4], "island"] = "Atlantis"  # a category outside the training part
    raw.loc[held_out[:6], "body_mass_g"] = np.nan  # gaps outside it
    raw.loc[held_out[6:9], "body_mass_g"] = 1e6  # values that would move the mean
    ds.table = raw
    stats = fit_part(ds, np.arange(150), {"impute": "mean", "missing_indicator": True})
    state = stats.featurizer.to_json()
    assert state["categories"][0] == ["Biscoe", "Dream", "Torgersen"]
    assert "body_mass_g" not in state["missing_indicator"]  # the training part had no gap there
    assert state["missing_indicator"] == ["bill_length_mm", "sex"]
    assert state["fill"]["numeric"][1] == pytest.approx(raw["body_mass_g"][:150].mean())
    assert stats.mean[1] == pytest.approx(raw["body_mass_g"][:150].mean(), rel=1e-6)
    # the held-out rows: Atlantis all zeros, the gaps filled with the training mean
    X = stats.inputs
    assert X[held_out[:4], 2:5].sum() == 0
    assert np.allclose(X[held_out[4:6], 1], raw["body_mass_g"][:150].mean())


def test_scale_auto_leaves_codes_alone_and_standardize_scales_every_column(table):
    ds = _load(table)
    auto = fit_part(ds, np.arange(150), "auto")
    assert np.all(auto.std[2:] == 1) and np.all(auto.mean[2:] == 0)
    assert auto.std[1] > 100  # body mass in grams: standardised
    every = fit_part(ds, np.arange(150), "standardize")
    assert np.all(every.std[2:] < 1) and np.all(every.mean[2:] > 0)
    assert fit_part(ds, np.arange(150), "none").kind == "none"


def test_widths_differ_by_the_categories_of_each_part(table):
    ds = _load(table)
    no_biscoe = np.flatnonzero(ds.table["island"].to_numpy() != "Biscoe")
    assert fit_part(ds, no_biscoe, "auto").featurizer.width == 6
    assert fit_part(ds, np.arange(len(ds)), "auto").featurizer.width == 7


def test_unknown_categories_in_new_rows_are_zeros_counted_in_one_warning(table):
    ds = _load(table)
    state = fit_part(ds, np.arange(150), "auto").featurizer
    new = ds.table.iloc[:5].copy()
    new.loc[new.index[:2], "island"] = "Atlantis"
    new.loc[new.index[4], "sex"] = "unknown"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = new_rows(state, new, "new.csv")
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "new.csv" in text and "`island` (2 rows)" in text and "`sex` (1 row)" in text
    assert X[:2, 2:5].sum() == 0 and X[4, 5:7].sum() == 0
    assert X[2:4, 2:5].sum() == 2  # known islands: one-hot as in training


def test_text_in_a_numeric_column_of_new_rows_is_named(table):
    state = fit_part(_load(table), np.arange(150), "auto").featurizer
    new = pd.read_csv(table).head(3).astype({"body_mass_g": object})
    new.loc[1, "body_mass_g"] = "heavy"
    with pytest.raises(DataError, match="new.csv: column `body_mass_g` is not numeric"):
        new_rows(state, new, "new.csv")


def test_gaps_are_refused_when_impute_is_none(table):
    with pytest.raises(DataError, match=r"`bill_length_mm` \(9\) at rows .*impute: auto"):
        _load(table, impute="none")
    with pytest.raises(DataError, match=r"`sex` at rows .*impute is none"):
        load_table(
            table,
            fmt="csv",
            target="species",
            features=["island", "body_mass_g", "sex"],
            preprocess={"impute": "none"},
        )


def test_a_column_with_a_different_string_in_each_row_is_warned_as_an_id(tmp_path, penguins):
    frame = penguins(40)
    frame.insert(0, "name", [f"bird-{i}" for i in range(40)])
    frame.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.warns(UserWarning, match=r"column `name` has a different value in each of its 40"):
        _load(tmp_path / "ids.csv")
    frame.drop(columns=["name"]).to_csv(tmp_path / "no_ids.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _load(tmp_path / "no_ids.csv")


def test_a_parquet_table_with_category_and_boolean_columns(tmp_path, penguins):
    frame = penguins(60)
    frame["island"] = frame["island"].astype("category")
    frame["tagged"] = np.arange(60) % 3 == 0  # booleans are numbers: 0/1, not one-hot
    frame.to_parquet(tmp_path / "p.parquet")
    ds = load_table(tmp_path / "p.parquet", fmt="parquet", target="species")
    assert ds.featurizer.categorical == ["island", "sex"]
    assert ds.featurizer.numeric == ["bill_length_mm", "body_mass_g", "tagged"]
    stats = fit_part(ds, np.arange(40), "auto")
    assert stats.featurizer.names[:3] == ["bill_length_mm", "body_mass_g", "tagged"]
    assert set(stats.inputs[:, 2]) == {0.0, 1.0} and stats.inputs.shape == (60, 8)
