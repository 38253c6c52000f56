"""Models: built-in architectures and the registry that builds one from a spec."""

from tunelab.models._builtin import Normalize
from tunelab.models._registry import BUILTIN_MODELS, build_model, import_model_class

__all__ = ["Normalize", "build_model", "import_model_class", "BUILTIN_MODELS"]
