"""Built-in architectures: linear, mlp, cnn. Sizes come from the data, never hard-coded."""

from __future__ import annotations

import math

import torch
from torch import nn

from tunelab.errors import SpecError
from tunelab.spec import CNNModel, LinearModel, MLPModel

__all__ = ["Normalize", "linear", "mlp", "cnn"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


class Normalize(nn.Module):
    """``(x - mean) / std`` with statistics fitted on the training part, saved with the weights."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def linear(spec: LinearModel, *, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), out_features, bias=spec.bias))


def mlp(spec: MLPModel, *, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(in_shape)
    for hidden in spec.hidden:
        layers.append(nn.Linear(width, hidden))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(_ACTIVATIONS[spec.activation]())
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def cnn(spec: CNNModel, *, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
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
        features += [_ACTIVATIONS[spec.activation](), nn.MaxPool2d(2)]
        c_in, c_out = c_out, c_out * 2
    body = nn.Sequential(*features)
    with torch.no_grad():  # the flatten size, from the input shape
        flat = body(torch.zeros(1, *in_shape)).numel()
    head: list[nn.Module] = [nn.Flatten()]
    if spec.dropout:
        head.append(nn.Dropout(spec.dropout))
    if spec.hidden:
        head += [nn.Linear(flat, spec.hidden), _ACTIVATIONS[spec.activation]()]
        if spec.dropout:
            head.append(nn.Dropout(spec.dropout))
        flat = spec.hidden
    head.append(nn.Linear(flat, out_features))
    return nn.Sequential(*body, *head)
