"""Pieces the built-in models share: activations by name and the saved normalisation layer."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["Activation", "ACTIVATIONS", "Normalize", "Unscale"]

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu", "elu"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
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


class Unscale(nn.Module):
    """``z * std + mean``: the model's last layer when the target was standardised on the
    training part (``data.target_scale``), so its outputs are in the target's own units."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def scale(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse: values in the target's units on the standardised scale."""
        return (y - self.mean) / self.std
