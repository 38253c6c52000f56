"""Loading plug-ins: tunelab's built-ins, then every entry point in the group ``tunelab.plugins``.

An entry point names a module (importing it registers its plug-ins) or a callable (called with
no arguments). A plug-in that fails to load is reported, with its entry point and the error,
by a warning and in ``tunelab plugins``; the other plug-ins still load.
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import entry_points

__all__ = ["load_plugins", "ENTRY_POINT_GROUP", "BUILTIN_MODULES", "failed_plugins"]

ENTRY_POINT_GROUP = "tunelab.plugins"

# every module that registers built-in plug-ins (its options class, builder and one line each)
BUILTIN_MODULES = (
    "tunelab.models._linear",
    "tunelab.models._mlp",
    "tunelab.models._cnn",
    "tunelab.models._textcnn",
    "tunelab.models._encoder",
    "tunelab.models._user",
    "tunelab.train._optimizers",
    "tunelab.train._schedules",
    "tunelab.train._losses",
    "tunelab.data._augment",
    "tunelab.data._sources",
    "tunelab.data._text_sources",
    "tunelab.evaluate._metrics",
    "tunelab.evaluate._calibration",
    "tunelab.tune._samplers",
    "tunelab.compress._methods",
)

_state: dict[str, object] = {"loaded": False, "failed": []}


def load_plugins() -> None:
    """Import the built-in plug-in modules and the installed entry points, once."""
    if _state["loaded"]:
        return
    _state["loaded"] = True
    for name in BUILTIN_MODULES:
        importlib.import_module(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            if callable(loaded) and not isinstance(loaded, type(importlib)):
                loaded()
        except Exception as exc:  # a broken third-party plug-in must not break tunelab
            text = f"{type(exc).__name__}: {exc}"
            _state["failed"].append((f"{ep.name} = {ep.value}", text))  # type: ignore[union-attr]
            warnings.warn(
                f"tunelab plug-in entry point {ep.name} ({ep.value}) failed to load: {text}",
                stacklevel=2,
            )


def failed_plugins() -> list[tuple[str, str]]:
    """``(entry point, error)`` for each plug-in that failed to load."""
    return list(_state["failed"])  # type: ignore[arg-type]
