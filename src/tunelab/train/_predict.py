"""Predictions of a saved run on new data: ``Run.predict`` and ``tunelab predict``.

The run's model is built from its ``spec.yaml``, ``schema.json`` (what it was trained on),
``preprocess.json`` and ``model.safetensors``, once per :class:`Predictor`; the training data
is not read again. The outputs pass through the same functions as the run's own evaluation
(``predict`` in eval batches, then the loss's scores), so the predictions on a run's own test
rows, in order, are exactly its saved ``test_score``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tunelab._disk import read_json
from tunelab.data import (
    NewData,
    Schema,
    Standardizer,
    array_features,
    check_texts,
    frame_data,
    in_shape_of,
    new_rows,
    read_new_data,
    read_target_scale,
    texts_frame,
)
from tunelab.errors import DataError, RunError
from tunelab.models._variants import load_variant, read_variant
from tunelab.train._fit import predict
from tunelab.train._fold import load_saved_weights, model_with_stats
from tunelab.train._losses import to_scores
from tunelab.train._plan import DataShape, resolve

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.runs import Run  # runs imports this module (Run.predict): not at run time

__all__ = ["Predictor", "Predictions", "predict_run"]


@dataclass
class Predictions:
    """What a model predicts for each sample, in input order.

    Attributes:
        task: ``classification`` or ``regression``.
        scores: class probabilities ``(n, k)`` (classification) or predicted values ``(n,)``
            / ``(n, d)`` (regression): what a run's ``predictions.npz`` holds as ``*_score``.
        classes: the class names, in the order of the probability columns.
        passthrough: the input's other columns (a table's, the image paths), kept for output.
    """

    task: str
    scores: np.ndarray
    classes: list[str] | None = None
    passthrough: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """The predicted class names (classification) or values (regression)."""
        if self.task != "classification":
            return self.scores
        names = np.asarray(self.classes or [str(k) for k in range(self.scores.shape[1])])
        return names[self.scores.argmax(axis=1)]

    def columns(self) -> dict[str, np.ndarray]:
        """The passed-through columns, then ``prediction`` and one ``proba_<class>`` per
        class (or ``prediction_<j>`` per target of a multi-output regression)."""
        out = dict(self.passthrough)
        if self.task == "classification":
            out["prediction"] = self.labels
            for k, name in enumerate(self.classes or range(self.scores.shape[1])):
                out[f"proba_{name}"] = self.scores[:, k]
        elif self.scores.ndim == 1:
            out["prediction"] = self.scores
        else:
            out |= {f"prediction_{j}": self.scores[:, j] for j in range(self.scores.shape[1])}
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """For an ``.npz`` file: ``prediction``, ``proba`` and ``classes`` (classification) or
        ``prediction`` (regression), and the passed-through arrays."""
        out = dict(self.passthrough)
        out["prediction"] = self.labels
        if self.task == "classification":
            out["proba"] = self.scores
            out["classes"] = np.asarray(self.classes or [], dtype=str)
        return out

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns())


class Predictor:
    """A saved run's model, ready to predict on new data (built once).

    Example:
        >>> predictor = Predictor(tunelab.load_run("runs/penguins"))   # doctest: +SKIP
        >>> predictor.predict("new_penguins.csv").to_frame()            # doctest: +SKIP
    """

    def __init__(self, run: Run, *, device: str | None = None):
        self.run = run
        path = self.run.path / "schema.json"
        if not path.is_file():
            raise RunError(
                f"{self.run.path} has no schema.json (written by tunelab train since 0.1): "
                "train it again to predict with it"
            )
        self.schema = Schema.from_json(read_json(path), path=str(path))
        spec = self.run.spec
        classes = len(self.schema.classes) if self.schema.classes else None
        stats = Standardizer.from_json(read_json(self.run.path / "preprocess.json"))
        self.featurize = None  # a table encoded per training part: the refit's fitted state
        if stats.featurizer is not None:
            self.featurize = functools.partial(new_rows, stats.featurizer)
        shape = DataShape(
            task=self.schema.task,
            name=spec.name,
            in_shape=in_shape_of(stats, self.schema.in_shape),
            num_classes=classes,
            out_features=classes or self.schema.out_features,
        )
        self.plan = resolve(spec, shape, device=device)
        self.model = self._model(shape, stats)

    def _model(self, shape: DataShape, stats: Standardizer) -> torch.nn.Module:
        target = read_target_scale(self.run.path)  # the output layer of a scaled target
        model = model_with_stats(self.plan, shape.in_shape, shape.num_classes, stats, target)
        variant = read_variant(self.run.path)  # a compressed variant (tunelab compress)
        if variant is not None:
            return load_variant(self.run.path, model, variant).to(self.plan.device)
        model = load_saved_weights(model, self.run.path / "model.safetensors")
        return model.to(self.plan.device).eval()

    def new_data(self, data: Any) -> NewData:
        """Any accepted input as checked model input: a path, a DataFrame, an array or
        tensor of samples, or a torch ``Dataset`` (of samples or ``(sample, target)``)."""
        if self.schema.kind == "text" and isinstance(data, (list, tuple, np.ndarray)):
            texts = np.array([str(t) for t in data], dtype=object)  # a run on texts: the texts
            check_texts(texts, "the texts to predict on")
            return NewData(self.featurize(texts_frame(texts), "the texts to predict on"))
        if isinstance(data, (str, Path)):
            return read_new_data(data, self.schema, featurize=self.featurize)
        if hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
            return frame_data(data, self.schema, featurize=self.featurize)
        if self.featurize is not None:
            raise DataError(
                f"the run was trained on a table whose columns are encoded per training part; "
                f"give a pandas DataFrame or a table file with its columns ({self.schema.samples})"
            )
        if isinstance(data, torch.Tensor):
            return NewData(array_features(data.detach().cpu().numpy(), self.schema))
        if isinstance(data, np.ndarray):
            return NewData(array_features(data, self.schema))
        if isinstance(data, torch.utils.data.Dataset):
            return NewData(array_features(_samples_of(data), self.schema))
        raise DataError(
            f"cannot predict on a {type(data).__name__}; give a file path, a pandas "
            "DataFrame, a numpy array or torch tensor of samples, or a torch Dataset"
        )

    def predict(self, data: Any, *, batch_size: int | None = None) -> Predictions:
        new = self.new_data(data)
        plan = self.plan
        X = torch.as_tensor(new.X, device=plan.device)
        batch = batch_size or plan.spec.train.eval_batch_size
        with torch.no_grad():
            out = predict(self.model, X, batch_size=batch, bf16=plan.bf16)
            scores = to_scores(out, plan.loss, task=plan.task).cpu().numpy()
        return Predictions(plan.task, scores, self.schema.classes, new.passthrough)


def _samples_of(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """A map-style Dataset's samples, stacked (the first element of pair items)."""
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(
            "the Dataset to predict on has no len(); give a map-style Dataset"
        ) from None
    items = []
    for i in range(n):
        item = dataset[i]
        sample = item[0] if isinstance(item, (tuple, list)) else item
        items.append(np.asarray(sample.numpy() if isinstance(sample, torch.Tensor) else sample))
        if items[-1].shape != items[0].shape:
            raise DataError(
                f"the Dataset's sample {i} has shape {items[-1].shape}, sample 0 has "
                f"{items[0].shape}"
            )
    if not items:
        raise DataError("the Dataset to predict on is empty")
    return np.stack(items)


def predict_run(run: Run, data: Any, *, batch_size: int | None = None) -> Predictions:
    """The predictions of the run's model on ``data`` (see :meth:`Predictor.new_data`)."""
    return Predictor(run).predict(data, batch_size=batch_size)
