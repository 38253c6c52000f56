"""The data of a spec, loaded, split and put on the device once (:class:`Prepared`), and a
fold's view of raw texts (:func:`fold_view`): the featurizer fitted on the fold's training
part alone, every sample transformed by it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tunelab.data import Dataset, LazyPart, Splits, fit_featurizer, load_dataset, make_splits
from tunelab.errors import DataError
from tunelab.spec import Spec
from tunelab.train._plan import Plan, check_names, resolve, resolve_device

__all__ = ["Prepared", "prepare", "fold_view", "featurized"]

_KEPT_VIEWS = 8  # fitted views kept per data set (the folds and the refit of a CV run)


@dataclass
class Prepared:
    """Everything a fold needs, built once: the data on the device and the resolved plan.

    ``X`` is None for a lazy data set (its inputs are read through a DataLoader, see
    :meth:`inputs`) and for raw texts until a fold's view featurizes them (:func:`fold_view`;
    ``featurizer`` is then the fitted one); the targets ``y`` are always on the device.
    ``views`` keeps fitted views by training part, shared by every trial of a study."""

    ds: Dataset
    splits: Splits
    X: torch.Tensor | None
    y: torch.Tensor
    plan: Plan
    featurizer: Any = None
    views: dict = field(default_factory=dict, repr=False)

    def inputs(self, idx: np.ndarray) -> torch.Tensor | LazyPart:
        """The inputs of the samples at ``idx``: a tensor on the device, or a lazy part."""
        if self.X is None:
            if self.ds.lazy is None:
                raise DataError("raw texts have no inputs before a fold's featurizer is fitted")
            return LazyPart(self.ds.lazy, np.asarray(idx, np.int64), self.device)
        return self.X[torch.as_tensor(idx, device=self.device)]

    @property
    def spec(self) -> Spec:
        return self.plan.spec

    @property
    def device(self) -> torch.device:
        return self.plan.device

    @property
    def bf16(self) -> bool:
        return self.plan.bf16

    @property
    def loss(self) -> Any:
        return self.plan.loss

    @property
    def metrics(self) -> list[str]:
        return list(self.plan.metrics)


def featurized(prep: Prepared, fitted: Any, plan: Plan | None = None) -> Prepared:
    """``prep`` with every sample's text transformed by ``fitted`` as its inputs."""
    features = fitted.transform(prep.ds.texts)
    ds = dataclasses.replace(prep.ds, X=features)
    X = torch.as_tensor(features, device=prep.device)
    return Prepared(ds, prep.splits, X, prep.y, plan or prep.plan, fitted, prep.views)


def fold_view(prep: Prepared, train_idx: np.ndarray, plan: Plan | None = None) -> Prepared:
    """What a fold trains and is evaluated on: for raw texts, the featurizer of
    ``data.featurize`` fitted on the texts at ``train_idx`` alone and every sample
    transformed; ``prep`` itself for every other data set.

    Views are kept in ``prep.views`` by the featurizer's options and the training part, so the
    trials of a study and the evaluation after training fit each featurizer once."""
    plan = plan or prep.plan
    if prep.X is not None or prep.ds.texts is None:
        return prep if plan is prep.plan else dataclasses.replace(prep, plan=plan)
    options = plan.spec.data.featurize
    rows = np.asarray(train_idx, np.int64)
    key = (options.model_dump_json(), hashlib.sha256(rows.tobytes()).hexdigest())
    if key not in prep.views:
        if len(prep.views) >= _KEPT_VIEWS:
            prep.views.pop(next(iter(prep.views)))
        fitted = fit_featurizer(options, prep.ds.texts[rows])
        prep.views[key] = featurized(prep, fitted)
    view = prep.views[key]
    return view if plan is view.plan else dataclasses.replace(view, plan=plan)


def prepare(
    spec: Spec,
    *,
    reuse: Prepared | None = None,
    extra_metrics: Sequence[str] = (),
    splits: Splits | dict | None = None,
    plan: Plan | None = None,
) -> Prepared:
    """Check the names, load the data, make the splits, put the data on the device, resolve.

    With ``reuse`` the data, splits and device of an earlier :class:`Prepared` are kept and
    the plan is ``resolve(spec, ..., reuse=reuse.plan)``: only the spec sections that differ
    from the earlier plan's are resolved and checked again (a tuning trial: data is loaded
    once per worker, checks are made once per study). With ``plan`` (resolved already, for
    ``spec``) nothing is resolved. ``extra_metrics`` are logged per epoch as well.
    ``splits`` gives the parts instead of making them: a :class:`Splits`, or a run's
    ``splits.json`` content, checked against the data's fingerprints.
    """
    views: dict = {}
    if reuse is not None:
        ds, splits, X, y, device = reuse.ds, reuse.splits, reuse.X, reuse.y, reuse.device
        views = reuse.views
    else:
        if plan is None:
            check_names(spec)  # a typo fails before any data is read
        device = plan.device if plan is not None else resolve_device(spec.train.device)
        ds = load_dataset(spec.data, seed=spec.seed)
        if isinstance(splits, dict):
            splits = Splits.from_json(splits, ds)
        elif splits is None:
            splits = make_splits(ds, spec.split, seed=spec.seed)
        # a copy: built-in sources are read-only
        lazy = ds.lazy is not None or ds.X is None
        X = None if lazy else torch.tensor(ds.X, dtype=torch.float32, device=device)
        y = torch.tensor(np.asarray(ds.y), device=device)
    if plan is None:
        earlier = reuse.plan if reuse is not None else None
        plan = resolve(spec, ds, extra_metrics=extra_metrics, device=device, reuse=earlier)
    return Prepared(ds, splits, X, y, plan, views=views)
