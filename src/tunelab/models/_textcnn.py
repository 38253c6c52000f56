"""The ``textcnn`` model after Kim (2014), "Convolutional Neural Networks for Sentence
Classification": word embeddings, parallel 1-D convolutions of several widths, max-over-time
pooling, dropout, a linear layer; optionally the max-norm constraint on that layer's weights.

Its input is a text's word ids (``data.featurize: {kind: tokens}``), padded with id 0 at the
end: only windows that start on a word are pooled (each text is padded with ``max(widths) - 1``
zeros, so the last words have their windows too), so the output of a text never depends on
how far its batch was padded.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize

from tunelab.plugins import MODELS, Options

__all__ = ["TextCNNModel", "TextCNN", "textcnn"]

_PAD, _OOV = 0, 1  # as data._featurize.PAD, OOV


class TextCNNModel(Options):
    """Kim's TextCNN on word ids: embedding, Conv1d per width, max-over-time pooling, dropout."""

    name: Literal["textcnn"]
    vocab: int = Field(20002, ge=3)
    """embedding rows: at least data.featurize.max_size + 2 (padding, unknown); larger ids are
    read as unknown"""
    embed: int = Field(128, ge=1)
    """embedding width"""
    widths: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [3, 4, 5])
    """convolution widths, in words (one Conv1d each)"""
    maps: int = Field(100, ge=1)
    """feature maps per width"""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    """dropout on the pooled features"""
    max_norm: float | None = Field(None, gt=0.0)
    """max-norm constraint: each class's weight vector of the last layer has l2 norm at most
    this (Kim: 3)"""


class _MaxNorm(nn.Module):
    """Rows of a weight rescaled to l2 norm at most ``limit`` (a parametrization)."""

    def __init__(self, limit: float) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        norms = weight.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return weight * (self.limit / norms).clamp(max=1.0)


class TextCNN(nn.Module):
    def __init__(self, spec: TextCNNModel, out_features: int) -> None:
        super().__init__()
        self.vocab = spec.vocab
        self.embedding = nn.Embedding(spec.vocab, spec.embed, padding_idx=_PAD)
        with torch.no_grad():  # Kim's random word vectors: uniform in [-0.25, 0.25]
            self.embedding.weight.uniform_(-0.25, 0.25)
            self.embedding.weight[_PAD].zero_()
        self.convs = nn.ModuleList(nn.Conv1d(spec.embed, spec.maps, w) for w in spec.widths)
        self.dropout = nn.Dropout(spec.dropout)
        self.fc = nn.Linear(spec.maps * len(spec.widths), out_features)
        if spec.max_norm is not None:
            parametrize.register_parametrization(self.fc, "weight", _MaxNorm(spec.max_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()  # (N, L) word ids, padded with 0
        real = ids != _PAD
        ids = torch.where(ids < self.vocab, ids, torch.full_like(ids, _OOV))
        # every window that starts on a word exists, however the batch was padded: the last
        # word's too (zeros after it), so the output never depends on the batch's width
        pad = max(c.kernel_size[0] for c in self.convs) - 1
        ids = nn.functional.pad(ids, (0, pad), value=_PAD)
        real = nn.functional.pad(real, (0, pad), value=False)
        real[:, 0] = True  # an empty text still has one window to pool
        e = self.embedding(ids).transpose(1, 2)  # (N, embed, L)
        pooled = []
        for conv in self.convs:
            h = torch.relu(conv(e))  # (N, maps, L - width + 1)
            starts = real[:, : h.shape[-1]].unsqueeze(1)  # a window counts if it starts on a word
            pooled.append(h.masked_fill(~starts, float("-inf")).amax(dim=-1))
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


def textcnn(spec: TextCNNModel, *, in_shape: tuple[int, ...], out_features: int, **_) -> nn.Module:
    if len(in_shape) != 1:
        from tunelab.errors import SpecError

        raise SpecError(
            f"model textcnn takes word ids, one sequence per sample; got samples of shape "
            f"{in_shape}: set data.featurize: {{kind: tokens}} on a text source"
        )
    return TextCNN(spec, out_features)


# sequences: takes variable-length token ids (each batch cut to its longest, see train._batches)
MODELS.register("textcnn", TextCNNModel, textcnn, sequences=True)
