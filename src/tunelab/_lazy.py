"""Lazy public names for a package: ``from tunelab.train import fit`` imports ``_fit`` only then.

A package's ``__init__`` lists each public name with the private module that defines it; the
module is imported on first access (PEP 562). This keeps ``import tunelab`` and the CLI's start
cheap (torch, scipy and matplotlib load when used) and lets plug-in modules import each other's
packages without import cycles through eager ``__init__`` files.

``callable_module`` makes a package callable as well (``tunelab.train(spec)`` next to
``from tunelab.train import fit``), so a function of the same name never hides the package.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Callable, Mapping


def _resolve(package: str, name: str, where: str) -> object:
    """``where`` is ``"_module"`` (the attribute ``name`` of ``package._module``) or
    ``"module:attr"`` (another name, e.g. an alias of a subpackage's public function)."""
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(f"{package}.{module}"), attr or name)


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps a name to its submodule
    (``"_fit"``) or to ``"submodule:attr"`` when the attribute has another name there."""

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = _resolve(package, name, where)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__


def callable_module(module: str, target: str, *, deprecated: str | None = None) -> None:
    """Make the (already imported) ``module`` callable: calling it calls ``target``
    (``"package.module:function"``, imported on the first call). ``deprecated``: the message of
    the ``DeprecationWarning`` every call gives."""
    where, _, attr = target.partition(":")

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            if deprecated is not None:
                warnings.warn(deprecated, DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(where), attr)(*args, **kwargs)

    CallableModule.__call__.__doc__ = f"Call ``{where}.{attr}``."
    sys.modules[module].__class__ = CallableModule
