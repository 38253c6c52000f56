"""Optimizers: each an options class mapped straight onto its torch constructor.

``torch.optim.Adam(params, **options)``: the options class's fields are the constructor's
keyword arguments, so an optimizer is an options class and one registry line. ``gd`` is SGD
without momentum on the whole training part; L-BFGS is the one adapter (``line_search`` names
torch's ``line_search_fn``, and its weight decay enters the loss since torch's has none).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tunelab.plugins import OPTIMIZERS, NonNegFloat, Options, PositiveFloat

__all__ = [
    "GD",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "LBFGS",
    "build_optimizer",
    "FULL_BATCH_OPTIMIZERS",
]

Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Betas = tuple[Beta, Beta]


def build_optimizer(spec: Options, params, *, device) -> Any:
    """The torch optimizer a spec node names; fused kernels on CUDA where torch has them."""
    plugin = OPTIMIZERS.for_options(type(spec))
    return plugin.build(spec, list(params), device=device)


def _torch(name: str, *, fast: bool = True, rename: dict[str, str] | None = None, **fixed: Any):
    """A builder that passes the options as keyword arguments to ``torch.optim.<name>``."""

    def build(spec: Options, params: list, *, device) -> Any:
        import torch

        kwargs = spec.model_dump(exclude={"name"}) | fixed
        for ours, theirs in (rename or {}).items():
            kwargs[theirs] = kwargs.pop(ours)
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        if fast:
            kwargs |= {"fused": True} if device.type == "cuda" else {"foreach": True}
        return getattr(torch.optim, name)(params, **kwargs)

    build.__doc__ = f"torch.optim.{name}(params, **options)"
    return build


class GD(Options):
    """Full-batch gradient descent: one step per epoch on the whole training part."""

    name: Literal["gd"]
    lr: PositiveFloat = 0.1
    """learning rate"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the gradient"""


class SGD(Options):
    """Stochastic gradient descent with (Nesterov) momentum."""

    name: Literal["sgd"]
    lr: PositiveFloat = 0.01
    """learning rate"""
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """momentum factor"""
    nesterov: bool = False
    """Nesterov momentum"""
    dampening: NonNegFloat = 0.0
    """dampening of the momentum"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the gradient"""

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


class Adam(Options):
    """Adam (Kingma & Ba, 2015); weight decay as an L2 term in the gradient."""

    name: Literal["adam"] = "adam"
    lr: PositiveFloat = 1e-3
    """learning rate"""
    betas: Betas = (0.9, 0.999)
    """decay rates of the first and second moment estimates"""
    eps: PositiveFloat = 1e-8
    """added to the denominator for stability"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the gradient"""
    amsgrad: bool = False
    """the AMSGrad variant (maximum of past second moments)"""


class AdamW(Options):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    name: Literal["adamw"]
    lr: PositiveFloat = 1e-3
    """learning rate"""
    betas: Betas = (0.9, 0.999)
    """decay rates of the first and second moment estimates"""
    eps: PositiveFloat = 1e-8
    """added to the denominator for stability"""
    weight_decay: NonNegFloat = 0.01
    """decoupled weight decay"""
    amsgrad: bool = False
    """the AMSGrad variant (maximum of past second moments)"""


class RMSprop(Options):
    """RMSProp: the step divided by a running root mean square of the gradient."""

    name: Literal["rmsprop"]
    lr: PositiveFloat = 1e-3
    """learning rate"""
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    """decay of the running mean square"""
    eps: PositiveFloat = 1e-8
    """added to the denominator for stability"""
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """momentum factor"""
    centered: bool = False
    """divide by the centred variance estimate"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the gradient"""


class Adagrad(Options):
    """Adagrad: per-parameter steps shrinking with the sum of squared gradients."""

    name: Literal["adagrad"]
    lr: PositiveFloat = 1e-2
    """learning rate"""
    lr_decay: NonNegFloat = 0.0
    """learning-rate decay per step"""
    eps: PositiveFloat = 1e-10
    """added to the denominator for stability"""
    initial_accumulator_value: NonNegFloat = 0.0
    """starting value of the sum of squared gradients"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the gradient"""


class LBFGS(Options):
    """L-BFGS on the full training part (one optimizer step per epoch, with a line search)."""

    name: Literal["lbfgs"]
    lr: PositiveFloat = 1.0
    """learning rate (step length before the line search)"""
    max_iter: int = Field(20, ge=1)
    """iterations per optimizer step"""
    history_size: int = Field(100, ge=1)
    """update history kept"""
    line_search: Literal["strong_wolfe", "none"] = "strong_wolfe"
    """strong_wolfe or none"""
    tolerance_grad: PositiveFloat = 1e-7
    """stop when the gradient's largest entry is below this"""
    tolerance_change: PositiveFloat = 1e-9
    """stop when the loss or parameters change less than this"""
    weight_decay: NonNegFloat = 0.0
    """L2 penalty added to the loss"""


def _lbfgs(spec: LBFGS, params: list, *, device) -> Any:
    import torch

    return torch.optim.LBFGS(
        params,
        lr=spec.lr,
        max_iter=spec.max_iter,
        history_size=spec.history_size,
        tolerance_grad=spec.tolerance_grad,
        tolerance_change=spec.tolerance_change,
        line_search_fn=None if spec.line_search == "none" else spec.line_search,
    )


# full_batch: one step per epoch on the whole training part; closure: step(closure) re-evaluates
# the loss; l2_in_loss: weight decay enters the loss as (wd / 2) * ||w||^2
OPTIMIZERS.register("gd", GD, _torch("SGD"), full_batch=True)
OPTIMIZERS.register("sgd", SGD, _torch("SGD"))
OPTIMIZERS.register("adam", Adam, _torch("Adam"))
OPTIMIZERS.register("adamw", AdamW, _torch("AdamW"))
OPTIMIZERS.register("rmsprop", RMSprop, _torch("RMSprop", fast=False, foreach=True))
OPTIMIZERS.register("adagrad", Adagrad, _torch("Adagrad", fast=False, foreach=True))
OPTIMIZERS.register("lbfgs", LBFGS, _lbfgs, full_batch=True, closure=True, l2_in_loss=True)

FULL_BATCH_OPTIMIZERS = tuple(p.name for p in OPTIMIZERS if p.extra.get("full_batch"))
