"""One fold: preprocessing fitted on its training part, a fresh model, ``fit``; and one pass of
a model over a part with its metrics and intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from tunelab._disk import load_weights
from tunelab.data import Standardizer, TargetScale, fit_part, fit_target_scale, in_shape_of
from tunelab.errors import RunError
from tunelab.evaluate import bootstrap_ci, compute_metrics
from tunelab.models import build_model
from tunelab.train._callbacks import Callback
from tunelab.train._checkpoint import Checkpoint
from tunelab.train._fit import History, fit, predict
from tunelab.train._losses import build_loss, on_target_scale, to_scores
from tunelab.train._plan import Plan, Prepared

__all__ = [
    "train_fold",
    "fold_model",
    "fold_target",
    "warm_model",
    "model_with_stats",
    "load_saved_weights",
    "evaluate_part",
    "part_metrics",
    "slots",
]


def fold_model(
    prep: Prepared,
    stats: Standardizer,
    plan: Plan | None = None,
    target: TargetScale | None = None,
) -> torch.nn.Module:
    """A fresh model of the spec, with the preprocessing ``stats`` built in (on the CPU) and
    the ``target`` scale as its output layer."""
    plan = plan or prep.plan
    in_shape = in_shape_of(stats, prep.ds.in_shape)
    return model_with_stats(plan, in_shape, prep.ds.num_classes, stats, target)


def fold_target(
    prep: Prepared, train_idx: np.ndarray, plan: Plan | None = None
) -> TargetScale | None:
    """The target scale fitted on a training part (None: classification, ``none``)."""
    mode = (plan or prep.plan).spec.data.target_scale
    return fit_target_scale(prep.ds.y[train_idx], mode, task=prep.ds.task)


def model_with_stats(
    plan: Plan,
    in_shape: tuple[int, ...],
    num_classes: int | None,
    stats: Standardizer,
    target: TargetScale | None = None,
) -> torch.nn.Module:
    """A fresh model of the plan for samples of ``in_shape``, ``stats`` as its input layer
    and ``target`` (the target's scale, if any) as its output layer."""
    norm = {}
    if stats.kind != "none":
        shape = stats.broadcast_shape(in_shape)
        norm = {"mean": stats.mean.reshape(shape), "std": stats.std.reshape(shape)}
    return build_model(
        plan.spec.model,
        in_shape=in_shape,
        out_features=plan.outputs,
        num_classes=num_classes,
        target=None if target is None else (target.mean, target.std),
        **norm,
    )


def load_saved_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """``model`` with the weights of a run's ``model.safetensors``; a file of another
    architecture is a RunError naming it."""
    try:
        model.load_state_dict(load_weights(path))
    except RuntimeError as exc:
        raise RunError(
            f"{path} does not fit the model in spec.yaml: {str(exc).splitlines()[0]}"
        ) from None
    return model


def warm_model(prep: Prepared, model: torch.nn.Module, stats: Standardizer) -> None:
    """A network with ``warm(inputs)`` (a frozen encoder: ``models/_encoder.py``) is given
    every input of the data set once, before training: it computes (or reads from its cache)
    what does not change while it trains."""
    warm = getattr(getattr(model, "net", model), "warm", None)
    if warm is not None and prep.X is not None:
        warm(prep.inputs(np.arange(len(prep.ds)), stats))


def train_fold(
    prep: Prepared,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    *,
    seed: int,
    epochs: int | None = None,
    callbacks: Sequence[Callback] = (),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[Checkpoint], None] | None = None,
    resume: Checkpoint | None = None,
    plan: Plan | None = None,
) -> tuple[torch.nn.Module, History, Standardizer]:
    """Fit preprocessing on ``train_idx`` alone, build a fresh model and train it.

    ``plan`` (default ``prep.plan``) is what to train: a trial passes its own, resolved
    against the study's (``resolve(trial_spec, prep.ds, reuse=prep.plan)``). ``checkpoint``
    and ``resume`` go to :func:`fit`: the state after each epoch, and a state of this same
    fold to continue from.
    """
    plan = plan or prep.plan
    stats = fit_part(prep.ds, train_idx, plan.spec.data.preprocess)
    torch.manual_seed(seed)
    model = fold_model(prep, stats, plan, fold_target(prep, train_idx, plan)).to(prep.device)
    warm_model(prep, model, stats)
    t_idx = torch.as_tensor(train_idx, device=prep.device)
    val = None
    if val_idx is not None:
        val = (prep.inputs(val_idx, stats), prep.y[torch.as_tensor(val_idx, device=prep.device)])
    history = fit(
        model,
        (prep.inputs(train_idx, stats), prep.y[t_idx]),
        val,
        plan,
        seed=seed,
        epochs=epochs,
        callbacks=callbacks,
        on_epoch=on_epoch,
        progress=progress,
        checkpoint=checkpoint,
        resume=resume,
    )
    return model, history, stats


def evaluate_part(
    prep: Prepared,
    model: torch.nn.Module,
    idx: np.ndarray,
    *,
    out: torch.Tensor | None = None,
    stats: Standardizer | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """One pass of the model over a part: its scores, and every metric with the loss.

    ``out``: the model's outputs on this part, already computed (``History.val_output``, the
    last epoch's validation pass of this same model), instead of a second pass. ``stats``:
    the model's preprocessing, needed when its data set is featurized per training part."""
    plan = prep.plan
    t_idx = torch.as_tensor(idx, device=prep.device)
    if out is None:
        batch = plan.spec.train.eval_batch_size
        out = predict(model, prep.inputs(idx, stats), batch_size=batch, bf16=plan.bf16)
    loss_fn = on_target_scale(build_loss(plan.loss, device=prep.device), model)
    loss = float(loss_fn(out, prep.y[t_idx]))
    scores = to_scores(out, plan.loss, task=plan.task).cpu().numpy()
    return scores, part_metrics(prep, idx, scores, loss=loss)


def part_metrics(
    prep: Prepared, idx: np.ndarray, scores: np.ndarray, *, loss: float | None = None
) -> dict[str, float]:
    """Every evaluation metric of the plan, after the loss if given."""
    values = {"loss": loss} if loss is not None else {}
    names = list(prep.plan.eval_metrics)
    return values | compute_metrics(prep.ds.task, prep.ds.y[idx], scores, names=names)


def slots(prep: Prepared, idx: np.ndarray, scores: np.ndarray, values: dict[str, float]) -> dict:
    """``metric -> {"value": v, "ci": {low, high, level, method, n_resamples} | None}``.

    Intervals are bootstrap intervals over the part's samples (``evaluate.ci``); the loss has
    none (it is reported for reading the training curves, not for comparing models).
    """
    cfg = prep.spec.evaluate.ci
    cis = {}
    names = [k for k in values if k != "loss"]
    if cfg.resamples and names and len(idx) > 1:
        cis = bootstrap_ci(
            prep.ds.task,
            prep.ds.y[idx],
            scores,
            names=names,
            n_resamples=cfg.resamples,
            level=cfg.level,
            method=cfg.method,
            seed=prep.spec.seed,
            stratified=cfg.stratified,
        )
    return {
        k: {"value": v, "ci": cis[k].to_json() if k in cis else None} for k, v in values.items()
    }
