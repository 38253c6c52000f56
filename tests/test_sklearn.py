"""The scikit-learn estimators: scikit-learn's own estimator checks, and the estimators inside
cross_val_score, GridSearchCV and a Pipeline, on real data sets."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from tunelab.errors import SpecError
from tunelab.sklearn import TunelabClassifier, TunelabRegressor

# Checks that may fail, with the reason (scikit-learn marks them xfail, not strict: they pass
# on most runs). scikit-learn itself skips check_array_api_input unless SCIPY_ARRAY_API=1.
FLOAT32_BATCHES = (
    "float32 matrix products give one row's outputs to the last bit (about 1e-7) only for the "
    "same batch: a batch of 1 or of permuted rows may round differently, and the check asks "
    "for rtol=1e-7"
)
EXPECTED_FAILED = {
    "check_methods_subset_invariance": FLOAT32_BATCHES,
    "check_methods_sample_order_invariance": FLOAT32_BATCHES,
}
SMALL = {"epochs": 8, "optimizer": {"name": "adam", "lr": 0.03}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train faster on one thread than on threads shared with other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@parametrize_with_checks(
    [
        TunelabClassifier(model={"name": "mlp", "hidden": [32]}, train=SMALL),
        TunelabRegressor(model={"name": "mlp", "hidden": [32]}, train=SMALL),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def classifier(**kw):
    kw = {"model": {"name": "mlp", "hidden": [32]}, "train": SMALL, "random_state": 0} | kw
    return TunelabClassifier(**kw)


def test_cross_val_score_and_a_pipeline_with_a_scaler(iris):
    X, y = iris
    scores = cross_val_score(classifier(train={"epochs": 30}), X, y, cv=5)
    assert scores.shape == (5,) and scores.mean() > 0.85, scores

    pipe = make_pipeline(StandardScaler(), classifier()).fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (pipe.predict(X) == y).mean() > 0.9
    pipe.set_params(tunelabclassifier__train__epochs=2)  # through the pipeline, into `train`
    assert pipe[-1].train == SMALL | {"epochs": 2} and SMALL["epochs"] == 8


def test_grid_search_over_the_learning_rate_and_hidden_widths(iris):
    X, y = iris
    grid = {"train__optimizer__lr": [1e-4, 0.03], "model__hidden": [[4], [32]]}
    search = GridSearchCV(classifier(), grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    results = search.cv_results_
    means = {
        (p["model__hidden"][0], p["train__optimizer__lr"]): m
        for p, m in zip(results["params"], results["mean_test_score"], strict=True)
    }
    # 8 epochs at lr 1e-4 barely move the weights; lr 0.03 learns iris
    assert means[32, 0.03] > 0.85 and means[32, 0.03] > means[32, 1e-4] + 0.2, means
    best = search.best_estimator_
    assert best.spec_.train.optimizer.lr == search.best_params_["train__optimizer__lr"]
    assert best.spec_.model.hidden == search.best_params_["model__hidden"]


def test_string_labels_and_a_data_frame(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    frame = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    est = classifier().fit(frame, names)
    assert est.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert est.feature_names_in_.tolist() == list(frame.columns) and est.n_features_in_ == 4
    predicted = est.predict(frame)
    assert predicted.dtype == names.dtype and set(predicted) <= set(names)
    assert est.score(frame, names) > 0.9

    # two classes with bce's one logit: still one probability column per label
    X2, y2 = load_breast_cancer(return_X_y=True)
    labels = np.where(y2 == 1, "benign", "malignant")
    binary = classifier(train=SMALL | {"loss": "bce"}).fit(X2, labels)
    proba = binary.predict_proba(X2)
    assert proba.shape == (569, 2) and binary.classes_.tolist() == ["benign", "malignant"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert binary.score(X2, labels) > 0.9


def test_regression_on_diabetes_and_on_a_linear_set():
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    est = TunelabRegressor(
        model={"name": "mlp", "hidden": [16]},
        train={"epochs": 40, "optimizer": {"name": "adam", "lr": 0.003}},
        random_state=0,
    )
    # targets of unit size, as the loss likes them; predictions back in the data's units
    scaled = TransformedTargetRegressor(est, transformer=StandardScaler()).fit(X_tr, y_tr)
    r2 = r2_score(y_te, scaled.predict(X_te))
    baseline = r2_score(y_te, LinearRegression().fit(X_tr, y_tr).predict(X_te))  # 0.36
    assert r2 > 0.25 and r2 > baseline - 0.1, (r2, baseline)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ [2.0, -1.0, 0.5] + 0.1 * rng.normal(size=400)
    linear = TunelabRegressor(model="linear", train={"epochs": 40, "optimizer": "adam"})
    pred = linear.set_params(train__optimizer__lr=0.05, random_state=1).fit(X, y).predict(X)
    assert pred.shape == (400,) and r2_score(y, pred) > 0.99


def test_get_params_set_params_round_trip_and_clone():
    train = {"epochs": 3, "optimizer": "adam"}
    est = TunelabClassifier(train=train, validation_fraction=0.2)
    assert est.get_params() == {
        "model": "mlp",
        "train": train,
        "preprocess": "auto",
        "validation_fraction": 0.2,
        "random_state": None,
    }
    est.set_params(train__optimizer__lr=0.05, model__hidden=[8], random_state=3)
    assert est.train == {"epochs": 3, "optimizer": {"name": "adam", "lr": 0.05}}
    assert est.model == {"name": "mlp", "hidden": [8]}
    assert train == {"epochs": 3, "optimizer": "adam"}  # the caller's mapping is unchanged
    again = TunelabClassifier().set_params(**est.get_params())
    assert again.get_params() == est.get_params()
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "model_")


def test_random_state_reproduces_a_fit_and_pickles(iris):
    X, y = iris
    a = classifier(random_state=5).fit(X, y).predict_proba(X)
    fitted = classifier(random_state=5).fit(X, y)
    np.testing.assert_array_equal(fitted.predict_proba(X), a)
    assert not np.array_equal(classifier(random_state=6).fit(X, y).predict_proba(X), a)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), a)


def test_a_wrong_key_is_named_at_fit(iris):
    X, y = iris
    est = TunelabClassifier(train={"optimzer": "adam"})  # stored as given: no check yet
    with pytest.raises(SpecError, match=r"train\.optimzer.*did you mean `train\.optimizer`"):
        est.fit(X, y)
    with pytest.raises(SpecError, match=r"model\.hiden"):
        TunelabClassifier(model={"name": "mlp", "hiden": [3]}).fit(X, y)
    # the estimator's own parameters by their names, not by the spec paths they fill
    with pytest.raises(SpecError, match=r"`preprocess`.*did you mean `standardize`"):
        TunelabClassifier(preprocess="standardise").fit(X, y)
    for fraction in (1.5, 0.0):
        with pytest.raises(SpecError, match=r"`validation_fraction`: ") as caught:
            TunelabClassifier(validation_fraction=fraction).fit(X, y)
        assert "split" not in str(caught.value)


def test_validation_fraction_and_early_stopping_write_no_folder(iris, tmp_path, monkeypatch):
    X, y = iris
    monkeypatch.chdir(tmp_path)
    train = SMALL | {"epochs": 200, "early_stopping": {"patience": 3}}
    est = classifier(train=train, validation_fraction=0.2).fit(X, y)
    assert len(est.history_) < 200 and "val_loss" in est.history_[0]
    assert est.best_epoch_ is not None and est.score(X, y) > 0.85
    assert list(tmp_path.iterdir()) == []  # trained in memory: no run folder
    with pytest.raises(SpecError, match="validation_fraction"):
        classifier(train=train).fit(X, y)
