"""Losses by name, and how a model's raw outputs become scores for metrics."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tunelab.spec import BCELoss, CrossEntropyLoss, HuberLoss, LossSpec, MAELoss, MSELoss

__all__ = ["build_loss", "default_loss", "to_scores", "outputs_for"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_loss(task: str) -> LossSpec:
    return (
        CrossEntropyLoss(name="cross_entropy") if task == "classification" else MSELoss(name="mse")
    )


def outputs_for(loss: LossSpec, *, task: str, out_features: int) -> int:
    """How many outputs the model needs: one logit for bce, else classes / target dims."""
    return 1 if isinstance(loss, BCELoss) else out_features


def build_loss(spec: LossSpec, *, device: torch.device) -> LossFn:
    """``loss(outputs, targets) -> scalar``; regression outputs are reshaped to the targets."""
    if isinstance(spec, CrossEntropyLoss):
        return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=spec.label_smoothing)
    if isinstance(spec, BCELoss):
        pw = None if spec.pos_weight is None else torch.tensor(spec.pos_weight, device=device)
        return lambda out, y: F.binary_cross_entropy_with_logits(
            out.float().reshape(-1), y.float(), pos_weight=pw
        )
    fn = {
        MSELoss: F.mse_loss,
        MAELoss: F.l1_loss,
        HuberLoss: lambda a, b: F.huber_loss(a, b, delta=spec.delta),
    }[type(spec)]
    return lambda out, y: fn(out.float().reshape(y.shape), y)


def to_scores(outputs: torch.Tensor, loss: LossSpec, *, task: str) -> torch.Tensor:
    """Class probabilities (n, k) for classification, predictions for regression."""
    outputs = outputs.float()
    if task == "regression":
        return outputs if outputs.ndim > 1 and outputs.shape[1] > 1 else outputs.reshape(-1)
    if isinstance(loss, BCELoss):
        p = torch.sigmoid(outputs.reshape(-1))
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(outputs, dim=1)
