"""Models: built-in architectures (linear, mlp, cnn), the user's own classes, and building one
from its spec node through the model registry.

Also importable, as plumbing outside ``__all__``: ``Normalize`` (the input layer
``build_model`` adds), ``Unscale`` (its output layer for a standardised target),
``import_model_class`` and ``BUILTIN_MODELS`` (kept for older code).
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "build_model": "_build",
    "check_inputs": "_build",
    "LinearModel": "_linear",
    "MLPModel": "_mlp",
    "CNNModel": "_cnn",
    "UserModel": "_user",
    "CustomModel": "_user",
}
_PLUMBING = {
    "Normalize": "_layers",
    "Unscale": "_layers",
    "import_model_class": "_user",
    "BUILTIN_MODELS": "_build",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
