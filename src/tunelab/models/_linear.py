"""The ``linear`` model: linear regression, or logistic / softmax regression."""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from tunelab.plugins import MODELS, Options

__all__ = ["LinearModel", "linear"]


class LinearModel(Options):
    """Linear regression, or logistic / softmax regression for classification."""

    name: Literal["linear"]
    bias: bool = True
    """learn an intercept"""


def linear(spec: LinearModel, *, in_shape: tuple[int, ...], out_features: int, **_) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), out_features, bias=spec.bias))


MODELS.register("linear", LinearModel, linear)
