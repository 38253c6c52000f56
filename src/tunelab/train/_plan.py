"""Resolve once, at the door: a spec and the data's shape become a :class:`Plan`.

:func:`resolve` turns the ``train`` (and ``evaluate``) sections into ready objects (the loss
and its facts, the logged metrics with their directions, what the best epoch, early stopping
and a plateau schedule watch, the augmentation, the device and precision) and makes every
check that needs only the spec and the data: no ``SpecError`` comes from the training loop.

A study resolves its spec once; ``resolve(trial_spec, data, reuse=study_plan)`` takes every
part whose spec sections a trial left unchanged as it is, checks included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tunelab.data import Dataset, LazyPart, Splits, Standardizer, load_dataset, make_splits
from tunelab.errors import SpecError, did_you_mean
from tunelab.evaluate import DEFAULT_METRICS, METRICS, Metric, get_metric
from tunelab.models import check_inputs
from tunelab.plugins import LOSSES, OPTIMIZERS
from tunelab.spec import Spec
from tunelab.train._callbacks import Callback, EarlyStopping
from tunelab.train._fit import Watch, maximize, monitored
from tunelab.train._losses import default_loss, outputs_for, predictions_of

__all__ = [
    "Plan",
    "Watch",
    "DataShape",
    "resolve",
    "resolve_device",
    "check_names",
    "Prepared",
    "prepare",
]


@dataclass(frozen=True)
class DataShape:
    """What a plan needs to know about the data; a :class:`tunelab.data.Dataset` has it too.

    Example (``fit`` on tensors of one's own):
        >>> X, y = torch.randn(8, 4), torch.arange(8) % 3
        >>> DataShape.of(X, y, task="classification").num_classes
        3
    """

    task: str
    name: str
    in_shape: tuple[int, ...]
    num_classes: int | None
    out_features: int

    @classmethod
    def of(cls, X, y, *, task: str, name: str = "the data") -> DataShape:
        """The shape of features ``X`` and targets ``y`` (class indices or regression targets)."""
        if task == "classification":
            k = int(y.max()) + 1
            return cls(task, name, tuple(X.shape[1:]), k, k)
        dims = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
        return cls(task, name, tuple(X.shape[1:]), None, dims)


@dataclass(frozen=True)
class Plan:
    """A spec resolved against the data's shape: everything ``fit`` and a fold need, checked.

    Attributes:
        spec: the spec it was resolved from.
        task: ``classification`` or ``regression``.
        device, bf16: where to train, and whether to autocast to bfloat16.
        loss: the loss options (the spec's, or the task's default); ``outputs`` is how many
            model outputs it needs; ``predictions(outputs, targets)`` turns a batch's outputs
            into the predictions the metrics' device forms take.
        metrics: logged per epoch as ``val_<m>``; ``device_metrics`` (those of them with a
            device form in the metric registry) as ``train_<m>`` too.
        eval_metrics: the metrics of an evaluated part (``evaluate.metrics`` or the task's).
        lr: the optimizer's learning rate (the schedule's factor multiplies it).
        full_batch, closure, l2: the optimizer's facts (one step per epoch; ``step(closure)``;
            weight decay that enters the loss as ``(l2 / 2) * ||w||^2``).
        augment: the batched augmentation ``augment(x, generator)``, or None.
        best: what the best epoch is chosen by (with a validation part).
        plateau: what reduce-on-plateau watches with and without a validation part.
        stopping: what early stopping watches (with a validation part), or None.
    """

    spec: Spec
    task: str
    device: torch.device
    bf16: bool
    loss: Any
    outputs: int
    predictions: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metrics: tuple[str, ...]
    device_metrics: tuple[Metric, ...]
    eval_metrics: tuple[str, ...]
    lr: float
    full_batch: bool
    closure: bool
    l2: float
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None
    best: Watch | None
    plateau: tuple[Watch | None, Watch | None]
    stopping: Watch | None
    parts: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False, compare=False)

    def logged(self, *, has_val: bool) -> list[str]:
        """The values every epoch's row holds (besides ``epoch``, ``lr``, ``seconds``)."""
        keys = ["train_loss", *(f"train_{m.name}" for m in self.device_metrics)]
        return keys + (["val_loss", *(f"val_{m}" for m in self.metrics)] if has_val else [])

    def plateau_watch(self, *, has_val: bool) -> Watch | None:
        return self.plateau[0] if has_val else self.plateau[1]

    def callbacks(self, *, has_val: bool) -> list[Callback]:
        """Fresh instances of the spec's callbacks (early stopping needs a validation part)."""
        es = self.spec.train.early_stopping
        if es is None or not has_val or self.stopping is None:
            return []
        return [
            EarlyStopping(
                monitor=self.stopping.key,
                greater_is_better=self.stopping.maximize,
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best=es.restore_best,
            )
        ]


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            f"train.device is {name!r} but this machine has no CUDA device; use auto or cpu"
        )
    return device


def check_names(spec: Spec) -> None:
    """The checks that need only the registries: metric and monitor names (no data yet)."""
    for name in (spec.train.metrics or []) + (spec.evaluate.metrics or []):
        get_metric(name)
    for where, section in _monitors(spec):
        monitor = getattr(section, "monitor", None)
        if monitor is None:
            continue
        base = monitor.removeprefix("val_").removeprefix("train_")
        if base != "loss" and base not in METRICS:
            valid = ["val_loss", "train_loss"] + [f"val_{m}" for m in METRICS]
            raise SpecError(
                f"{where}: unknown value {monitor!r}{did_you_mean(monitor, valid)}; "
                "use val_loss, train_loss or val_<metric>"
            )


def resolve(
    spec: Spec,
    data: DataShape,
    *,
    extra_metrics: Sequence[str] = (),
    device: torch.device | str | None = None,
    reuse: Plan | None = None,
) -> Plan:
    """The plan of ``spec`` for data of this shape, with every check made.

    Args:
        spec: a validated spec.
        data: the data set (or anything with its ``task``, ``name``, ``in_shape``,
            ``num_classes`` and ``out_features``).
        extra_metrics: logged per epoch as well (e.g. a study's objective).
        device: where the data lives; default ``train.device`` resolved.
        reuse: a plan of a spec that differs from ``spec`` in some values only (a study's, for
            one of its trials): its parts whose spec sections are the same are taken as they
            are, without checking them again.

    Raises:
        SpecError: what does not fit (a loss of the other task, a metric no epoch can log, a
            monitor of a value that is not logged, an image-only augmentation on a table...).
    """
    shape = (data.task, data.name, tuple(data.in_shape), data.num_classes, data.out_features)
    parts: dict[str, tuple[Any, Any]] = {}
    kept = reuse.parts if reuse is not None and reuse.parts.get("data", (None,))[0] == shape else {}

    def part(name: str, key: Any, make: Callable[[], Any]) -> Any:
        value = kept[name][1] if name in kept and kept[name][0] == key else make()
        parts[name] = (key, value)
        return value

    cfg = spec.train
    part("data", shape, lambda: None)
    part("names", (cfg.metrics, spec.evaluate.metrics, *_sections(spec)), lambda: check_names(spec))
    if device is None:
        device = part("device", cfg.device, lambda: resolve_device(cfg.device))
    device = torch.device(device)
    loss = part("loss", cfg.loss, lambda: _resolve_loss(cfg.loss, data))
    logged, counted, evaluated = part(
        "metrics",
        (cfg.metrics, spec.evaluate.metrics, tuple(extra_metrics)),
        lambda: _resolve_metrics(spec, data, extra_metrics),
    )
    best, plateau, stopping = part(
        "watch", (*_sections(spec), logged), lambda: _resolve_watch(spec, logged, counted)
    )
    augment = part("augment", cfg.augment, lambda: _resolve_augment(spec, data))
    part("model", spec.model, lambda: check_inputs(spec.model, data))  # token ids: sequences
    facts = OPTIMIZERS.for_options(type(cfg.optimizer)).extra  # full_batch, closure, l2_in_loss
    return Plan(
        spec=spec,
        task=data.task,
        device=device,
        bf16=cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"),
        loss=loss,
        outputs=outputs_for(loss, task=data.task, out_features=data.out_features),
        predictions=predictions_of(loss, task=data.task),
        metrics=logged,
        device_metrics=counted,
        eval_metrics=evaluated,
        lr=cfg.optimizer.lr,
        full_batch=facts.get("full_batch", False),
        closure=facts.get("closure", False),
        # torch's L-BFGS has no weight_decay: its L2 enters the loss as (wd / 2) * ||w||^2
        l2=cfg.optimizer.weight_decay if facts.get("l2_in_loss") else 0.0,
        augment=augment,
        best=best,
        plateau=plateau,
        stopping=stopping,
        parts=parts,
    )


def _monitors(spec: Spec) -> list[tuple[str, Any]]:
    return [
        ("train.early_stopping.monitor", spec.train.early_stopping),
        ("train.schedule.monitor", spec.train.schedule),
    ]


def _sections(spec: Spec) -> tuple[Any, Any]:
    return spec.train.early_stopping, spec.train.schedule


def _resolve_loss(loss, data: DataShape):
    """The spec's loss (or the task's default), checked against the task and the classes."""
    loss = loss or default_loss(data.task)
    facts = LOSSES.for_options(type(loss)).extra  # task, outputs
    if facts.get("task", data.task) != data.task:
        fitting = [p.name for p in LOSSES if p.extra.get("task", data.task) == data.task]
        listed = ", ".join(fitting[:-1]) + (" or " if len(fitting) > 1 else "") + fitting[-1]
        raise SpecError(
            f"train.loss is {loss.name} but {data.name} is a {data.task} task; use {listed}"
        )
    if facts.get("outputs") == 1 and data.num_classes != 2:
        raise SpecError(
            f"train.loss {loss.name} is for two classes; {data.name} has {data.num_classes}. "
            "Use cross_entropy"
        )
    return loss


def _resolve_metrics(
    spec: Spec, data: DataShape, extra: Sequence[str]
) -> tuple[tuple[str, ...], tuple[Metric, ...], tuple[str, ...]]:
    """The metrics logged per epoch, those of them counted on the device, and the evaluated."""
    logged = spec.train.metrics or [("accuracy" if data.task == "classification" else "rmse")]
    logged = list(dict.fromkeys([*logged, *extra]))
    evaluated = spec.evaluate.metrics or list(DEFAULT_METRICS[data.task])
    for where, names in (("train.metrics", logged), ("evaluate.metrics", evaluated)):
        for name in names:
            if get_metric(name).task != data.task:
                raise SpecError(
                    f"{where}: {name!r} is a {get_metric(name).task} metric but "
                    f"{data.name} is a {data.task} task"
                )
    counted = tuple(get_metric(m) for m in logged if get_metric(m).batch is not None)
    return tuple(logged), counted, tuple(evaluated)


def _resolve_watch(
    spec: Spec, logged: tuple[str, ...], counted: tuple[Metric, ...]
) -> tuple[Watch | None, tuple[Watch | None, Watch | None], Watch | None]:
    """What the best epoch, reduce-on-plateau (with, without a val part) and early stopping
    watch; early stopping and plateau schedules can only watch values every epoch logs."""
    values = ["val_loss", "train_loss", *(f"val_{m}" for m in logged)]
    values += [f"train_{m.name}" for m in counted]
    for where, section in _monitors(spec):
        monitor = getattr(section, "monitor", None)
        if monitor is not None and monitor not in values:
            raise SpecError(
                f"{where}: {monitor!r} is not logged{did_you_mean(monitor, values)}; logged: "
                f"{', '.join(values)}. Add the metric to train.metrics to watch it"
            )
    es, schedule = _sections(spec)
    stopping = Watch(es.monitor, maximize(es.monitor, es.mode)) if es is not None else None
    plateau: tuple[Watch | None, Watch | None] = (None, None)
    if getattr(schedule, "monitor", None) is not None:
        key, up = schedule.monitor, maximize(schedule.monitor, schedule.mode)
        # without a validation part (a refit on all non-test data): the training side's value
        train_side = key if key.startswith("train_") else "train_" + key.removeprefix("val_")
        plateau = (Watch(key, up), Watch(train_side, up) if train_side in values else None)
    return Watch(*monitored(spec.train, has_val=True)), plateau, stopping


def _resolve_augment(spec: Spec, data: DataShape):
    if not spec.train.augment:
        return None
    from tunelab.data import Augment

    augment = Augment([s.model_dump() for s in spec.train.augment])
    augment.check(data.in_shape)
    return augment


@dataclass
class Prepared:
    """Everything a fold needs, built once: the data on the device and the resolved plan.

    ``X`` is None for a lazy data set (its inputs are read through a DataLoader, see
    :meth:`inputs`); the targets ``y`` are always on the device."""

    ds: Dataset
    splits: Splits
    X: torch.Tensor | None
    y: torch.Tensor
    plan: Plan

    def inputs(self, idx: np.ndarray, stats: Standardizer | None = None) -> torch.Tensor | LazyPart:
        """The inputs at ``idx``: a tensor on the device, or a lazy part (``stats``: see fit_part)."""
        from tunelab.data import features_on

        if self.X is None:
            return LazyPart(self.ds.lazy, np.asarray(idx, np.int64), self.device)
        X = self.X if self.ds.featurizer is None else features_on(self.ds, stats, self.device)
        return X[torch.as_tensor(idx, device=self.device)]

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
    if reuse is not None:
        ds, splits, X, y, device = reuse.ds, reuse.splits, reuse.X, reuse.y, reuse.device
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
        X = None if ds.lazy is not None else torch.tensor(ds.X, dtype=torch.float32, device=device)
        y = torch.tensor(np.asarray(ds.y), device=device)
    if plan is None:
        earlier = reuse.plan if reuse is not None else None
        plan = resolve(spec, ds, extra_metrics=extra_metrics, device=device, reuse=earlier)
    return Prepared(ds, splits, X, y, plan)
