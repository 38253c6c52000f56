"""The ``cnn`` model: convolutional blocks, then a linear classifier (the textbook CNN)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from tunelab.errors import SpecError
from tunelab.models._layers import ACTIVATIONS, Activation
from tunelab.plugins import MODELS, Options

__all__ = ["CNNModel", "cnn"]


class CNNModel(Options):
    """Convolutional blocks (conv -> [BN] -> act -> max-pool 2), then a linear classifier.

    The defaults are the textbook model: conv 1->32 3x3 pad 1, ReLU, max-pool 2, linear.
    Each further block doubles the channels. The flatten size comes from the input shape.
    """

    name: Literal["cnn"]
    channels: int = Field(32, ge=1, description="channels of the first block")
    blocks: int = Field(1, ge=1, le=6)
    """conv blocks; each doubles the channels and halves the size"""
    kernel_size: int = Field(3, ge=1)
    """convolution kernel size (same padding)"""
    activation: Activation = "relu"
    """activation after each convolution"""
    batch_norm: bool = False
    """batch normalisation after each convolution"""
    hidden: int | None = Field(None, ge=1, description="optional hidden linear layer width")
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """dropout before the classifier"""


def cnn(spec: CNNModel, *, in_shape: tuple[int, ...], out_features: int, **_) -> nn.Module:
    if len(in_shape) != 3:
        raise SpecError(
            f"model cnn needs image data with samples of shape (C, H, W); this data set's "
            f"samples have shape {tuple(in_shape)}. Use model.name: mlp for tables"
        )
    channels, height, width = in_shape
    smallest = min(height, width)
    if smallest >> spec.blocks < 1:
        raise SpecError(
            f"model.blocks is {spec.blocks}: each block halves the image, and {height}x{width} "
            f"images allow at most {int(math.log2(smallest))} block(s)"
        )
    features: list[nn.Module] = []
    c_in, c_out = channels, spec.channels
    for _ in range(spec.blocks):
        features.append(nn.Conv2d(c_in, c_out, spec.kernel_size, padding=spec.kernel_size // 2))
        if spec.batch_norm:
            features.append(nn.BatchNorm2d(c_out))
        features += [ACTIVATIONS[spec.activation](), nn.MaxPool2d(2)]
        c_in, c_out = c_out, c_out * 2
    body = nn.Sequential(*features)
    with torch.no_grad():  # the flatten size, from the input shape
        flat = body(torch.zeros(1, *in_shape)).numel()
    head: list[nn.Module] = [nn.Flatten()]
    if spec.dropout:
        head.append(nn.Dropout(spec.dropout))
    if spec.hidden:
        head += [nn.Linear(flat, spec.hidden), ACTIVATIONS[spec.activation]()]
        if spec.dropout:
            head.append(nn.Dropout(spec.dropout))
        flat = spec.hidden
    head.append(nn.Linear(flat, out_features))
    return nn.Sequential(*body, *head)


MODELS.register("cnn", CNNModel, cnn)
