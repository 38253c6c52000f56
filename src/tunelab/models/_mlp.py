"""The ``mlp`` model: a fully connected network."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from tunelab.models._layers import ACTIVATIONS, Activation
from tunelab.plugins import MODELS, Options

__all__ = ["MLPModel", "mlp"]


class MLPModel(Options):
    """Fully connected network: Linear -> [BatchNorm] -> activation -> [Dropout], per hidden layer."""

    name: Literal["mlp"]
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128])
    """widths of the hidden layers, e.g. [64, 32]"""
    activation: Activation = "relu"
    """activation after each hidden layer"""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """dropout after each hidden layer"""
    batch_norm: bool = False
    """batch normalisation after each hidden linear layer"""


def mlp(spec: MLPModel, *, in_shape: tuple[int, ...], out_features: int, **_) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(in_shape)
    for hidden in spec.hidden:
        layers.append(nn.Linear(width, hidden))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(ACTIVATIONS[spec.activation]())
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


MODELS.register("mlp", MLPModel, mlp)
