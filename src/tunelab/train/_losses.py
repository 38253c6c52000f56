"""Losses, one plug-in each, and how a model's raw outputs become scores for metrics.

A loss plug-in is its options class and ``build(options, *, device) -> loss(outputs, targets)``;
``outputs`` (how many model outputs it needs) and ``scores`` (outputs to probabilities) are
optional extras: the defaults are one output per class / target and a softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from tunelab.plugins import LOSSES, Options, PositiveFloat

__all__ = [
    "build_loss",
    "on_target_scale",
    "default_loss",
    "to_scores",
    "outputs_for",
    "predictions_of",
    "CrossEntropyLoss",
    "MSELoss",
    "MAELoss",
    "HuberLoss",
    "BCELoss",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CrossEntropyLoss(Options):
    """Softmax cross-entropy over class logits (classification)."""

    name: Literal["cross_entropy"]
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """mix this much of the uniform distribution into the targets"""


class MSELoss(Options):
    """Mean squared error (regression)."""

    name: Literal["mse"]


class MAELoss(Options):
    """Mean absolute error (regression)."""

    name: Literal["mae"]


class HuberLoss(Options):
    """Huber loss: squared below `delta`, absolute above (regression)."""

    name: Literal["huber"]
    delta: PositiveFloat = 1.0
    """where the loss turns from squared to absolute"""


class BCELoss(Options):
    """Binary cross-entropy on one logit (binary classification)."""

    name: Literal["bce"]
    pos_weight: PositiveFloat | None = None
    """weight of the positive class (e.g. negatives / positives)"""


def _regression(fn):
    def build(spec, *, device) -> LossFn:
        return lambda out, y: fn(spec, out.float().reshape(y.shape), y)

    return build


def _cross_entropy(spec: CrossEntropyLoss, *, device) -> LossFn:
    return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=spec.label_smoothing)


def _bce(spec: BCELoss, *, device) -> LossFn:
    pw = None if spec.pos_weight is None else torch.tensor(spec.pos_weight, device=device)
    return lambda out, y: F.binary_cross_entropy_with_logits(
        out.float().reshape(-1), y.float(), pos_weight=pw
    )


def _one_logit_scores(outputs: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(outputs.reshape(-1))
    return torch.stack([1 - p, p], dim=1)


LOSSES.register("cross_entropy", CrossEntropyLoss, _cross_entropy, task="classification")
LOSSES.register("mse", MSELoss, _regression(lambda s, a, b: F.mse_loss(a, b)), task="regression")
LOSSES.register("mae", MAELoss, _regression(lambda s, a, b: F.l1_loss(a, b)), task="regression")
LOSSES.register(
    "huber",
    HuberLoss,
    _regression(lambda s, a, b: F.huber_loss(a, b, delta=s.delta)),
    task="regression",
)
LOSSES.register("bce", BCELoss, _bce, task="classification", outputs=1, scores=_one_logit_scores)


def default_loss(task: str) -> Options:
    return (
        CrossEntropyLoss(name="cross_entropy") if task == "classification" else MSELoss(name="mse")
    )


def outputs_for(loss: Options, *, task: str, out_features: int) -> int:
    """How many outputs the model needs: one logit for bce, else classes / target dims."""
    return LOSSES.for_options(type(loss)).extra.get("outputs", out_features)


def build_loss(spec: Options, *, device: torch.device) -> LossFn:
    """``loss(outputs, targets) -> scalar``; regression outputs are reshaped to the targets."""
    return LOSSES.for_options(type(spec)).build(spec, device=device)


def on_target_scale(loss: LossFn, model: torch.nn.Module) -> LossFn:
    """``loss`` on the standardised target scale when ``model`` ends in an ``unscale`` layer
    (``data.target_scale: auto``), else ``loss`` itself.

    The model's outputs are in the target's units; the loss sees them, and the targets,
    standardised with the training part's statistics: it is the loss of the network trained
    on the standardised target, whatever the target's units."""
    unscale = getattr(model, "unscale", None)
    if unscale is None:
        return loss
    dims = unscale.mean.shape[0]

    def scaled(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.reshape(y.shape[0], dims)
        return loss(unscale.scale(out.float().reshape(y.shape)), unscale.scale(y))

    return scaled


def to_scores(outputs: torch.Tensor, loss: Options, *, task: str) -> torch.Tensor:
    """Class probabilities (n, k) for classification, predictions for regression."""
    outputs = outputs.float()
    if task == "regression":
        return outputs if outputs.ndim > 1 and outputs.shape[1] > 1 else outputs.reshape(-1)
    scores = LOSSES.for_options(type(loss)).extra.get("scores")
    return scores(outputs) if scores else torch.softmax(outputs, dim=1)


def predictions_of(
    loss: Options, *, task: str
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``predictions(outputs, targets)``: a batch's predicted class indices (the argmax, or
    the sign of bce's one logit) or its predictions shaped like the targets (regression)."""
    if task == "regression":
        return lambda out, y: out.float().reshape(y.shape)
    if LOSSES.for_options(type(loss)).extra.get("outputs") == 1:
        return lambda out, y: (out.reshape(-1) > 0).long()
    return lambda out, y: out.argmax(dim=1)
