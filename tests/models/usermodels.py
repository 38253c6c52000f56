"""User models for tests/models/test_models.py, imported by path as a user's package would be."""

from __future__ import annotations

import torch
from torch import nn

# what each constructor received, so a test can check which data parameters were passed
RECEIVED: dict[str, dict] = {}


class TwoLayer(nn.Module):
    """Declares in_features and num_classes only."""

    def __init__(self, in_features: int, num_classes: int, width: int = 8):
        super().__init__()
        RECEIVED["TwoLayer"] = {
            "in_features": in_features,
            "num_classes": num_classes,
            "width": width,
        }
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ShapeOnly(nn.Module):
    """Declares in_shape and out_features."""

    def __init__(self, in_shape, out_features):
        super().__init__()
        RECEIVED["ShapeOnly"] = {"in_shape": in_shape, "out_features": out_features}
        self.fc = nn.Linear(int(torch.tensor(in_shape).prod()), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class NoDataParams(nn.Module):
    """Declares none of the data parameters."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        RECEIVED["NoDataParams"] = {"scale": scale}
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :1] * self.w


class TakesAny(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        RECEIVED["TakesAny"] = dict(kwargs)
        self.fc = nn.Linear(kwargs["in_features"], kwargs["out_features"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class Broken(nn.Module):
    def __init__(self, in_features: int):
        super().__init__()
        raise ValueError("width must be even")


class NaNModel(nn.Module):
    """Outputs NaN: training must record a non-finite loss, not crash."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


def not_a_module(in_features: int) -> nn.Module:
    return nn.Linear(in_features, 1)


class Nested:
    class Inner(nn.Module):
        def __init__(self, in_features: int, out_features: int):
            super().__init__()
            self.fc = nn.Linear(in_features, out_features)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1))
