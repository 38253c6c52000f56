"""The compression methods, one plug-in each (registry ``COMPRESSIONS``).

A method is its options class (tagged by ``name``) and ``build(options, source) -> files``:
it shrinks ``source.model`` (the run's float32 model, a copy it may change) and saves the
variant into ``source.folder`` (``models/_variants.py`` holds the stored forms). Extras:
``applies(options, model) -> str | None`` (why the method does not apply to this model) and
``position`` (the option a bare ``name:value`` sets, e.g. ``prune:0.5``).

Deprecated APIs are not used: ONNX export is torch's dynamo exporter, int8 in torch is torchao
(``quantize_`` on ``nn.Linear``; ``torch.ao.quantization`` warns that it is deprecated), int8
in ONNX is onnxruntime's offline quantizer.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from tunelab._disk import write_json
from tunelab.errors import RunError
from tunelab.models._variants import (
    VARIANT_FILE,
    Cast,
    int8_linear,
    quiet_loggers,
    save_int8_variant,
    save_torch_variant,
)
from tunelab.plugins import COMPRESSIONS, Fraction, Options
from tunelab.plugins._registry import Plugin

__all__ = ["Source", "OnnxOptions", "PruneOptions", "CastOptions", "export_onnx"]


@dataclass
class Source:
    """What a method works from.

    Attributes:
        model: the run's float32 model on the CPU, in eval mode (the method's own copy).
        example: training-part inputs (float32, CPU): the export's example and the
            calibration sample of static quantization; never test rows.
        folder: where the variant's files go.
        finetune: ``finetune(model, epochs)`` trains on the training part with the run's
            optimizer settings (pruning's masks stay in place while it does).
        info: what ``variant.json`` records besides the storage format.
    """

    model: nn.Module
    example: torch.Tensor
    folder: Path
    finetune: Callable[[nn.Module, int], None]
    info: dict


# ---------------------------------------------------------------------------------------------
# ONNX: fp32 export, int8 dynamic and static (onnxruntime)


class OnnxOptions(Options):
    """ONNX (fp32) run with onnxruntime; int8: weights (dynamic) or weights and activations
    (static, calibrated on a sample of the training part) quantized by onnxruntime."""

    name: Literal["onnx", "onnx-int8", "onnx-int8-static"]
    samples: int = Field(256, ge=1, description="static: calibration samples (training part)")
    conv: bool = False
    """onnx-int8: quantize the convolutions too (ConvInteger). Off by default: like torch's
    dynamic quantization, only the matrix products (MatMul, Gemm) are int8, because
    onnxruntime's ConvInteger ran 5x slower than its fp32 convolution at batch 1 on this
    project's x86 CPU (the textbook CNN: 0.129 against 0.024 ms; MatMul-only 0.020 ms)"""

    @model_validator(mode="after")
    def _conv_is_dynamic(self) -> OnnxOptions:
        if self.conv and self.name != "onnx-int8":
            raise ValueError(
                f"conv applies to onnx-int8 only ({self.name} "
                + ("quantizes every layer" if self.name.endswith("static") else "is fp32")
                + ")"
            )
        return self


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> list[Path]:
    """``model`` as ONNX with a dynamic batch axis (weights apart when the exporter says)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise RunError(
            f"ONNX export needs onnx and onnxscript: pip install 'tunelab[onnx]' ({exc})"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    with quiet_loggers("torch.onnx", "torch.export", "onnxscript"), warnings.catch_warnings():
        # torch 2.13's exporter trips its own pytree deprecation (LeafSpec): not the user's
        warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
        program = torch.onnx.export(
            model.eval(), (example[:2],), dynamo=True, verbose=False,
            dynamic_shapes=({0: batch},), external_data=True,
        )  # fmt: skip
        program.save(str(path), external_data=True)
    return [p for p in (path, path.with_name(path.name + ".data")) if p.is_file()]


def _onnx_build(options: OnnxOptions, source: Source) -> list[Path]:
    folder = source.folder
    if options.name == "onnx":
        files = export_onnx(source.model, source.example, folder / "model.onnx")
    else:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic

        work = folder / ".fp32"
        work.mkdir(exist_ok=True)
        export_onnx(source.model, source.example, work / "model.onnx")
        with quiet_loggers("root", "onnxruntime"):
            if options.name == "onnx-int8":
                ops = ["MatMul", "Gemm", *(["Conv"] if options.conv else [])]
                quantize_dynamic(
                    work / "model.onnx", folder / "model.onnx", weight_type=QuantType.QInt8,
                    op_types_to_quantize=ops,
                )  # fmt: skip
            else:
                from onnxruntime.quantization import quantize_static

                reader = _Calibration(source.example[: options.samples], work / "model.onnx")
                quantize_static(
                    work / "model.onnx", folder / "model.onnx", reader,
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                )  # fmt: skip
        for leftover in sorted(work.iterdir()):
            leftover.unlink()
        work.rmdir()
        files = [folder / "model.onnx"]
    write_json(folder / VARIANT_FILE, source.info | {"format": "onnx", "file": "model.onnx"})
    return files


class _Calibration:
    """onnxruntime's calibration reader protocol over training-part batches of 32."""

    def __init__(self, X: torch.Tensor, model: Path):
        import onnx

        self.input = onnx.load(str(model), load_external_data=False).graph.input[0].name
        self.batches = iter([X[i : i + 32].numpy() for i in range(0, len(X), 32)])

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.input: batch}

    def rewind(self) -> None:  # pragma: no cover - not called by quantize_static's min-max
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# torch: int8 (torchao), pruning, casts


class TorchInt8Options(Options):
    """int8 weights and dynamically quantized activations in every ``nn.Linear`` (torchao);
    other layers stay float32."""

    name: Literal["torch-int8"]


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _int8_applies(options: TorchInt8Options, model: nn.Module) -> str | None:
    if not _linear_layers(model):
        return "torch-int8 quantizes nn.Linear layers (torchao), and this model has none"
    return None


def _int8_build(options: TorchInt8Options, source: Source) -> list[Path]:
    try:
        model = int8_linear(source.model)
    except ImportError as exc:
        raise RunError(f"torch-int8 needs torchao: pip install 'tunelab[onnx]' ({exc})") from None
    return save_int8_variant(source.folder, model, source.info)


class PruneOptions(Options):
    """Magnitude pruning (``torch.nn.utils.prune``): the smallest weights of every conv and
    linear layer set to zero, globally (``prune``) or whole output channels per layer by L2
    norm (``prune-channels``, never the output layer's); optionally fine-tuned on the training
    part with the masks in place, then the masks folded into the weights."""

    name: Literal["prune", "prune-channels"]
    amount: Fraction = Field(0.5, description="share of the weights (channels) set to zero")
    finetune: int = Field(0, ge=0, description="epochs of fine-tuning on the training part")


def _prunable(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def _prune_applies(options: PruneOptions, model: nn.Module) -> str | None:
    layers = _prunable(model)
    if not layers:
        return f"{options.name} prunes conv and linear layers, and this model has none"
    if options.name == "prune-channels" and len(layers) < 2:
        return "prune-channels keeps the output layer whole, and this model has no other layer"
    return None


def _prune_build(options: PruneOptions, source: Source) -> list[Path]:
    from torch.nn.utils import prune

    model, layers = source.model, _prunable(source.model)
    if options.name == "prune":
        prune.global_unstructured(
            [(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
            amount=options.amount,
        )  # fmt: skip
    else:
        for layer in layers[:-1]:  # the output layer's rows are the classes
            prune.ln_structured(layer, "weight", amount=options.amount, n=2, dim=0)
        layers = layers[:-1]
    if options.finetune:
        source.finetune(model, options.finetune)
    for layer in layers:
        prune.remove(layer, "weight")  # the mask folded in: plain weights with zeros
    return save_torch_variant(source.folder, model.eval(), source.info)


class CastOptions(Options):
    """Weights and arithmetic in half precision (float16 or bfloat16); inputs cast in,
    outputs cast back to float32."""

    name: Literal["fp16", "bf16"]


def _cast_build(options: CastOptions, source: Source) -> list[Path]:
    dtype = torch.float16 if options.name == "fp16" else torch.bfloat16
    return save_torch_variant(source.folder, Cast(copy.deepcopy(source.model), dtype), source.info)


def _register() -> list[Plugin]:
    return [
        COMPRESSIONS.register("onnx", OnnxOptions, _onnx_build),
        COMPRESSIONS.register("onnx-int8", OnnxOptions, _onnx_build),
        COMPRESSIONS.register("onnx-int8-static", OnnxOptions, _onnx_build, position="samples"),
        COMPRESSIONS.register("torch-int8", TorchInt8Options, _int8_build, applies=_int8_applies),
        COMPRESSIONS.register(
            "prune", PruneOptions, _prune_build, applies=_prune_applies, position="amount"
        ),
        COMPRESSIONS.register(
            "prune-channels", PruneOptions, _prune_build, applies=_prune_applies, position="amount"
        ),
        COMPRESSIONS.register("fp16", CastOptions, _cast_build),
        COMPRESSIONS.register("bf16", CastOptions, _cast_build),
    ]


_register()
