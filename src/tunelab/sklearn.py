"""scikit-learn estimators: a tunelab model, trained by tunelab's own loop, inside
``cross_val_score``, ``GridSearchCV`` and ``Pipeline``.

``TunelabClassifier(model={"name": "mlp", "hidden": [64]}, train={"epochs": 30})`` follows
scikit-learn's estimator contract: the constructor stores its arguments as given; ``fit``
validates the arrays (scikit-learn's ``validate_data``) and the ``model`` and ``train``
mappings (tunelab's spec loader: a wrong key is named, with a did-you-mean), then trains on
the arrays in memory through ``train_fold`` (preprocessing fitted on the training rows, built
into the model; no run folder is written). ``predict`` and ``predict_proba`` run the model in
eval mode. Keys inside the mappings are parameters too, ``set_params(train__optimizer__lr=0.01)``,
so a grid can search them. ``validation_fraction`` holds out part of the fitted rows: each
epoch is validated on it (``history_``) and ``train.early_stopping`` can watch it.

Pickling a fitted estimator (scikit-learn's ``joblib`` does) pickles its torch model: that is
the caller's choice; tunelab itself stores weights as safetensors only.

Example:
    >>> from sklearn.model_selection import cross_val_score          # doctest: +SKIP
    >>> est = TunelabClassifier(model={"name": "mlp", "hidden": [64]}, train={"epochs": 30})
    >>> cross_val_score(est, X, y, cv=5).mean()                       # doctest: +SKIP
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6: no validate_data, no __sklearn_tags__
    import sklearn

    raise ImportError(
        f"tunelab.sklearn needs scikit-learn >= 1.6; this is {sklearn.__version__}. "
        "Upgrade it: pip install 'scikit-learn>=1.6'"
    ) from None

from tunelab.data import Dataset, Fold, Splits, make_splits
from tunelab.errors import RunError, SpecError
from tunelab.spec import Spec, load_spec
from tunelab.train import Prepared, predict, resolve, to_scores, train_fold

__all__ = ["TunelabClassifier", "TunelabRegressor"]

# The spec's data node. A spec needs one; the estimator never loads it: it trains on the arrays
# given to ``fit`` (and a factory without ``module:function`` cannot be run by tunelab train).
IN_MEMORY = {"source": "python", "factory": "the arrays given to fit(X, y)"}
NESTED = ("model", "train")  # the parameters whose keys set_params reaches into
# spec paths that are the estimator's own parameters, as the spec loader's messages name them
PARAMETERS = {
    "`data.preprocess`": "`preprocess`",
    "`split.val`": "`validation_fraction`",
    "`split`: holdout needs a validation part: set split.val > 0 or use split.cv": (
        "`validation_fraction`: must be above 0 (None: no validation part)"
    ),
}


class _TunelabEstimator(BaseEstimator):
    """What both estimators share: the parameters, the spec, training and the model's scores.

    Args:
        model: a model plug-in by name (``"mlp"``) or its mapping (``{"name": "mlp",
            "hidden": [64]}``), as the spec's ``model`` section.
        train: the spec's ``train`` section (epochs, batch_size, optimizer, schedule, loss,
            early_stopping, device...); None: tunelab's defaults.
        preprocess: ``data.preprocess``: ``auto`` or ``standardize`` (statistics of the
            training rows, built into the model) or ``none``.
        validation_fraction: a fraction of the fitted rows held out (stratified for
            classification) to validate every epoch on; needed by ``train.early_stopping``.
            None: train on every row.
        random_state: the spec's seed (an int), or a ``RandomState`` / None to draw one from.
    """

    _task = "classification"

    def __init__(
        self,
        model: str | Mapping[str, Any] = "mlp",
        train: Mapping[str, Any] | None = None,
        *,
        preprocess: str = "auto",
        validation_fraction: float | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.model = model
        self.train = train
        self.preprocess = preprocess
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def set_params(self, **params: Any) -> _TunelabEstimator:
        """Set parameters; ``model__hidden`` or ``train__optimizer__lr`` set one key inside the
        ``model`` or ``train`` mapping (a copy: the mapping given is never changed)."""
        nested = {k: v for k, v in params.items() if k.split("__")[0] in NESTED and "__" in k}
        super().set_params(**{k: v for k, v in params.items() if k not in nested})
        for key, value in nested.items():
            head, *path = key.split("__")
            setattr(self, head, _with_value(getattr(self, head), path, value, where=head))
        return self

    def spec(self, *, seed: int = 0) -> Spec:
        """The tunelab spec these parameters describe, validated by tunelab's spec loader
        (the ``data`` node stands for the arrays given to ``fit``; ``split`` applies only
        with ``validation_fraction``, the holdout it describes)."""
        split: dict[str, Any] = {"test": 0.0}
        if self.validation_fraction is not None:
            split["val"] = self.validation_fraction
        raw = {
            "name": "sklearn",
            "seed": seed,
            "data": IN_MEMORY | {"preprocess": self.preprocess, "task": self._task},
            "split": split,
            "model": self.model,
            "train": {} if self.train is None else self.train,
            "evaluate": {"test": False, "ci": {"resamples": 0}},
        }
        try:
            return load_spec(raw)
        except SpecError as exc:  # a parameter of the estimator by its own name
            message = str(exc)
            for path, parameter in PARAMETERS.items():
                message = message.replace(path, parameter)
            raise SpecError(message) from None

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, classes: list[str] | None) -> None:
        """Train on validated arrays: ``y`` class indices or float targets."""
        spec = self.spec(seed=_seed(self.random_state))
        if spec.train.early_stopping is not None and self.validation_fraction is None:
            raise SpecError(
                "train.early_stopping needs a validation part: set validation_fraction "
                "(e.g. 0.1) or leave early_stopping out"
            )
        names = getattr(self, "feature_names_in_", None)
        ds = Dataset(
            X=X,
            y=y,
            task=self._task,
            name=f"the data given to {type(self).__name__}.fit",
            classes=classes,
            feature_names=None if names is None else [str(n) for n in names],
        )
        if self.validation_fraction is None:  # every row trains
            everything = Fold(np.arange(len(ds)), np.empty(0, np.int64))
            splits = Splits("none", np.empty(0, np.int64), [everything], spec.seed)
        else:
            splits = make_splits(ds, spec.split, seed=spec.seed)
        plan = resolve(spec, ds)
        prep = Prepared(
            ds,
            splits,
            torch.tensor(X, device=plan.device),
            torch.tensor(y, device=plan.device),
            plan,
        )
        fold = splits.folds[0]
        val = fold.val if len(fold.val) else None
        model, history, _ = train_fold(prep, fold.train, val, seed=spec.seed)
        if history.failure:
            raise RunError(f"training failed: {history.failure}")
        self.spec_ = spec
        self.model_ = model
        self.history_ = history.rows
        self.best_epoch_ = history.best_epoch
        self._scoring = (plan.loss, plan.bf16)  # what turns outputs into scores

    def _scores(self, X: Any) -> np.ndarray:
        """The model's scores (class probabilities, or predictions) for new rows, eval mode."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        loss, bf16 = self._scoring
        device = next(self.model_.parameters()).device
        batch = self.spec_.train.eval_batch_size
        out = predict(self.model_, torch.tensor(X, device=device), batch_size=batch, bf16=bf16)
        return to_scores(out, loss, task=self._task).cpu().numpy().astype(np.float64)


class TunelabClassifier(ClassifierMixin, _TunelabEstimator):
    """A tunelab model as a scikit-learn classifier (labels of any dtype, strings too).

    Fitted attributes: ``classes_`` (the labels, sorted), ``n_features_in_``,
    ``feature_names_in_`` (a DataFrame's columns), ``spec_`` (the validated spec),
    ``model_`` (the torch model, its preprocessing built in), ``history_`` (one row per
    epoch), ``best_epoch_`` (by the validation part; None without one).

    Example:
        >>> est = TunelabClassifier(model={"name": "mlp", "hidden": [64]}, train={"epochs": 30})
        >>> est.fit(X, y).predict_proba(X)                             # doctest: +SKIP
    """

    _task = "classification"

    def fit(self, X: Any, y: Any) -> TunelabClassifier:
        """Train on ``X`` (n, features) and the labels ``y`` (n,)."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self._fit_arrays(X, codes.astype(np.int64), [str(c) for c in self.classes_])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))``, in the order of ``classes_``."""
        return self._scores(X)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class TunelabRegressor(RegressorMixin, _TunelabEstimator):
    """A tunelab model as a scikit-learn regressor (one target, or several: ``y`` (n, d)).

    Fitted attributes as :class:`TunelabClassifier`'s, without ``classes_``.

    Example:
        >>> est = TunelabRegressor(model={"name": "mlp", "hidden": [32]}, train={"epochs": 50})
        >>> est.fit(X, y).score(X, y)                                  # doctest: +SKIP
    """

    _task = "regression"

    def fit(self, X: Any, y: Any) -> TunelabRegressor:
        """Train on ``X`` (n, features) and the targets ``y`` (n,) or (n, d)."""
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True, multi_output=True)
        self._target_shape = y.shape[1:]
        self._fit_arrays(X, y.astype(np.float32), None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions shaped as the fitted ``y``: (n,) or (n, d)."""
        return self._scores(X).reshape(-1, *self._target_shape)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _seed(random_state: Any) -> int:
    """An int is the spec's seed itself; a ``RandomState`` (or None: numpy's global one)
    draws one."""
    rng = check_random_state(random_state)  # numpy's checks of the value
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


def _with_value(tree: Any, path: list[str], value: Any, *, where: str) -> Any:
    """A copy of ``tree`` with ``value`` at ``path``; a name (``"adam"``) on the way becomes
    ``{"name": "adam"}``, None an empty mapping."""
    if not path:
        return value
    if tree is None:
        tree = {}
    elif isinstance(tree, str):
        tree = {"name": tree}
    elif not isinstance(tree, Mapping):
        raise ValueError(
            f"cannot set {where}__{'__'.join(path)}: {where} is a {type(tree).__name__}, "
            "not a mapping"
        )
    key = path[0]
    return {**tree, key: _with_value(tree.get(key), path[1:], value, where=f"{where}__{key}")}
