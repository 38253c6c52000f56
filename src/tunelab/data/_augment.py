"""Batched augmentation on tensors, on the batch's own device.

Every function takes a float batch ``x`` of shape ``(N, C, H, W)`` (``gaussian_noise``: any
shape ``(N, ...)``) and a ``torch.Generator`` on the same device, draws one random setting per
sample from that generator, and returns a new tensor of the same shape, dtype and device. There
is no loop over samples: a training step augments its whole batch in a few tensor operations.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> aug = Augment([{"name": "crop", "padding": 2, "fill": 0.0}, {"name": "flip", "p": 0.5}])
    >>> aug(torch.rand(8, 1, 28, 28), g).shape
    torch.Size([8, 1, 28, 28])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from tunelab.errors import DataError, did_you_mean
from tunelab.plugins import AUGMENTATIONS, NonNegFloat, Options, PositiveFloat, Probability

__all__ = [
    "Augment",
    "random_crop",
    "hflip",
    "random_affine",
    "gaussian_noise",
    "random_erase",
    "CropStep",
    "FlipStep",
    "AffineStep",
    "NoiseStep",
    "EraseStep",
]


def _uniform(
    n: int, lo: float, hi: float, generator: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    """``n`` draws uniform in ``[lo, hi)``, float32 on ``like``'s device."""
    u = torch.rand(n, generator=generator, device=like.device)
    return lo + (hi - lo) * u


def _chosen(n: int, p: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """A bool mask of ``n`` samples, each True with probability ``p``."""
    return torch.rand(n, generator=generator, device=like.device) < p


def _per_sample(mask: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape an ``(N,)`` mask so that it broadcasts over samples of ``ndim`` dimensions."""
    return mask.view(-1, *([1] * (ndim - 1)))


def random_crop(
    x: torch.Tensor, *, padding: int, generator: torch.Generator, fill: float = 0.0
) -> torch.Tensor:
    """Pad each side by ``padding`` pixels of ``fill``, then crop back at a random offset per sample.

    Equivalently, every sample is shifted by its own integer ``(dy, dx)`` in
    ``[-padding, padding]``, and the pixels it leaves behind take the value ``fill``.
    """
    if padding <= 0:
        return x.clone()
    n, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    padded = F.pad(x, (padding, padding, padding, padding), value=fill).reshape(n, c, hp * wp)
    offset = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=x.device)
    rows = offset[:, :1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offset[:, 1:] + torch.arange(w, device=x.device)  # (N, W)
    index = (rows[:, :, None] * wp + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return padded.gather(2, index).reshape(n, c, h, w)


def hflip(x: torch.Tensor, *, p: float, generator: torch.Generator) -> torch.Tensor:
    """Flip each sample left-right with probability ``p``."""
    flip = _chosen(x.shape[0], p, generator, x)
    return torch.where(_per_sample(flip, x.ndim), x.flip(-1), x)


def random_affine(
    x: torch.Tensor,
    *,
    degrees: float,
    translate: float,
    generator: torch.Generator,
    p: float = 1.0,
    fill: float = 0.0,
) -> torch.Tensor:
    """Rotate by a random angle in ``[-degrees, degrees]`` and shift by up to ``translate`` of the size.

    Each sample, with probability ``p``, gets its own angle and its own shift along each axis
    (uniform in ``[-translate, translate]`` times the image height or width). Pixels are
    resampled bilinearly; those that come from outside the image take the value ``fill``.
    """
    n, _, h, w = x.shape
    angle = torch.deg2rad(_uniform(n, -degrees, degrees, generator, x))
    # affine_grid works in coordinates normalised to [-1, 1]; a shift of a fraction t of the
    # size is 2t there, and a rotation of the pixel grid needs the aspect ratio folded in.
    shift = _uniform(2 * n, -2 * translate, 2 * translate, generator, x).view(n, 2)
    apply = _chosen(n, p, generator, x)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos, -sin * (h / w), shift[:, 0]], dim=1),
            torch.stack([sin * (w / h), cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(
        x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return torch.where(_per_sample(apply, x.ndim), moved + fill, x)


def gaussian_noise(
    x: torch.Tensor, *, std: float, generator: torch.Generator, p: float = 1.0
) -> torch.Tensor:
    """Add noise ``N(0, std^2)`` to each sample with probability ``p``; ``x`` may have any shape."""
    noisy = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy.mul_(std).add_(x)
    if p >= 1:
        return noisy
    apply = _chosen(x.shape[0], p, generator, x)
    return torch.where(_per_sample(apply, x.ndim), noisy, x)


def random_erase(
    x: torch.Tensor,
    *,
    p: float,
    scale: Sequence[float],
    ratio: Sequence[float],
    generator: torch.Generator,
    value: float = 0.0,
) -> torch.Tensor:
    """Erase one random rectangle per sample with probability ``p`` (Zhong et al., 2017).

    The rectangle covers a fraction of the image uniform in ``scale`` and has an aspect ratio
    (height / width) log-uniform in ``ratio``; it is clipped to fit inside the image and set to
    ``value`` in every channel.
    """
    n, _, h, w = x.shape
    area = _uniform(n, scale[0], scale[1], generator, x) * (h * w)
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, x))
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = (_uniform(n, 0.0, 1.0, generator, x) * (h - eh + 1)).floor()
    left = (_uniform(n, 0.0, 1.0, generator, x) * (w - ew + 1)).floor()
    apply = _chosen(n, p, generator, x)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # (N, W)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :] & apply[:, None, None, None]
    return x.masked_fill(mask, value)


class CropStep(Options):
    """Random crop after zero padding (a per-sample shift of up to `padding` pixels)."""

    name: Literal["crop"]
    padding: int = Field(2, ge=0)
    """pixels of padding on each side (the largest shift)"""
    fill: float = 0.0
    """value of the padding"""


class FlipStep(Options):
    """Horizontal flip. Not for digits or text: a flipped 2 is not a 2."""

    name: Literal["flip"]
    p: Probability = 0.5
    """probability of flipping a sample"""


class AffineStep(Options):
    """Small random rotation (degrees) and translation (fraction of the size)."""

    name: Literal["affine"]
    degrees: Annotated[float, Field(ge=0.0, le=180.0)] = 10.0
    """largest rotation, in degrees"""
    translate: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    """largest shift, as a fraction of the size"""
    p: Probability = 1.0
    """probability of transforming a sample"""


class NoiseStep(Options):
    """Gaussian noise of standard deviation `std` added to a fraction `p` of the samples."""

    name: Literal["noise"]
    std: NonNegFloat = 0.1
    """standard deviation of the noise"""
    p: Probability = 1.0
    """fraction of the samples that get noise"""


class EraseStep(Options):
    """Random erasing of one rectangle per sample."""

    name: Literal["erase"]
    p: Probability = 0.5
    """probability of erasing in a sample"""
    scale: tuple[Probability, Probability] = (0.02, 0.2)
    """range of the erased area, as a fraction of the image"""
    ratio: tuple[PositiveFloat, PositiveFloat] = (0.3, 3.3)
    """range of the rectangle's aspect ratio"""
    value: float = 0.0
    """value written into the rectangle"""

    @model_validator(mode="after")
    def _ordered(self) -> EraseStep:
        if self.scale[0] > self.scale[1] or self.ratio[0] > self.ratio[1]:
            raise ValueError("scale and ratio are [low, high] with low <= high")
        return self


# an augmentation's builder is the batched function itself: fn(x, *, generator, **options)
AUGMENTATIONS.register("crop", CropStep, random_crop, image_only=True)
AUGMENTATIONS.register("flip", FlipStep, hflip, image_only=True)
AUGMENTATIONS.register("affine", AffineStep, random_affine, image_only=True)
AUGMENTATIONS.register("noise", NoiseStep, gaussian_noise)
AUGMENTATIONS.register("erase", EraseStep, random_erase, image_only=True)


class Augment:
    """A pipeline of augmentation steps applied in order to whole batches.

    Args:
        steps: mappings ``{"name": <crop|flip|affine|noise|erase>, **params}``, with the
            keyword arguments of the matching function (``random_crop``, ``hflip``,
            ``random_affine``, ``gaussian_noise``, ``random_erase``) other than ``generator``.

    Example:
        >>> aug = Augment([{"name": "noise", "std": 0.1, "p": 1.0}])
        >>> aug.check((64,))
        >>> aug(torch.zeros(4, 64), torch.Generator().manual_seed(0)).shape
        torch.Size([4, 64])
    """

    def __init__(self, steps: Sequence[Mapping[str, Any]]) -> None:
        self.steps: list[tuple[str, dict[str, Any]]] = []
        for step in steps:
            params = dict(step)
            name = params.pop("name", None)
            if name not in AUGMENTATIONS:
                valid = AUGMENTATIONS.names()
                raise DataError(
                    f"unknown augmentation `{name}`{did_you_mean(str(name), valid)}; "
                    f"choose from {', '.join(valid)}."
                )
            self.steps.append((name, params))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for name, params in self.steps:
            x = AUGMENTATIONS.get(name).build(x, generator=generator, **params)
        return x

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __repr__(self) -> str:
        return f"Augment({[{'name': name, **params} for name, params in self.steps]})"

    def check(self, in_shape: Sequence[int]) -> None:
        """Raise DataError if an image-only step meets samples that are not ``(C, H, W)``."""
        if len(in_shape) == 3:
            return
        for name, _ in self.steps:
            if AUGMENTATIONS.get(name).extra.get("image_only"):
                raise DataError(
                    f"augmentation `{name}` needs image data of shape (C, H, W); this data set's "
                    f"samples have shape {tuple(in_shape)}. Remove it from train.augment or "
                    "use `noise`."
                )
