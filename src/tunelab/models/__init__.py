"""Models: built-in architectures (linear, mlp, cnn), the user's own classes, and building one
from its spec node through the model registry."""

from tunelab._lazy import lazy_exports

__all__ = [
    "Normalize",
    "build_model",
    "import_model_class",
    "BUILTIN_MODELS",
    "LinearModel",
    "MLPModel",
    "CNNModel",
    "CustomModel",
    "UserModel",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Normalize": "_layers",
        "build_model": "_build",
        "BUILTIN_MODELS": "_build",
        "import_model_class": "_user",
        "LinearModel": "_linear",
        "MLPModel": "_mlp",
        "CNNModel": "_cnn",
        "CustomModel": "_user",
        "UserModel": "_user",
    },
)
