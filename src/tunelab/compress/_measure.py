"""What a model costs, measured the same way for every variant: size on disk, non-zero
parameters, CPU latency at a batch size (warm, median of repeats, threads fixed)."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tunelab.models._variants import OnnxModule

__all__ = ["size_bytes", "nonzero_parameters", "latency_ms", "threads"]


def size_bytes(files: Sequence[Path]) -> int:
    """Every file the model needs, together (``model.onnx`` and ``model.onnx.data``)."""
    return sum(Path(f).stat().st_size for f in files)


def nonzero_parameters(model: nn.Module, files: Sequence[Path] = ()) -> int:
    """Non-zero weights: of the parameters and buffers (int8 values counted as themselves),
    or of an ONNX model's initializers (scales and zero points, scalars, left out)."""
    if isinstance(model, OnnxModule):
        return _onnx_nonzero([f for f in files if Path(f).suffix == ".onnx"][0])
    total = 0
    for tensor in model.state_dict().values():
        data = tensor.qdata if hasattr(tensor, "qdata") else tensor
        weight = data.is_floating_point() or data.dtype == torch.int8
        if weight and data.numel() > 1:  # a scalar scale or count is no weight
            total += int(torch.count_nonzero(data))
    return total


def _onnx_nonzero(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return sum(
        int(np.count_nonzero(numpy_helper.to_array(t)))
        for t in graph.initializer
        if int(np.prod(t.dims)) > 1
    )


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """torch's intra-op threads set to ``n`` meanwhile (onnxruntime sessions get ``n`` too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def latency_ms(
    model: nn.Module, X: torch.Tensor, *, batch: int, repeats: int, warmup: int = 3
) -> float:
    """Median wall time of one forward pass over ``batch`` samples, in milliseconds, after
    ``warmup`` passes (the first calls pay for allocation and kernel selection)."""
    x = X[:batch]
    if len(x) < batch:  # fewer samples than the batch: repeat them
        x = x.repeat((batch + len(x) - 1) // len(x), *([1] * (x.ndim - 1)))[:batch]
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)
