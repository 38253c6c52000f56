"""Runs on a table with string categories and gaps, no preprocessing by hand: trained, tuned
with 5-fold CV and predicted; the featurizer of every training part fitted on its rows alone."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

import tunelab
from tunelab.data import fit_part, load_dataset, make_splits
from tunelab.errors import DataError
from tunelab.train import Console

QUIET = {"console": Console(quiet=True, file=io.StringIO())}


def _spec(path, name: str, **split) -> dict:
    return {
        "name": name,
        "seed": 0,
        "data": {"source": "csv", "path": str(path), "target": "species"},
        "split": split or {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 8, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}},
        "evaluate": {"ci": {"resamples": 0}},
    }


@pytest.fixture(scope="module")
def table(tmp_path_factory, penguins):
    path = tmp_path_factory.mktemp("penguins") / "penguins.csv"
    penguins().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(table):
    return tunelab.train(_spec(table, "penguins"), out=table.parent / "run", **QUIET)


def test_a_table_with_categories_and_gaps_trains_and_predicts_its_test_rows_exactly(run, table):
    assert run.metrics["test"]["accuracy"]["value"] > 0.8
    saved = run.predictions()
    frame = pd.read_csv(table)
    got = run.predict(frame.iloc[saved["test_index"]])
    assert got.scores.dtype == saved["test_score"].dtype
    assert np.array_equal(got.scores, saved["test_score"])
    assert list(got.passthrough) == ["species"]  # the other column, passed through
    state = json.loads((run.path / "preprocess.json").read_text())["featurizer"]
    assert state["kind"] == "table" and state["columns"]["categorical"] == ["island", "sex"]


@pytest.mark.slow  # two `tunelab predict` processes
def test_new_rows_with_unknown_categories_missing_and_extra_columns(run, table, cli, tmp_path):
    new = pd.read_csv(table).head(6).drop(columns=["species"])
    new.insert(0, "tag", [f"bird-{i}" for i in range(6)])
    new.loc[:2, "island"] = "Atlantis"
    new.loc[3, "body_mass_g"] = np.nan  # a gap: filled as in training
    new.to_csv(tmp_path / "new.csv", index=False)
    done = cli("predict", str(run.path), str(tmp_path / "new.csv"), "-o", str(tmp_path / "o.csv"))
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        f"warning: {tmp_path / 'new.csv'}: categories the training part never had, encoded "
        "as all zeros: `island` (3 rows)"
    ]
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out["tag"]) == list(new["tag"]) and out["prediction"].notna().all()
    assert np.allclose(out.filter(like="proba_").sum(axis=1), 1, atol=1e-5)

    new.drop(columns=["sex"]).to_csv(tmp_path / "no_sex.csv", index=False)
    done = cli(
        "predict", str(run.path), str(tmp_path / "no_sex.csv"), "-o", str(tmp_path / "x.csv")
    )
    assert done.returncode == 2
    assert "has no column `sex`" in done.stderr and "island, bill_length_mm" in done.stderr
    with pytest.raises(DataError, match="encoded per training part; give a pandas DataFrame"):
        run.predict(np.zeros((2, 4), np.float32))


@pytest.mark.slow  # five folds and a refit
def test_categories_and_gaps_outside_a_training_part_never_reach_its_state(tmp_path, penguins):
    frame = penguins()
    path = tmp_path / "planted.csv"
    frame.to_csv(path, index=False)
    spec = _spec(path, "planted", test=0.2, cv=5)
    spec["data"]["preprocess"] = {"impute": "mean", "missing_indicator": True}
    spec["train"]["epochs"] = 2
    resolved = tunelab.load_spec(spec)
    splits = make_splits(load_dataset(resolved.data), resolved.split, seed=resolved.seed)
    test, val0 = splits.test, splits.folds[0].val
    # only in the sealed test part: a category, gaps and far values of body mass
    frame.loc[test[:3], "island"] = "Atlantis"
    frame.loc[test[3:6], "body_mass_g"] = np.nan
    frame.loc[test[6:9], "body_mass_g"] = 1e6
    frame.loc[val0[:3], "island"] = "Mars"  # only in fold 0's val part
    frame.to_csv(path, index=False)

    run = tunelab.train(spec, out=tmp_path / "run", **QUIET)
    assert run.splits["test"]["indices"] == test.tolist()  # planting moved no row
    refit = json.loads((run.path / "preprocess.json").read_text())["featurizer"]
    dev = splits.dev
    assert refit["categories"][0] == ["Biscoe", "Dream", "Mars", "Torgersen"]
    assert "body_mass_g" not in refit["missing_indicator"]
    assert refit["fill"]["numeric"][1] == pytest.approx(frame.loc[dev, "body_mass_g"].mean())
    assert refit["fill"]["numeric"][1] < 6000  # the test part's 1e6 values did not count

    ds = load_dataset(run.spec.data)
    for k, fold in enumerate(splits.folds):
        state = fit_part(ds, fold.train, run.spec.data.preprocess).featurizer.to_json()
        islands = state["categories"][0]
        assert "Atlantis" not in islands and ("Mars" in islands) == (k != 0)
        assert state["fill"]["numeric"][1] == pytest.approx(
            frame.loc[fold.train, "body_mass_g"].mean()
        )
    assert run.metrics["test"]["accuracy"]["value"] > 0.5


def test_nan_targets_are_one_line_naming_the_rows_and_no_run_folder(tmp_path, penguins):
    frame = penguins(40)
    frame.loc[[4, 17], "species"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(DataError) as e:
        tunelab.train(_spec(tmp_path / "holes.csv", "holes"), out=tmp_path / "run", **QUIET)
    text = str(e.value)
    assert "target column `species`" in text and "rows 5, 18" in text and "\n" not in text
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_cli_trains_tunes_with_5_fold_cv_and_predicts(table, cli, tmp_path):
    spec = _spec(table, "tuned", test=0.2, cv=5)
    spec["train"]["epochs"] = 3
    spec["tune"] = {"trials": 2, "space": {"train.optimizer.lr": {"low": 1e-3, "high": 0.1}}}
    (tmp_path / "spec.yaml").write_text(tunelab.dump_spec(tunelab.load_spec(spec)))
    done = cli("tune", "spec.yaml", "--out", "study", "--quiet")
    assert done.returncode == 0, done.stderr
    best = tmp_path / "study" / "best"
    saved = tunelab.load_run(best).predictions()
    pd.read_csv(table).iloc[saved["test_index"]].to_csv(tmp_path / "test.csv", index=False)
    done = cli("predict", str(best), "test.csv", "-o", "p.csv")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(tmp_path / "p.csv")
    names = np.array(sorted(pd.read_csv(table)["species"].unique()))
    assert list(got["prediction"]) == list(names[saved["test_score"].argmax(axis=1)])

    del spec["tune"]
    (tmp_path / "train.yaml").write_text(tunelab.dump_spec(tunelab.load_spec(spec)))
    done = cli("train", "train.yaml", "--out", "trained", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "trained" / "preprocess.json").read_text())["featurizer"]
