"""Build a model from its spec: a built-in by name, or the user's class by import path."""

from __future__ import annotations

import importlib
import inspect
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tunelab.errors import SpecError, did_you_mean
from tunelab.models import _builtin
from tunelab.spec import CNNModel, CustomModel, LinearModel, MLPModel, ModelSpec

__all__ = ["build_model", "import_model_class", "BUILTIN_MODELS"]

BUILTIN_MODELS = {LinearModel: _builtin.linear, MLPModel: _builtin.mlp, CNNModel: _builtin.cnn}


def build_model(
    spec: ModelSpec,
    *,
    in_shape: tuple[int, ...],
    out_features: int,
    num_classes: int | None = None,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> nn.Module:
    """The network, preceded by a :class:`Normalize` layer when statistics are given.

    The result is ``Sequential(norm=Normalize, net=<model>)`` so that weights and preprocessing
    travel together in one safetensors file.
    """
    if isinstance(spec, CustomModel):
        net = _custom(spec, in_shape=in_shape, out_features=out_features, num_classes=num_classes)
    else:
        net = BUILTIN_MODELS[type(spec)](spec, in_shape=in_shape, out_features=out_features)
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    if mean is not None and std is not None:
        parts["norm"] = _builtin.Normalize(torch.as_tensor(mean), torch.as_tensor(std))
    parts["net"] = net
    return nn.Sequential(parts)


def import_model_class(target: str) -> type[nn.Module]:
    """Import ``package.module:Class``. Called only when a spec names a user model."""
    module_name, _, qualname = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(
            f"model.target: cannot import module {module_name!r} ({exc}). Is the package "
            "installed, or its folder on PYTHONPATH?"
        ) from None
    obj = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise SpecError(
                f"model.target: module {module_name!r} has no attribute {part!r}"
                f"{did_you_mean(part, names)}"
            )
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise SpecError(f"model.target: {target} is not a torch.nn.Module subclass; got {obj!r}")
    return obj


def _custom(spec: CustomModel, *, in_shape, out_features, num_classes) -> nn.Module:
    cls = import_model_class(spec.target)
    offered = {
        "in_shape": tuple(in_shape),
        "in_features": int(np.prod(in_shape)),
        "num_classes": num_classes,
        "out_features": out_features,
    }
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if (k in params or takes_any) and v is not None}
    kwargs.update(spec.kwargs)
    unknown = [k for k in spec.kwargs if k not in params and not takes_any]
    if unknown:
        raise SpecError(
            f"model.kwargs: {spec.target} takes no parameter {unknown[0]!r}"
            f"{did_you_mean(unknown[0], params)}; it takes: {', '.join(params) or 'nothing'}"
        )
    try:
        return cls(**kwargs)
    except Exception as exc:  # the user's constructor: report, don't crash with a traceback
        raise SpecError(
            f"model.target: {spec.target}({', '.join(kwargs)}) raised {type(exc).__name__}: {exc}"
        ) from exc
