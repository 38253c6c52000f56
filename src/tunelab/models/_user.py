"""The user's own ``nn.Module`` class, imported only because the spec names it.

Two spellings:

- ``model: {name: mypkg.models:WideMLP, width: 256}``: an import path, or a file
  ``./mymodels.py:WideMLP`` relative to the spec's folder (no PYTHONPATH needed). The other
  keys are the constructor's arguments, checked against its signature when the spec is read.
- ``model: {target: mypkg.models:WideMLP, kwargs: {width: 256}}``: the older form, imported
  when the model is built.

The constructor also receives whichever of ``in_shape``, ``in_features``, ``num_classes`` and
``out_features`` it declares (all of them if it takes ``**kwargs``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tunelab.errors import SpecError, did_you_mean
from tunelab.plugins import MODELS, Options

__all__ = ["CustomModel", "UserModel", "import_model_class", "build_user_model", "is_user_class"]

_IMPORT_PATH = r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*"
_FILE_PATH = r"[^:]*\.py:[A-Za-z_][\w.]*"
_DATA_PARAMS = ("in_shape", "in_features", "num_classes", "out_features")


def is_user_class(name: str) -> bool:
    """``pkg.mod:Class`` or ``path/to/file.py:Class``."""
    return bool(re.fullmatch(_IMPORT_PATH, name) or re.fullmatch(_FILE_PATH, name))


class UserModel(Options):
    """Your own nn.Module: `name: pkg.module:Class` or `./file.py:Class`; other keys go to its constructor."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str = Field(
        description="pkg.module:Class, or path/to/file.py:Class (relative to the spec)"
    )

    @field_validator("name")
    @classmethod
    def _located(cls, value: str, info: ValidationInfo) -> str:
        if not is_user_class(value):
            raise ValueError(
                f"expected a built-in model, 'package.module:Class' or 'file.py:Class'; got {value!r}"
            )
        module, _, qualname = value.rpartition(":")
        if module.endswith(".py"):
            base = Path((info.context or {}).get("spec_dir") or ".")
            path = Path(module).expanduser()
            value = f"{(path if path.is_absolute() else base / path).resolve()}:{qualname}"
        return value

    @model_validator(mode="after")
    def _signature(self) -> UserModel:
        try:  # pydantic reports a ValueError with the field's path, like any other bad value
            cls = import_model_class(self.name, where="model.name")
            _check_kwargs(cls, self.kwargs, where="model", label=self.name)
        except SpecError as exc:
            raise ValueError(str(exc).split(": ", 1)[1]) from None
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class CustomModel(Options):
    """Your own nn.Module by `target: package.module:Class` and `kwargs: {...}` (older form)."""

    name: Literal["custom"] = "custom"
    target: str = Field(description='"package.module:Class"')
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments for the class"""

    @field_validator("target")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(_IMPORT_PATH, value):
            raise ValueError(f"expected 'package.module:Class', got {value!r}")
        return value


def import_model_class(target: str, *, where: str = "model.target") -> type:
    """Import ``package.module:Class`` or ``/path/file.py:Class``."""
    from torch import nn

    module_name, _, qualname = target.rpartition(":")
    module = _import_file(module_name, where) if module_name.endswith(".py") else None
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SpecError(
                f"{where}: cannot import module {module_name!r} ({exc}). Is the package "
                "installed, or its folder on PYTHONPATH? A file can be named as ./file.py:Class"
            ) from None
    obj: Any = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise SpecError(
                f"{where}: module {module_name!r} has no attribute {part!r}"
                f"{did_you_mean(part, names)}"
            )
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise SpecError(f"{where}: {target} is not a torch.nn.Module subclass; got {obj!r}")
    return obj


def _import_file(path_text: str, where: str):
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"{where}: model file not found: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"tunelab_user_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # the user's file: report, don't crash with a traceback
        del sys.modules[name]
        raise SpecError(f"{where}: importing {path} raised {type(exc).__name__}: {exc}") from exc
    return module


def _check_kwargs(cls: type, kwargs: dict[str, Any], *, where: str, label: str) -> None:
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise SpecError(
            f"{where}: {label} takes no parameter {unknown[0]!r}"
            f"{did_you_mean(unknown[0], params)}; it takes: {', '.join(params) or 'nothing'}"
        )


def build_user_model(
    spec: UserModel | CustomModel, *, in_shape, out_features, num_classes=None, **_
) -> Any:
    """Instantiate the user's class with its options and the data parameters it declares."""
    target, where = (
        (spec.target, "model.target")
        if isinstance(spec, CustomModel)
        else (spec.name, "model.name")
    )
    cls = import_model_class(target, where=where)
    offered = {
        "in_shape": tuple(in_shape),
        "in_features": int(np.prod(in_shape)),
        "num_classes": num_classes,
        "out_features": out_features,
    }
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if (k in params or takes_any) and v is not None}
    kwargs.update(spec.kwargs)
    _check_kwargs(
        cls, spec.kwargs, where="model.kwargs" if where == "model.target" else "model", label=target
    )
    try:
        return cls(**kwargs)
    except Exception as exc:  # the user's constructor: report, don't crash with a traceback
        raise SpecError(
            f"{where}: {target}({', '.join(kwargs)}) raised {type(exc).__name__}: {exc}"
        ) from exc


def route_model(tag: Any, value: Any) -> str | None:
    """The union tag of a model entry that names no registered plug-in."""
    if isinstance(value, dict) and "target" in value and "name" not in value:
        return "custom"
    if isinstance(value, CustomModel):
        return "custom"
    if isinstance(tag, str) and ":" in tag:
        return "user"
    return None


# a user's module takes what the data is, token-id sequences too (sequences=True)
MODELS.register("custom", CustomModel, build_user_model, listed=False, sequences=True)
MODELS.register(
    "user",
    UserModel,
    build_user_model,
    listed=False,
    sequences=True,
    summary="your own nn.Module: name: pkg.module:Class or ./file.py:Class",
)
