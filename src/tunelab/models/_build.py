"""Build a model from its spec node through the model registry."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tunelab.models._layers import Normalize, Unscale
from tunelab.plugins import MODELS, load_plugins

__all__ = ["build_model", "check_inputs", "BUILTIN_MODELS"]


def build_model(
    spec,
    *,
    in_shape: tuple[int, ...],
    out_features: int,
    num_classes: int | None = None,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    target: tuple[np.ndarray, np.ndarray] | None = None,
) -> nn.Module:
    """The network, preceded by a :class:`Normalize` layer when statistics are given and
    followed by an :class:`Unscale` layer when the target's ``(mean, std)`` are.

    The result is ``Sequential(norm=Normalize, net=<model>, unscale=Unscale)`` so that weights
    and preprocessing travel together in one safetensors file.
    """
    plugin = MODELS.for_options(type(spec))
    net = plugin.build(spec, in_shape=in_shape, out_features=out_features, num_classes=num_classes)
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    if mean is not None and std is not None:
        parts["norm"] = Normalize(torch.as_tensor(mean), torch.as_tensor(std))
    parts["net"] = net
    if target is not None:
        parts["unscale"] = Unscale(torch.as_tensor(target[0]), torch.as_tensor(target[1]))
    return nn.Sequential(parts)


load_plugins()
# {options class: builder} of tunelab's own listed models (kept for older code that used it)
BUILTIN_MODELS = {
    p.options: p.build for p in MODELS if p.origin == "tunelab" and p.name in MODELS.names()
}


def check_inputs(model: object, data: object) -> None:
    """Token-id sequences (variable length, cut per batch) go to a sequence model only (one
    registered with ``sequences=True``): a fixed-width model would read ids as quantities.

    Raises:
        SpecError: naming the model and the sequence models there are.
    """
    featurizer = getattr(data, "featurizer", None)
    if not getattr(featurizer, "sequences", False):
        return
    plugin = MODELS.for_options(type(model))
    if not plugin.extra.get("sequences", False):
        from tunelab.errors import SpecError

        takes = [p.name for p in MODELS if p.extra.get("sequences") and p.extra.get("listed", 1)]
        raise SpecError(
            f"data.featurize makes token-id sequences, but model {plugin.name} takes "
            f"fixed-width features; use a sequence model ({', '.join(takes)}) or "
            "data.featurize: {kind: tfidf}"
        )
