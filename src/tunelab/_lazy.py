"""Lazy public names for a package: ``from tunelab.train import fit`` imports ``_fit`` only then.

A package's ``__init__`` lists each public name with the private module that defines it; the
module is imported on first access (PEP 562). This keeps ``import tunelab`` and the CLI's start
cheap (torch, scipy and matplotlib load when used) and lets plug-in modules import each other's
packages without import cycles through eager ``__init__`` files.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps a name to its submodule."""

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where}"), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
