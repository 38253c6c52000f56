"""The stored forms of a compressed model (``tunelab compress``): written and read back.

A variant folder is a run folder whose ``variant.json`` says how its model is stored:

- ``torch``: ``model.safetensors`` of the same architecture, in ``dtype`` (float32 for a
  pruned model, whose masks are folded into the weights; float16 / bfloat16 for a cast);
- ``torch-int8``: ``model.safetensors`` with each quantized ``nn.Linear`` weight as its int8
  values (``<name>.qdata``) and per-row scales (``<name>.scale``): torchao's int8 dynamic
  activation, int8 weight scheme;
- ``onnx``: ``model.onnx`` (and ``model.onnx.data`` when the exporter wrote the weights
  apart), run with onnxruntime.

:func:`load_variant` turns a folder back into an ``nn.Module`` that takes float32 inputs and
returns float32 outputs, whatever runs inside, so predicting and evaluating need nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tunelab._disk import load_weights, save_weights, write_json
from tunelab.errors import RunError

__all__ = [
    "VARIANT_FILE",
    "Cast",
    "OnnxModule",
    "read_variant",
    "save_torch_variant",
    "save_int8_variant",
    "int8_linear",
    "load_variant",
    "onnx_session",
    "quiet_loggers",
]

VARIANT_FILE = "variant.json"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class Cast(nn.Module):
    """Runs ``net`` in its own dtype: inputs cast in, outputs back to float32."""

    def __init__(self, net: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.net, self.dtype = net.to(dtype), dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.dtype)).float()


class OnnxModule(nn.Module):
    """An onnxruntime session behind the ``nn.Module`` call: CPU float32 in and out."""

    def __init__(self, session: Any):
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = {self.input_name: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)}
        return torch.from_numpy(self.session.run(None, feed)[0]).to(x.device)


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Only errors from these loggers meanwhile (exporters, quantizers and torchao narrate)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def onnx_session(path: Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path`` (``threads``: intra-op threads, default torch's)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise RunError(
            f"{path} is an ONNX model; running it needs onnxruntime: pip install 'tunelab[onnx]' "
            f"({exc})"
        ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its optimizer notes are not the user's
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_variant(folder: Path) -> dict | None:
    """``variant.json`` of a folder, or None for a plain run."""
    path = Path(folder) / VARIANT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc.msg})") from None


def save_torch_variant(folder: Path, model: nn.Module, info: dict) -> list[Path]:
    """A pruned or cast model: its state dict (in its own dtype) and ``variant.json``."""
    net = model.net if isinstance(model, Cast) else model
    dtype = next(net.parameters()).dtype
    name = next(k for k, v in DTYPES.items() if v == dtype)
    path = Path(folder) / "model.safetensors"
    save_weights(path, net.state_dict())
    write_json(Path(folder) / VARIANT_FILE, info | {"format": "torch", "dtype": name})
    return [path]


def int8_linear(model: nn.Module) -> nn.Module:
    """``model`` (in place) with every ``nn.Linear`` in torchao's int8 dynamic activation,
    int8 weight form (torchao quantizes linear layers only)."""
    # importing torchao logs a warning per CUDA kernel library it cannot load on a CPU machine,
    # and torch one about its enum registration: errors only while it loads
    with quiet_loggers("torchao", "torch.utils._pytree"):
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return model


def save_int8_variant(folder: Path, model: nn.Module, info: dict) -> list[Path]:
    """An int8 model: plain tensors as they are, each int8 weight as its values and scales."""
    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if hasattr(value, "qdata"):
            tensors[f"{key}.qdata"], tensors[f"{key}.scale"] = value.qdata, value.scale
        else:
            tensors[key] = value
    path = Path(folder) / "model.safetensors"
    save_weights(path, tensors)
    write_json(Path(folder) / VARIANT_FILE, info | {"format": "torch-int8", "dtype": "int8"})
    return [path]


def load_variant(folder: Path, fp32: nn.Module, info: dict) -> nn.Module:
    """The variant stored in ``folder`` as a float32-in, float32-out module, in eval mode.

    ``fp32`` is a freshly built model of the run's architecture (its weights are replaced)."""
    folder, kind = Path(folder), info.get("format")
    if kind == "onnx":
        return OnnxModule(onnx_session(folder / info.get("file", "model.onnx"))).eval()
    state = load_weights(folder / "model.safetensors")
    if kind == "torch":
        dtype = DTYPES.get(info.get("dtype", "float32"))
        if dtype is None:
            raise RunError(f"{folder / VARIANT_FILE}: unknown dtype {info.get('dtype')!r}")
        net = fp32.to(dtype)
        _load(net, state, folder)
        return (net if dtype == torch.float32 else Cast(net, dtype)).eval()
    if kind == "torch-int8":
        net = int8_linear(fp32.eval())
        plain = {k: v for k, v in state.items() if not k.endswith((".qdata", ".scale"))}
        for key, value in net.state_dict().items():
            if hasattr(value, "qdata"):
                plain[key] = value  # its int8 parts are copied in below
        _load(net, plain, folder)
        with torch.no_grad():
            for key, value in net.state_dict().items():
                if hasattr(value, "qdata"):
                    value.qdata.copy_(state[f"{key}.qdata"])
                    value.scale.copy_(state[f"{key}.scale"])
        return net.eval()
    raise RunError(f"{folder / VARIANT_FILE}: unknown variant format {kind!r}")


def _load(net: nn.Module, state: dict, folder: Path) -> None:
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise RunError(
            f"{folder / 'model.safetensors'} does not fit the model in spec.yaml: "
            f"{str(exc).splitlines()[0]}"
        ) from None
