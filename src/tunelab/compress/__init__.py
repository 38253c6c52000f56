"""Compression judged honestly: variants of a trained run (ONNX, int8, pruning, half
precision), each a run folder, each measured on accuracy with its interval, a paired test
against the original, size on disk, non-zero parameters and CPU latency.

Also importable, as plumbing outside ``__all__``: ``Source`` (what a method plug-in works
from), ``export_onnx``, ``latency_ms``, ``size_bytes``, ``nonzero_parameters``, ``threads`` (also used by
multi-objective tuning to measure each trial's costs).
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "compress_run": "_compress",
    "parse_methods": "_compress",
    "CompressionResult": "_compress",
    "VariantResult": "_compress",
}
_PLUMBING = {
    "Source": "_methods",
    "export_onnx": "_methods",
    "latency_ms": "_measure",
    "size_bytes": "_measure",
    "nonzero_parameters": "_measure",
    "threads": "_measure",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
